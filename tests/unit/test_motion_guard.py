"""The motion guard (didtv.pipeline.guard): neighbours lose only what has no counterpart in reach."""

import numpy as np
import pytest
import torch.nn.functional as F
import torch

from didtv.models.registry import load_model
from didtv.pipeline.guard import GUARD_RADIUS, motion_guard, unreachable_mask
from didtv.pipeline.runner import Runner


def _box_clip(speed: int, t: int = 7, h: int = 96, w: int = 64) -> torch.Tensor:
    """A bright flat field with a dark 20x20 box moving down ``speed`` px per frame: (1, t, 3, h, w)."""
    x = torch.full((1, t, 3, h, w), 0.8)
    for k in range(t):
        top = 38 + speed * (k - t // 2)
        x[0, k, :, max(top, 0):max(top + 20, 0), 22:42] = 0.1
    return x


def test_a_still_window_is_left_alone():
    torch.manual_seed(0)
    frame = torch.rand(1, 1, 3, 40, 48)
    x = frame.expand(1, 7, 3, 40, 48).contiguous()
    assert torch.equal(motion_guard(x), x)


def test_texture_moving_within_reach_is_left_alone():
    """A textured frame panned by 2 px per frame (inside the reach of GUARD_RADIUS): every value
    of the centre has a counterpart nearby, nothing is replaced away from the borders."""
    torch.manual_seed(0)
    base = torch.rand(3, 80, 120)
    x = torch.stack([torch.roll(base, shifts=2 * (k - 3), dims=2) for k in range(7)])[None]
    assert 2 <= GUARD_RADIUS
    y = motion_guard(x)
    # torch.roll wraps at the sides: the content that leaves the frame there has no counterpart
    inner = (..., slice(None), slice(GUARD_RADIUS * 3 + 2, -GUARD_RADIUS * 3 - 2))
    assert torch.equal(y[inner], x[inner])


def test_fast_box_is_replaced_by_the_centre_where_it_left():
    x = _box_clip(speed=19)
    y = motion_guard(x)
    centre = x[0, 3]
    assert torch.equal(y[0, 3], centre)  # the centre frame is never touched
    # frame -1: the box sat 19 rows higher (rows 19-38), over bright roof in the centre frame;
    # its inside, farther than the reach from its edges, has no bright pixel within reach
    prev = y[0, 2]
    band = (slice(None), slice(24, 34), slice(27, 37))
    assert torch.allclose(x[0, 2][band], torch.tensor(0.1))
    torch.testing.assert_close(prev[band], centre[band])
    # far from the box both frames agree and nothing changes
    assert torch.equal(prev[:, 80:, :], x[0, 2][:, 80:, :])


def test_slow_box_within_reach_is_kept():
    """Motion the network can align (1 px per frame) is not the guard's business."""
    x = _box_clip(speed=1)
    m = unreachable_mask(x[:, 3], x[:, 2], GUARD_RADIUS)
    assert m.max() == 0


def test_mask_is_soft_and_bounded():
    x = _box_clip(speed=19)
    m = unreachable_mask(x[:, 3], x[:, 2], GUARD_RADIUS)
    assert m.shape == (1, 1, 96, 64)
    assert 0 <= m.min() and m.max() <= 1
    assert ((m > 0) & (m < 1)).any()  # feathered edge, not a hard cut


def test_inplace_writes_into_the_window():
    x = _box_clip(speed=19)
    expected = motion_guard(x)
    assert not torch.equal(expected, x)  # the copy left x alone
    assert motion_guard(x, inplace=True) is x
    assert torch.equal(x, expected)


def test_guard_keeps_the_dtype():
    x = _box_clip(speed=19).to(torch.bfloat16)
    assert motion_guard(x).dtype == torch.bfloat16


def test_runner_feeds_the_guarded_window():
    torch.manual_seed(0)
    net = load_model("tiny", pretrained=False)
    seen = []
    real_forward = net.forward

    def forward(x, cond=None):
        seen.append(x.clone())
        return real_forward(x, cond)

    net.forward = forward
    frames = [f.numpy() for f in _box_clip(speed=19)[0]]
    Runner(net, device="cpu", motion_guard=True).infer(frames)
    Runner(net, device="cpu", motion_guard=False).infer(frames)
    guarded, raw = seen
    expected = motion_guard(torch.stack([torch.from_numpy(f) for f in frames])[None])
    torch.testing.assert_close(guarded, expected)
    torch.testing.assert_close(raw, torch.stack([torch.from_numpy(f) for f in frames])[None])


def test_runner_guard_only_for_windows():
    assert not Runner(load_model("bt2408"), device="cpu", motion_guard=True).motion_guard
    assert Runner(load_model("tiny", pretrained=False), device="cpu", motion_guard=True).motion_guard


def test_max_filter_equals_max_pooling():
    from didtv.pipeline.guard import _max_filter

    torch.manual_seed(0)
    x = torch.rand(2, 3, 37, 53)
    for radius in (1, 2, 3, 4, 8, 12, 30):  # 30: wider than the frame is high
        ref = torch.nn.functional.max_pool2d(x, 2 * radius + 1, stride=1, padding=radius)
        assert torch.equal(_max_filter(x, radius), ref), radius


@pytest.mark.parametrize("shape", [(1, 1, 7, 9), (2, 3, 8, 5), (1, 1, 2, 3)])
@pytest.mark.parametrize("radius", [1, 2, 3])
def test_box_blur_is_the_mean_of_the_pixels_inside_the_frame(shape, radius):
    """The guard's feathering: a separable box mean that counts only in-frame pixels (what
    avg_pool2d with count_include_pad=False does), also where the radius exceeds the frame."""
    from didtv.pipeline.guard import _box_blur

    x = torch.rand(*shape, generator=torch.Generator().manual_seed(radius))
    h, w = shape[-2:]
    want = torch.empty_like(x)
    for y in range(h):
        for i in range(w):
            want[..., y, i] = x[..., max(0, y - radius):y + radius + 1, max(0, i - radius):i + radius + 1].mean((-2, -1))
    torch.testing.assert_close(_box_blur(x, radius), want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("hw", [(8, 6), (7, 9), (1, 5)])
def test_half_mean_averages_2x2_blocks_and_the_odd_edges_pixels(hw):
    from didtv.pipeline.guard import _half_mean

    x = torch.rand(2, 3, *hw, generator=torch.Generator().manual_seed(1))
    want = F.avg_pool2d(x, 2, ceil_mode=True)
    got = _half_mean(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)


@pytest.mark.parametrize("blob", [(3, 7, 5, 9), (0, 4, 0, 3), (14, 16, 20, 24), (0, 16, 0, 24), None])
def test_upsampling_only_where_the_mask_is_not_zero_equals_the_whole_mask(blob):
    """_upsampled: the rectangle around the mask's support, upsampled 2x, is the whole mask's
    upsampling there, and the whole one is zero outside it; blobs at the edges, the whole frame,
    an empty mask (None), and an odd size (the whole mask)."""
    from didtv.pipeline.guard import _upsampled

    g = torch.Generator().manual_seed(0)
    m = torch.zeros(2, 1, 16, 24)
    if blob is not None:
        y0, y1, x0, x1 = blob
        m[1, :, y0:y1, x0:x1] = torch.rand(1, y1 - y0, x1 - x0, generator=g) + 0.01
    whole = F.interpolate(m, size=(32, 48), mode="bilinear", align_corners=False)
    up = _upsampled(m, 32, 48)
    if blob is None:
        assert up is None
        return
    rows, cols, part = up
    placed = torch.zeros_like(whole)
    placed[..., rows, cols] = part
    assert torch.equal(placed, whole)
    if blob != (0, 16, 0, 24):
        assert part.numel() < whole.numel()
    rows, cols, part = _upsampled(m[..., :15, :23], 29, 45)  # odd: 15 x 23 half-size rows -> 29 x 45
    assert torch.equal(part, F.interpolate(m[..., :15, :23], size=(29, 45), mode="bilinear", align_corners=False))
