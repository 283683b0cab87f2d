import numpy as np
import pytest
import torch

import fllic
from fllic.codec import encode_detailed
from tests.conftest import noisy_image


@pytest.mark.parametrize("shape", [(1, 1), (37, 31), (17, 1000), (64, 64), (70, 130)])
@pytest.mark.parametrize("channels", [1, 3])
def test_round_trip_is_exact_at_odd_sizes(tiny_model, rng, shape, channels):
    img = noisy_image(rng, *shape, channels=channels)
    res = encode_detailed(img, sigma=20, model=tiny_model)
    out = fllic.decode(res.data, model=tiny_model)
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.array_equal(out, res.pixels)


def test_grey_with_singleton_channel_axis(tiny_model, rng):
    img = noisy_image(rng, 40, 50, channels=1)[..., None]
    out = fllic.decode(fllic.encode(img, sigma=10, model=tiny_model), model=tiny_model)
    assert out.shape == (40, 50)


def test_two_decodes_agree_bit_for_bit(tiny_model, rng):
    data = fllic.encode(noisy_image(rng, 96, 80), sigma=25, model=tiny_model)
    assert np.array_equal(fllic.decode(data, model=tiny_model), fllic.decode(data, model=tiny_model))


def test_decode_is_identical_across_thread_counts(tiny_model, rng):
    img = noisy_image(rng, 130, 70)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        data = fllic.encode(img, sigma=15, model=tiny_model)
        one = fllic.decode(data, model=tiny_model)
        torch.set_num_threads(2)
        two = fllic.decode(data, model=tiny_model)
    finally:
        torch.set_num_threads(before)
    assert np.array_equal(one, two)


def test_decoding_never_uses_the_float_decoder(tiny_model, rng, monkeypatch):
    """Symbols and pixels come from the integer h_s and g_s alone: breaking the float ones changes nothing."""
    img = noisy_image(rng, 128, 128)
    res = encode_detailed(img, sigma=25, model=tiny_model)
    broken = lambda *args: (_ for _ in ()).throw(RuntimeError("float decoder used"))  # noqa: E731
    monkeypatch.setattr(tiny_model.net, "entropy_params", broken)
    monkeypatch.setattr(tiny_model.net, "synthesis", broken)
    assert np.array_equal(fllic.decode(res.data, model=tiny_model), res.pixels)


def test_quality_levels_trade_rate(tiny_model, rng):
    img = noisy_image(rng, 128, 128)
    coarse = fllic.encode(img, sigma=20, model=tiny_model, quality=1)
    fine = fllic.encode(img, sigma=20, model=tiny_model, quality=2)
    assert fllic.info(fine)["quality"] == 2 and fllic.info(coarse)["quality"] == 1
    assert fllic.info(fine)["step_scale"] < fllic.info(coarse)["step_scale"]
    assert np.array_equal(fllic.decode(coarse, model=tiny_model), encode_detailed(img, 20, tiny_model, 1).pixels)


def test_default_sigma_is_estimated_and_stored(tiny_model, rng):
    img = noisy_image(rng, 64, 64)
    meta = fllic.info(fllic.encode(img, model=tiny_model))
    assert 10 < meta["sigma"] < 40


@pytest.mark.parametrize(
    "bad, kwargs",
    [
        (np.zeros((8, 8), np.float32), {}),
        (np.zeros((8, 8, 5), np.uint8), {}),
        (np.zeros((8, 8), np.int16), {}),
        (np.zeros((0, 8), np.uint8), {}),
        (np.zeros((8, 8), np.uint8), {"quality": 9}),
        (np.zeros((8, 8), np.uint8), {"sigma": -1.0}),
        (np.zeros((8, 8), np.uint8), {"sigma": float("nan")}),
    ],
)
def test_invalid_input_raises_input_error(tiny_model, bad, kwargs):
    with pytest.raises(fllic.InputError):
        fllic.encode(bad, model=tiny_model, **({"sigma": 10} | kwargs))


def test_pixel_limit_guards_encode_and_decode(tiny_model, rng):
    img = noisy_image(rng, 64, 64)
    with pytest.raises(fllic.LimitError):
        encode_detailed(img, sigma=10, model=tiny_model, max_pixels=100)
    data = fllic.encode(img, sigma=10, model=tiny_model)
    with pytest.raises(fllic.LimitError):
        fllic.decode(data, model=tiny_model, max_pixels=100)


