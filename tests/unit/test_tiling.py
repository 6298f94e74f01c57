"""Tiled inference (didtv.pipeline.runner): tiles cover the frame once, share one condition and
FFE statistics, and give the whole-frame result."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from didtv.models.registry import load_model
from didtv.models.wavelet import FFE
from didtv.pipeline.runner import Runner, parse_tile, tile_boxes


@pytest.mark.parametrize("h,w,edge,halo", [(64, 96, 32, 8), (72, 40, 32, 16), (16, 16, 64, 8)])
def test_tile_cores_partition_the_frame(h, w, edge, halo):
    cover = np.zeros((h, w), int)
    for (iy, ix), (oy, ox), (cy, cx) in tile_boxes(h, w, edge, halo):
        cover[oy, ox] += 1
        # the core lies inside the input, and crop picks exactly it
        assert iy.start <= oy.start and oy.stop <= iy.stop and ix.start <= ox.start and ox.stop <= ix.stop
        assert (cy.start + iy.start, cy.stop + iy.start) == (oy.start, oy.stop)
        assert (cx.start + ix.start, cx.stop + ix.start) == (ox.start, ox.stop)
        # halo on every side that is not the frame edge
        assert iy.start == max(0, oy.start - halo) and iy.stop == min(h, oy.stop + halo)
    assert (cover == 1).all()


def test_parse_tile():
    assert parse_tile("auto") is None and parse_tile(None) is None
    assert parse_tile("off") == 0 and parse_tile("512") == 512
    with pytest.raises(ValueError):
        parse_tile("big")
    with pytest.raises(ValueError):
        parse_tile(-8)


def test_ffe_with_its_own_mean_is_unchanged():
    torch.manual_seed(0)
    ffe = FFE(8).eval()
    x = torch.randn(2, 8, 16, 24)
    total, count = ffe.band_sum(x)
    with torch.no_grad():
        torch.testing.assert_close(ffe(x, total / count), ffe(x))
        # and a different mean does change the result (the argument is used)
        assert not torch.allclose(ffe(x, total / count + 1.0), ffe(x))


def smooth_frames(n=7, h=96, w=128, seed=0):
    """Real-looking content: smooth random fields moving a few pixels per frame."""
    rng = np.random.default_rng(seed)
    base = rng.random((3, h // 8 + 4, w // 8 + 4)).astype(np.float32)
    big = torch.nn.functional.interpolate(torch.from_numpy(base)[None], scale_factor=8, mode="bicubic")[0].numpy()
    noise = rng.random((3, h + 2 * n, w + 3 * n)).astype(np.float32)
    frames = []
    for i in range(n):
        f = big[:, 2 * i:2 * i + h, 3 * i:3 * i + w].copy()
        f[:, :, : w // 2] *= 0.15  # a dark half and a bright, textured half: tiles see
        f[:, :, w // 2:] = 0.6 + 0.4 * noise[:, 2 * i:2 * i + h, 3 * i + w // 2:3 * i + w]  # different statistics
        frames.append(np.clip(f, 0, 1))
    return frames


def test_tiled_tiny_matches_the_whole_frame_within_a_ten_bit_code():
    net = load_model("tiny")  # shipped weights: learned offsets, so the halo matters
    window = smooth_frames()
    whole = Runner(net, device="cpu", tile="off").infer(window)
    tiled_runner = Runner(net, device="cpu", tile=32)
    tiled = tiled_runner.infer(window)
    assert tiled_runner.tiles_run == 12  # 3 x 4 tiles of 32
    assert np.abs(tiled - whole).max() * 1023 < 1.0


def test_tiles_without_the_shared_ffe_statistics_would_differ():
    """The check above can fail: running each tile as a whole frame (own FFE mean) differs."""
    net = load_model("tiny")
    window = smooth_frames()
    whole = Runner(net, device="cpu", tile="off").infer(window)
    x = torch.from_numpy(np.stack(window))[None]
    out = torch.empty(1, 3, 96, 128)
    with torch.inference_mode():
        cond = net.condition_vector(x)
        for (iy, ix), (oy, ox), (cy, cx) in tile_boxes(96, 128, 32, net.spec.halo):
            out[..., oy, ox] = net(x[..., iy, ix], cond)[0][..., cy, cx]
    assert np.abs(out[0].numpy() - whole).max() * 1023 > 1.0


def test_auto_tiling_threshold():
    net = load_model("tiny", pretrained=False)
    r = Runner(net, device="cpu")
    assert r.tile_for(1088, 1920) is None
    assert r.tile_for(2160, 3840) == 1024
    assert Runner(net, device="cpu", tile=100).tile_for(200, 200) == 96  # rounded to the multiple
    assert Runner(net, device="cpu", tile="off").tile_for(2160, 3840) is None
    assert Runner(load_model("bt2408"), device="cpu", tile=64).tile_for(2160, 3840) is None  # never tiles
