"""Streamed synthesis is exact: the same pixels for every tile size; tiled analysis stays close."""

import numpy as np
import pytest

import fllic
from fllic.codec import encode_detailed
from fllic.tiling import grid
from tests.conftest import noisy_image


def test_grid_covers_every_cell_once():
    cells = np.zeros((10, 7), int)
    for r0, r1, c0, c1 in grid(10, 7, 3):
        cells[r0:r1, c0:c1] += 1
    assert (cells == 1).all()


@pytest.mark.parametrize("tile", [64, 128, 192])
def test_tiled_decode_is_bit_identical_to_untiled(tiny_model, rng, tile):
    res = encode_detailed(noisy_image(rng, 300, 420), sigma=20, model=tiny_model, tile=4096)
    assert np.array_equal(fllic.decode(res.data, model=tiny_model, tile=tile), res.pixels)


def test_tiled_decode_of_the_shipped_model_is_bit_identical():
    """Bands of one latent row (tiles of 64 px on a strip 32 latents wide) reproduce the untiled pixels of the
    shipped model."""
    from fllic.demo import sample_image
    from fllic.noise import add_noise

    noisy = add_noise(sample_image()[:128], 25, seed=0)
    res = encode_detailed(noisy, sigma=25, tile=4096)
    assert np.array_equal(fllic.decode(res.data, tile=64), res.pixels)


def _shipped_latents(rows: int, cols: int, model: str | None = None):
    from fllic.decoder import model as decoder_model
    from fllic.decoder import synthesis as S
    from fllic.models.registry import DEFAULT_MODEL

    m = decoder_model.load(model or DEFAULT_MODEL)
    rng = np.random.default_rng(0)
    p = S.entropy_params(m, rng.integers(-2, 3, (rows, cols, m.step_z.size)), 25.0, float(m.q_scales[2]))
    return m, rng.integers(-3, 4, p.mu.shape), p, float(m.q_scales[2])


@pytest.mark.parametrize("tile", [64, 128, 320])  # bands of 1, 4 and 25 latent rows of a strip 20 latents wide
def test_the_reference_decoders_bands_of_rows_give_the_whole_images_pixels(tile):
    from fllic.decoder import synthesis as S

    m, u, p, q = _shipped_latents(3, 5)
    assert np.array_equal(S.streamed_synthesis(m, u, p, 25.0, q, tile), S.synthesis(m, u, p, 25.0, q))


@pytest.mark.parametrize("model, reach", [("fllic-awgn-v7", 124), ("fllic-awgn-v8", 128)])
def test_the_row_stream_holds_only_g_s_reach(model, reach):
    """Fed one latent row at a time, the row stream gives each pixel row as soon as every latent it reads has
    arrived: once it runs, its pixels trail the latents by g_s's reach, 124 pixel rows (7.75 latents) for v7's
    g_s and 128 (8 latents) for v8's deeper one, in both decoders' streams: what a band holds besides its own
    rows, where a tile would recompute a halo of that reach on every side."""
    import torch

    from fllic.decoder import integer as I
    from fllic.decoder import synthesis as S
    from fllic.models import decoding
    from fllic.models.int_rows import RowStream

    m, u, p, q = _shipped_latents(3, 2, model)
    a = S.g_s_input(m, S.y_hat(m, u, p), 25.0, q)
    d = decoding.load(model).decoder
    numpy_stream, torch_stream = I.RowStream([*m.gs, m.gs_out]), RowStream([*d.gs, d.gs_out])
    given, trail = [0, 0], [[], []]
    with torch.no_grad():
        for r in range(len(a) - 1):
            given[0] += 2 * len(numpy_stream(a[r : r + 1], last=False))  # half-resolution rows: two pixel rows
            given[1] += 2 * torch_stream(torch.from_numpy(a[None, r : r + 1]).int(), last=False).shape[1]
            for k in (0, 1):
                trail[k].append(S.LATENT * (r + 1) - given[k])
    for t in trail:
        assert t[-4:] == [reach] * 4 and max(t) == reach


@pytest.mark.parametrize("band", [1, 2, 5, 40])
def test_pytorchs_bands_of_rows_give_the_whole_images_pixels(band):
    """PyTorch's decoder streams g_s in bands of latent rows (fllic.models.int_rows): the whole image's pixels for
    any band, bands of 1 row (shorter than the kernels' reach) and taller than the image included."""
    import torch

    from fllic.models import decoding
    from fllic.models.registry import DEFAULT_MODEL

    d = decoding.load(DEFAULT_MODEL).decoder
    torch.manual_seed(0)
    z = torch.randint(-2, 3, (1, int(d.step_z.numel()), 3, 4), dtype=torch.int32)
    q = float(d.q_scales[2])
    with torch.no_grad():
        p = d.entropy_params(z, 25.0, q)
        u = torch.randint(-3, 4, p.mu.shape, dtype=torch.int32)
        whole = d.synthesis(u, p, 25.0, q)
        assert torch.equal(d.streamed_synthesis(u, p, 25.0, q, band).to(whole.dtype), whole)