def test_corrupt_and_truncated_files_raise(tiny_model, rng):
    data = fllic.encode(noisy_image(rng, 64, 64), sigma=10, model=tiny_model)
    for cut in (0, 5, 12, len(data) // 2, len(data) - 1):
        with pytest.raises(fllic.FllicError):
            fllic.decode(data[:cut], model=tiny_model)
    for pos in (3, 9, 20, len(data) // 2, len(data) - 6):
        bad = bytearray(data)
        bad[pos] ^= 0x5A
        with pytest.raises(fllic.FllicError):
            fllic.decode(bytes(bad), model=tiny_model)
    assert fllic.check(data) and not fllic.check(data[:-1])


def test_corrupt_payload_with_valid_file_crc_fails_the_pixel_crc(tiny_model, rng):
    import struct
    import zlib

    data = fllic.encode(noisy_image(rng, 64, 64), sigma=10, model=tiny_model)
    body = bytearray(data[:-4])
    body[-10] ^= 0xFF  # inside the Y stream
    forged = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
    with pytest.raises(fllic.FllicError):
        fllic.decode(forged, model=tiny_model)


def test_other_weights_are_refused(tiny_model, rng):
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

    torch.manual_seed(99)
    other = finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-test", "quality_scales": [2.0, 1.0]})
    data = fllic.encode(noisy_image(rng, 64, 64), sigma=10, model=tiny_model)
    with pytest.raises(fllic.ModelMismatchError):
        fllic.decode(data, model=other)


def test_unknown_model_id_is_refused(tiny_model, rng):
    data = fllic.encode(noisy_image(rng, 8, 8), sigma=10, model=tiny_model)
    with pytest.raises(fllic.ModelMismatchError):
        fllic.decode(data)  # "tiny-test" is not a shipped model
    with pytest.raises(fllic.ModelMismatchError):
        fllic.encode(noisy_image(rng, 8, 8), sigma=10, model="no-such-model")


def test_stale_tables_are_refused(rng):
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

    model = finalize(FLLIC(FllicConfig.tiny()), {"id": "t"})
    with torch.no_grad():
        next(model.net.parameters()).add_(0.01)
    with pytest.raises(fllic.ModelMismatchError):
        fllic.encode(noisy_image(rng, 8, 8), sigma=10, model=model)


def test_hostile_bytes_with_recomputed_crc_only_raise_fllic_errors(tiny_model, rng):
    """Flip bytes anywhere, fix up the file CRC, and decoding still fails cleanly or succeeds."""
    import struct
    import zlib

    data = fllic.encode(noisy_image(rng, 64, 64), sigma=10, model=tiny_model)
    for _ in range(60):
        body = bytearray(data[:-4])
        for pos in rng.integers(8, len(body), size=int(rng.integers(1, 4))):
            body[pos] = int(rng.integers(256))
        forged = bytes(body) + struct.pack("<I", zlib.crc32(bytes(body)))
        try:
            out = fllic.decode(forged, model=tiny_model, max_pixels=1 << 16)
        except fllic.FllicError:
            continue
        assert out.dtype == np.uint8


def test_float64_gemm_path_of_other_devices_gives_identical_pixels(tiny_model, rng):
    """The path CUDA takes (float64 GEMMs) decodes to the same pixels as the CPU path."""
    from fllic.models.integer import IntConv

    res = encode_detailed(noisy_image(rng, 70, 90), sigma=25, model=tiny_model)
    convs = [m for m in tiny_model.decoder.modules() if isinstance(m, IntConv)]
    try:
        for c in convs:
            c.float64_gemm = True
        out = fllic.decode(res.data, model=tiny_model)
    finally:
        for c in convs:
            c.float64_gemm = False
    assert np.array_equal(out, res.pixels)


def test_unavailable_device_is_a_clear_error(tiny_model, rng):
    import torch

    data = fllic.encode(noisy_image(rng, 32, 32), sigma=25, model=tiny_model)
    with pytest.raises(fllic.InputError, match="device must be"):
        fllic.decode(data, model=tiny_model, device="tpu")
    if not torch.cuda.is_available():
        with pytest.raises(fllic.InputError, match="CUDA is not available"):
            fllic.decode(data, model=tiny_model, device="cuda")


def test_version_1_file_names_the_version_that_wrote_it(tiny_model, rng):
    import struct
    import zlib

    from fllic.format import MAGIC

    data = bytearray(fllic.encode(noisy_image(rng, 32, 32), sigma=25, model=tiny_model))
    data[len(MAGIC)] = 1
    body = bytes(data[:-4])
    with pytest.raises(fllic.FormatError, match="version 1, written by fllic 0.1"):
        fllic.decode(body + struct.pack("<I", zlib.crc32(body)), model=tiny_model)


def test_same_input_and_settings_give_the_same_bytes(tiny_model, rng):
    img = noisy_image(rng, 90, 70)
    assert fllic.encode(img, sigma=18, model=tiny_model) == fllic.encode(img, sigma=18, model=tiny_model)


def test_grey_images_take_the_grey_default_table(rng):
    """A model with a grey table (python -m fllic.train.quality --grey) codes grey images at its level."""
    import copy

    from fllic.models.registry import DEFAULT_MODEL, load

    m = copy.copy(load(DEFAULT_MODEL))
    m.meta = dict(m.meta, default_quality=[[255.0, 5]], default_quality_grey=[[10.0, 3], [255.0, 2]])
    rgb, grey = noisy_image(rng, 40, 48), noisy_image(rng, 40, 48, 1)
    assert fllic.info(fllic.encode(rgb, sigma=25, model=m))["quality"] == 5
    assert fllic.info(fllic.encode(grey, sigma=25, model=m))["quality"] == 2
    assert fllic.info(fllic.encode(grey, sigma=5, model=m))["quality"] == 3
    assert fllic.info(fllic.encode(grey, sigma=25, model=m, quality=6))["quality"] == 6  # asked for: obeyed
    del m.meta["default_quality_grey"]  # a model without one: grey follows the colour table
    assert fllic.info(fllic.encode(grey, sigma=25, model=m))["quality"] == 5


def test_quality_refuses_grey_with_camera(capsys):
    from fllic.train.quality import main

    assert main(["--model", "x.pt", "--grey", "--camera"]) == 2
    assert "do not combine" in capsys.readouterr().err


def test_a_model_can_share_another_exports_encoder_file(tmp_path, rng):
    """Two exports of one network with other quality levels: the second refers to the first's encoder file."""
    from fllic._errors import ModelMismatchError
    from fllic.models.fllic_net import FLLIC, CodingModel, FllicConfig, finalize

    torch.manual_seed(7)
    net = FLLIC(FllicConfig.tiny())
    first = finalize(net, {"id": "tiny-a", "quality_scales": [2.0, 1.0]})
    first.save(tmp_path / "a.pt", max_bytes=0)  # forces the encoder into a file of its own
    assert (tmp_path / "a-encoder.pt").exists()
    second = finalize(net, {"id": "tiny-b", "quality_scales": [2.0, 1.4, 1.0]})
    second.save(tmp_path / "b.pt", max_bytes=0, shared_encoder="a-encoder.pt")
    assert not (tmp_path / "b-encoder.pt").exists()
    loaded = CodingModel.load(tmp_path / "b.pt")
    assert loaded.hash == second.hash != first.hash
    img = noisy_image(rng, 64, 96)
    data = fllic.encode(img, sigma=15, model=second, quality=2)
    assert np.array_equal(fllic.decode(data, model=loaded), fllic.decode(data, model=second))
    loaded.meta["default_quality"] = [[255.0, 2]]
    loaded.save(tmp_path / "b.pt")  # new metadata: still shares the encoder
    assert not (tmp_path / "b-encoder.pt").exists()
    other = finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny-c", "quality_scales": [2.0, 1.0]})
    with pytest.raises(ModelMismatchError, match="another encoder"):
        other.save(tmp_path / "c.pt", shared_encoder="a-encoder.pt")


def test_best_effort_decodes_a_file_with_a_flipped_byte(tiny_model):
    """The file CRC refuses a damaged file; verify=False (--best-effort) still gives its image, with warnings."""
    import warnings

    from fllic._errors import FllicError, FllicWarning

    img = np.random.default_rng(3).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = bytearray(fllic.encode(img, sigma=10, model=tiny_model))
    data[len(data) // 2] ^= 0x10
    with pytest.raises(FllicError):
        fllic.decode(bytes(data), model=tiny_model)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = fllic.decode(bytes(data), model=tiny_model, verify=False)
    assert out.shape == img.shape and any(issubclass(w.category, FllicWarning) for w in caught)


def test_coding_one_image_at_several_levels_runs_the_trunk_once(rng, monkeypatch):
    """The trunk's estimate does not depend on the level: a second level (a size cap stepping down, a rate
    sweep) reuses it, with the same bytes as a model coding that level first; another image or sigma does not."""
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

    torch.manual_seed(0)
    net = FLLIC(FllicConfig.tiny(trunk=True))
    m = finalize(net, {"id": "tiny-trunk", "quality_scales": [2.0, 1.0]})
    fresh = finalize(net, {"id": "tiny-trunk", "quality_scales": [2.0, 1.0]})
    calls = []
    real = type(m.net).estimate
    monkeypatch.setattr(type(m.net), "estimate", lambda self, *a, **k: calls.append(1) or real(self, *a, **k))
    img = noisy_image(rng, 70, 130)
    first = fllic.encode(img, sigma=20, model=m, quality=2, tile=64)
    n = len(calls)
    assert n >= 1  # one estimate per analysis window
    second = fllic.encode(img, sigma=20, model=m, quality=1, tile=64)
    assert len(calls) == n
    assert second == fllic.encode(img, sigma=20, model=fresh, quality=1, tile=64)
    assert first == fllic.encode(img, sigma=20, model=m, quality=2, tile=64)
    fllic.encode(img, sigma=21, model=m, quality=1, tile=64)
    fllic.encode(noisy_image(rng, 70, 130), sigma=20, model=m, quality=1, tile=64)
    assert len(calls) == 4 * n  # the fresh model once, then sigma 21, then the other image
