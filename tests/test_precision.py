"""The encoder's float analysis in bf16: only the trunk and g_a, never the integer decoder's arithmetic."""

import numpy as np
import pytest
import torch

import fllic
from fllic import precision
from fllic.codec import encode_detailed
from tests.conftest import noisy_image


@pytest.fixture
def bf16(monkeypatch):
    """A CPU with native bf16, whatever this one has; the dtype of every convolution's output, by module type."""
    monkeypatch.setattr(precision, "bf16_native", lambda: True)
    seen = {}

    def record(module, inputs, output):
        if isinstance(output, torch.Tensor):
            seen.setdefault(type(module).__name__, set()).add(output.dtype)

    handle = torch.nn.modules.module.register_module_forward_hook(record)
    yield seen
    handle.remove()


def test_bf16_runs_the_analysis_and_the_file_still_decodes_to_the_encoders_pixels(tiny_model, rng, bf16):
    img = noisy_image(rng, 96, 128)
    res = encode_detailed(img, sigma=20, model=tiny_model)
    assert torch.bfloat16 in bf16["Conv2d"]  # the trunk and g_a ran in bf16
    assert np.array_equal(fllic.decode(res.data, model=tiny_model), res.pixels)
    bf16.clear()
    kept = encode_detailed(img, sigma=20, model=tiny_model, float32=True)
    assert torch.bfloat16 not in bf16["Conv2d"]
    assert np.array_equal(fllic.decode(kept.data, model=tiny_model), kept.pixels)
    assert abs(len(kept.data) - len(res.data)) <= 0.05 * len(kept.data)


def test_bf16_only_on_a_cpu_that_has_it_and_not_where_float32_is_asked(monkeypatch):
    monkeypatch.setattr(precision, "bf16_native", lambda: True)
    assert precision.bf16_in_use(torch.device("cpu")) and not precision.bf16_in_use(torch.device("cuda"))
    with precision.float32():
        assert not precision.bf16_in_use(torch.device("cpu"))
    assert precision.bf16_in_use("cpu")
    monkeypatch.setattr(precision, "bf16_native", lambda: False)
    assert not precision.bf16_in_use("cpu")


def test_bf16_is_not_native_where_onednn_is_capped_below_it(monkeypatch):
    """ONEDNN_MAX_CPU_ISA=AVX2 (the portability matrix's setting) emulates bf16: the analysis keeps float32."""
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: True, raising=False)
    for cap, native in (("AVX2", False), ("avx512_core", False), ("AVX512_CORE_VNNI", False), ("", True),
                        ("AVX512_CORE_BF16", True), ("AVX512_CORE_AMX", True), ("ALL", True)):
        monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", cap)
        assert precision.bf16_native() is native, cap
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    monkeypatch.setenv("DNNL_MAX_CPU_ISA", "SSE41")
    assert not precision.bf16_native()


def test_the_precision_bench_holds_the_default_points_to_the_issues_bounds():
    from fllic.bench.precision import MAX_BITS, MAX_DB, within

    def row(db, bpp):
        return {"float32": {"psnr": 30.0, "bpp": 1.0}, "bf16": {"psnr": 30.0 + db, "bpp": bpp}}

    assert within({15.0: [row(0.01, 1.004), row(-0.01, 0.999)]})
    assert not within({15.0: [row(2 * MAX_DB, 1.0)]})
    assert not within({25.0: [row(0.0, 1.0 + 2 * MAX_BITS)]})


def test_fllic_compress_float32_keeps_the_analysis_in_float32(tmp_path, rng, tiny_model_path, bf16):
    from fllic.cli import main
    from fllic.imageio import write_image

    write_image(tmp_path / "x.png", noisy_image(rng, 40, 48))
    for flag, folder in (["--float32"], "f32"), ([], "bf16"):
        bf16.clear()
        assert main(["compress", str(tmp_path / "x.png"), "-o", str(tmp_path / f"{folder}.fllic"), "--sigma", "20",
                     "--model", str(tiny_model_path), "-q", *flag]) == 0
        assert (torch.bfloat16 in bf16["Conv2d"]) == (not flag)


def test_a_coding_model_analyses_on_channels_last_weights_and_codes_as_the_plain_layout_does(rng):
    """The trunk's and g_a's weights are channels-last once a model is loaded (fllic.precision.channels_last); the
    layout changes no weight (the model's hash holds) and, in float32, the file's symbols stay those of the plain
    layout (a tiny model's few symbols: the same bytes)."""
    import copy

    from fllic.bench.layout import LAYOUTS, code_image, file_rows
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

    torch.manual_seed(0)
    tiny_model = finalize(FLLIC(FllicConfig.tiny(trunk=True)), {"id": "tiny-trunk", "quality_scales": [2.0, 1.0]})
    for part in (tiny_model.net.trunk, tiny_model.net.g_a):
        weights = [m.weight for m in part.modules() if isinstance(m, torch.nn.Conv2d)]
        assert weights and all(w.is_contiguous(memory_format=torch.channels_last) for w in weights)
    plain = copy.deepcopy(tiny_model)
    precision.channels_last(plain.net, on=False)
    assert not plain.net.g_a[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain._hash() == tiny_model.hash
    models = {"plain": plain, "channels-last": tiny_model}
    clean = noisy_image(rng, 64, 96)
    noisy = np.clip(clean + rng.normal(0, 15, clean.shape), 0, 255).astype(np.uint8)
    row = code_image(models, clean, noisy, 15.0, float32=True)
    assert row["plain"]["data"] == row["channels-last"]["data"] and all(row[k]["exact"] for k in LAYOUTS)
    (line,) = file_rows({(15.0, "float32"): [row]})
    assert line.startswith("| 15 | float32 | 1 / 1 |") and line.endswith("| +0.0000 | +0.000 % | yes |")
