"""The codec's heap policy (fllic._heap): set for a coding call, settled after it, once however deep; a large
image's pages given back between its phases and at its end."""

import threading

import pytest

import fllic._heap as heap


@pytest.fixture
def calls(monkeypatch):
    seen = []
    monkeypatch.setattr(heap, "_set", lambda settings: seen.append(settings) or True)
    monkeypatch.setattr(heap, "_trim", lambda: seen.append("trim") or True)
    return seen


def test_reusing_keeps_blocks_for_the_outermost_call_and_settles_after_it(calls):
    with heap.reusing():
        assert calls == [heap.KEEP]
        with heap.reusing():  # a decode inside an encode, or a second thread's call
            assert calls == [heap.KEEP]
        assert calls == [heap.KEEP]
    assert calls == [heap.KEEP, heap.SETTLED]  # a small image's pages stay for the next call
    with pytest.raises(RuntimeError), heap.reusing():  # an error inside still settles
        raise RuntimeError
    assert calls[-1] == heap.SETTLED and heap._depth == 0


def test_a_large_images_phases_give_pages_back_and_so_does_its_end(calls):
    with heap.reusing():
        assert not heap.release(heap.LARGE_PIXELS - 1) and calls == [heap.KEEP]
        assert heap.release(heap.LARGE_PIXELS) and calls == [heap.KEEP, "trim"]
    assert calls == [heap.KEEP, "trim", heap.SETTLED, "trim"]
    with heap.reusing():
        pass
    assert calls[-2:] == [heap.KEEP, heap.SETTLED]  # the next, small, call keeps its pages


def test_threads_coding_at_once_share_one_setting(calls):
    inside, go = threading.Barrier(3), threading.Event()

    def code():
        with heap.reusing():
            inside.wait()
            go.wait()

    threads = [threading.Thread(target=code) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()  # both threads are inside
    go.set()
    for t in threads:
        t.join()
    assert calls == [heap.KEEP, heap.SETTLED]


@pytest.mark.skipif(heap._libc() is None, reason="glibc's malloc only")
def test_glibc_takes_the_settings():
    assert heap._set(heap.KEEP) and heap._set(heap.SETTLED) and heap._trim()