def test_tiled_encode_is_close_to_untiled_and_decodes_exactly(tiny_model, rng):
    from fllic.metrics import psnr

    img = noisy_image(rng, 256, 320)
    whole = encode_detailed(img, sigma=20, model=tiny_model, tile=4096)
    tiled = encode_detailed(img, sigma=20, model=tiny_model, tile=128)
    assert np.array_equal(fllic.decode(tiled.data, model=tiny_model), tiled.pixels)
    assert abs(psnr(tiled.pixels, img) - psnr(whole.pixels, img)) < 0.05


def test_tile_must_be_a_multiple_of_64(tiny_model, rng):
    with pytest.raises(fllic.InputError, match="multiple of 64"):
        fllic.encode(noisy_image(rng, 32, 32), sigma=10, model=tiny_model, tile=100)


def test_16_bit_images_are_tiled_too(tiny_model, rng):
    """A 16-bit image is converted to float a tile at a time, like an 8-bit one, and decodes exactly."""
    from fllic.tiling import to_tensor

    img8 = noisy_image(rng, 200, 260)
    img16 = img8.astype(np.uint16) * 257
    assert np.allclose(to_tensor(img16).numpy(), to_tensor(img8).numpy(), atol=1e-7)  # normalised by the peak
    tiled = encode_detailed(img16, sigma=20 * 257, model=tiny_model, tile=128)
    whole = encode_detailed(img16, sigma=20 * 257, model=tiny_model, tile=4096)
    assert tiled.pixels.dtype == np.uint16
    assert np.array_equal(fllic.decode(tiled.data, model=tiny_model), tiled.pixels)
    assert np.abs(tiled.pixels.astype(int) - whole.pixels.astype(int)).mean() < 257


def test_each_decoder_takes_its_own_default_tile_and_a_given_one(tiny_model, rng, monkeypatch):
    """Decoding with PyTorch defaults to DECODE_TILE (larger: faster, more memory); encoding keeps DEFAULT_TILE."""
    import fllic.codec as codec

    seen = []
    decompress = type(tiny_model).decompress
    monkeypatch.setattr(type(tiny_model), "decompress",
                        lambda self, *a, tile, **k: seen.append(tile) or decompress(self, *a, tile=tile, **k))
    data = encode_detailed(noisy_image(rng, 40, 40), sigma=20, model=tiny_model).data
    fllic.decode(data, model=tiny_model, decoder="torch")
    fllic.decode(data, model=tiny_model, decoder="torch", tile=128)
    assert seen == [codec.DECODE_TILE, 128] and codec.DECODE_TILE > codec.DEFAULT_TILE


def test_pytorchs_entropy_params_in_row_chunks_are_the_reference_decoders(monkeypatch):
    """PyTorch's h_s computes μ, Δ_y and the table index a chunk of latent rows at a time (PARAMS_CHUNK), each
    chunk's output convolutions reading a row on each side: chunks of one row give the reference decoder's
    whole-image maps, integer for integer."""
    import torch

    from fllic.decoder import model as decoder_model
    from fllic.decoder import synthesis as S
    from fllic.models import decoding, int_decoder
    from fllic.models.registry import DEFAULT_MODEL

    d, m = decoding.load(DEFAULT_MODEL).decoder, decoder_model.load(DEFAULT_MODEL)
    z = np.random.default_rng(1).integers(-3, 4, (3, 4, m.step_z.size))
    q = float(m.q_scales[3])
    monkeypatch.setattr(int_decoder, "PARAMS_CHUNK", 1)  # one latent row a chunk: 12 chunks
    with torch.no_grad():
        p = d.entropy_params(torch.from_numpy(z.transpose(2, 0, 1)[None]).int(), 25.0, q)
    ref = S.entropy_params(m, z, 25.0, q)
    for ours, theirs in ((p.mu, ref.mu), (p.step, ref.step), (p.index, ref.index)):
        assert np.array_equal(ours[0].numpy(), theirs)


def test_pytorchs_bands_hold_at_most_band_latents(tiny_model, rng, monkeypatch):
    """A wide image streams through PyTorch's g_s in bands of at most BAND_LATENTS latents (buffers the heap
    reuses, fllic._heap), whatever the tile; the pixels are the whole image's."""
    from fllic import tiling
    from fllic.models.int_decoder import IntegerDecoder

    res = encode_detailed(noisy_image(rng, 64, 640), sigma=20, model=tiny_model, tile=4096)  # 4 x 40 latents
    bands, stream = [], IntegerDecoder.streamed_synthesis
    monkeypatch.setattr(IntegerDecoder, "streamed_synthesis", lambda self, u, p, s, q, band, progress=False: (
        bands.append(band) or stream(self, u, p, s, q, band, progress)))
    monkeypatch.setattr(tiling, "BAND_LATENTS", 80)
    assert np.array_equal(fllic.decode(res.data, model=tiny_model, tile=256, decoder="torch"), res.pixels)
    assert bands == [2]  # 80 // 40 latents a row; the tile alone would allow 256 // 40 = 6 rows
