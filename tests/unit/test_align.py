"""Deformable convolution and TSAF (didtv/models/align.py)."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from didtv.models.align import (
    OFFSET_SLOPE,
    TSAF,
    ModulatedDeformConv2d,
    deform_conv2d,
    deform_conv2d_torch,
    torchvision_available,
)


def _bilinear_zero(img: torch.Tensor, y: float, x: float) -> torch.Tensor:
    """DCN's sampling of one channel map at (y, x): bilinear, corners outside the image read 0."""
    h, w = img.shape
    if y <= -1 or y >= h or x <= -1 or x >= w:
        return img.new_zeros(())
    y0, x0 = math.floor(y), math.floor(x)
    ly, lx = y - y0, x - x0
    total = img.new_zeros(())
    for yy, wy in ((y0, 1 - ly), (y0 + 1, ly)):
        for xx, wx in ((x0, 1 - lx), (x0 + 1, lx)):
            if 0 <= yy < h and 0 <= xx < w:
                total = total + wy * wx * img[yy, xx]
    return total


def naive_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation):
    """Loop-by-loop DCNv2 following the definition (Eq. 7 with masks), torchvision's layout."""
    b, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    h_out, w_out = offset.shape[-2:]
    taps = kh * kw
    groups = offset.shape[1] // (2 * taps)
    cg = c_in // groups
    cols = x.new_zeros(b, c_in, taps, h_out, w_out)
    for n in range(b):
        for c in range(c_in):
            g = c // cg
            for k in range(taps):
                i, j = divmod(k, kw)
                for oy in range(h_out):
                    for ox in range(w_out):
                        dy = offset[n, 2 * (g * taps + k), oy, ox].item()
                        dx = offset[n, 2 * (g * taps + k) + 1, oy, ox].item()
                        y = oy * stride - padding + i * dilation + dy
                        xx = ox * stride - padding + j * dilation + dx
                        m = 1.0 if mask is None else mask[n, g * taps + k, oy, ox]
                        cols[n, c, k, oy, ox] = m * _bilinear_zero(x[n, c], y, xx)
    out = torch.einsum("ock,nckyx->noyx", weight.reshape(c_out, c_in, taps), cols)
    return out if bias is None else out + bias.view(1, -1, 1, 1)


def _random_case(seed, b=2, c_in=4, c_out=3, h=5, w=6, k=3, groups=2, stride=1, padding=1, dilation=1):
    gen = torch.Generator().manual_seed(seed)
    h_out = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    w_out = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    d = torch.float64
    x = torch.randn(b, c_in, h, w, generator=gen, dtype=d)
    offset = 3.0 * torch.randn(b, 2 * groups * k * k, h_out, w_out, generator=gen, dtype=d)  # some fall outside
    mask = torch.rand(b, groups * k * k, h_out, w_out, generator=gen, dtype=d)
    weight = torch.randn(c_out, c_in, k, k, generator=gen, dtype=d)
    bias = torch.randn(c_out, generator=gen, dtype=d)
    return x, offset, mask, weight, bias


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"stride": 2, "padding": 2, "dilation": 2, "h": 6, "w": 7},
        {"groups": 1, "k": 1, "padding": 0},
        {"groups": 4, "c_in": 4, "h": 4, "w": 4},
    ],
)
def test_pure_torch_dcn_matches_naive_loop(kwargs):
    stride, padding, dilation = (kwargs.get(n, d) for n, d in (("stride", 1), ("padding", 1), ("dilation", 1)))
    x, offset, mask, weight, bias = _random_case(0, **kwargs)
    got = deform_conv2d_torch(x, offset, mask, weight, bias, stride=stride, padding=padding, dilation=dilation)
    want = naive_deform_conv2d(x, offset, mask, weight, bias, stride, padding, dilation)
    assert got.dtype == torch.float64
    torch.testing.assert_close(got, want, rtol=0, atol=1e-12)


def test_zero_offsets_and_unit_mask_equal_plain_conv():
    x, offset, mask, weight, bias = _random_case(1, h=7, w=5)
    zeros, ones = torch.zeros_like(offset), torch.ones_like(mask)
    got = deform_conv2d_torch(x, zeros, ones, weight, bias, padding=1)
    torch.testing.assert_close(got, F.conv2d(x, weight, bias, padding=1), rtol=0, atol=1e-12)
    # mask=None is DCNv1 (all ones)
    torch.testing.assert_close(deform_conv2d_torch(x, zeros, None, weight, bias, padding=1), got, rtol=0, atol=1e-12)


def test_row_chunking_does_not_change_the_result():
    x, offset, mask, weight, bias = _random_case(6, h=9, w=5, stride=2, padding=2, dilation=2)
    whole = deform_conv2d_torch(x, offset, mask, weight, bias, stride=2, padding=2, dilation=2)
    for budget in (1, 2 * 4 * 9 * 3 * 2):  # one row at a time; two rows
        chunked = deform_conv2d_torch(x, offset, mask, weight, bias, stride=2, padding=2, dilation=2,
                                      max_elements=budget)
        torch.testing.assert_close(chunked, whole, rtol=0, atol=1e-12)


def test_integer_offsets_shift_the_image():
    """An offset of (+1, -2) on every tap of a 1x1 conv reads the pixel one row down, two left."""
    x = torch.arange(30, dtype=torch.float64).view(1, 1, 5, 6)
    offset = torch.tensor([1.0, -2.0], dtype=torch.float64).view(1, 2, 1, 1).expand(1, 2, 5, 6)
    out = deform_conv2d_torch(x, offset, None, torch.ones(1, 1, 1, 1, dtype=torch.float64))
    want = torch.zeros_like(x)
    want[..., :4, 2:] = x[..., 1:, :4]  # outside reads zero
    torch.testing.assert_close(out, want, rtol=0, atol=1e-12)


def test_sampling_coordinates_stay_precise_in_bfloat16():
    """bf16 has 8 significant bits: a coordinate near 600 would round to a multiple of 4.
    Sampling runs in float32, so a half-pixel shift of a 0/1 stripe pattern gives 0.5 everywhere."""
    w = 640
    x = (torch.arange(w) % 2).to(torch.bfloat16).view(1, 1, 1, w).expand(1, 1, 2, w).contiguous()
    offset = torch.zeros(1, 2, 2, w)
    offset[:, 1] = 0.5
    out = deform_conv2d_torch(x, offset, None, torch.ones(1, 1, 1, 1, dtype=torch.bfloat16))
    assert torch.all(out[..., : w - 1] == 0.5)


def test_dcn_gradcheck():
    x, offset, mask, weight, bias = _random_case(2, b=1, c_in=2, c_out=2, h=3, w=4, groups=2)
    args = tuple(t.requires_grad_() for t in (x, offset, mask, weight, bias))
    assert torch.autograd.gradcheck(lambda *a: deform_conv2d_torch(*a, padding=1), args, fast_mode=True)


def test_bad_shapes_raise():
    x, offset, mask, weight, bias = _random_case(3)
    with pytest.raises(ValueError, match="offset"):
        deform_conv2d_torch(x, offset[:, :-1], mask, weight, bias, padding=1)
    with pytest.raises(ValueError, match="mask"):
        deform_conv2d_torch(x, offset, mask[:, :-1], weight, bias, padding=1)
    with pytest.raises(ValueError, match="offset groups"):
        deform_conv2d_torch(x[:, :3], offset, mask, weight[:, :3], bias, padding=1)


@pytest.mark.skipif(not torchvision_available(),
                    reason="torchvision is not installed (it needs a torch build matching its own)")
def test_agrees_with_torchvision_float64():
    from torchvision.ops import deform_conv2d as tv_deform_conv2d

    for kwargs in ({}, {"stride": 2, "padding": 2, "dilation": 2, "h": 8, "w": 9}):
        stride, padding, dilation = (kwargs.get(n, d) for n, d in (("stride", 1), ("padding", 1), ("dilation", 1)))
        x, offset, mask, weight, bias = _random_case(4, **kwargs)
        want = tv_deform_conv2d(x, offset, weight, bias, stride=stride, padding=padding, dilation=dilation, mask=mask)
        got = deform_conv2d(x, offset, mask, weight, bias, stride=stride, padding=padding, dilation=dilation,
                            use_torchvision=False)
        torch.testing.assert_close(got, want, rtol=0, atol=1e-10)


def test_dispatch_uses_pure_torch_on_cpu():
    x, offset, mask, weight, bias = _random_case(5)
    torch.testing.assert_close(
        deform_conv2d(x, offset, mask, weight, bias, padding=1),
        deform_conv2d_torch(x, offset, mask, weight, bias, padding=1),
        rtol=0, atol=0,
    )
    if not torchvision_available():
        with pytest.raises(RuntimeError, match="torchvision"):
            deform_conv2d(x, offset, mask, weight, bias, padding=1, use_torchvision=True)


def test_tsaf_starts_with_zero_offsets_and_half_masks():
    torch.manual_seed(0)
    tsaf = TSAF(channels=8, offset_channels=8, offset_depth=2, num_blocks=1)
    frames = torch.rand(2, 7, 3, 8, 12)
    offset, mask = tsaf.offsets_and_mask(frames.reshape(2, 21, 8, 12))
    assert offset.shape == (2, 2 * 7 * 9, 8, 12) and mask.shape == (2, 7 * 9, 8, 12)
    assert torch.all(offset == 0) and torch.all(mask == 0.5)
    assert tsaf(frames).shape == (2, 8, 8, 12)


def test_tsaf_offsets_are_bounded_by_max_offset():
    torch.manual_seed(0)
    tsaf = TSAF(channels=8, offset_channels=8, offset_depth=1, num_blocks=0, max_offset=3.0)
    with torch.no_grad():
        tsaf.offsets.out.weight.normal_(0, 50.0)
    offset, _ = tsaf.offsets_and_mask(torch.rand(1, 21, 4, 4))
    assert offset.abs().max() <= 3.0
    assert offset.abs().max() > 2.9  # saturates instead of growing


def test_offset_bound_keeps_the_slope_at_zero():
    """Raising max_offset keeps small offsets (the same weights start where they were) and lets
    large ones grow to the new bound; the default bound is exactly 16 * tanh(raw)."""
    torch.manual_seed(0)
    narrow = TSAF(channels=8, offset_channels=8, offset_depth=1, num_blocks=0, max_offset=OFFSET_SLOPE)
    wide = TSAF(channels=8, offset_channels=8, offset_depth=1, num_blocks=0, max_offset=2 * OFFSET_SLOPE)
    x = torch.rand(1, 21, 4, 4)
    with torch.no_grad():
        narrow.offsets.out.weight.normal_(0, 1e-4)
        wide.load_state_dict(narrow.state_dict())
        raw = narrow.offsets(x)[:, : 2 * 7 * 9]
    small_n, _ = narrow.offsets_and_mask(x)
    small_w, _ = wide.offsets_and_mask(x)
    assert torch.equal(small_n, OFFSET_SLOPE * torch.tanh(raw))
    assert small_n.abs().max() > 0
    torch.testing.assert_close(small_w, small_n, rtol=1e-3, atol=1e-7)
    with torch.no_grad():
        for tsaf in (narrow, wide):
            tsaf.offsets.out.weight.normal_(0, 50.0)
    big_n, _ = narrow.offsets_and_mask(x)
    big_w, _ = wide.offsets_and_mask(x)
    assert big_n.abs().max() <= OFFSET_SLOPE and big_w.abs().max() > 1.8 * OFFSET_SLOPE


def test_zero_initialised_offset_layer_receives_gradient():
    torch.manual_seed(0)
    tsaf = TSAF(channels=8, offset_channels=8, offset_depth=1, num_blocks=1)
    tsaf(torch.rand(2, 7, 3, 6, 6)).square().mean().backward()
    assert tsaf.offsets.out.weight.grad.abs().sum() > 0
    assert tsaf.offsets.out.bias.grad.abs().sum() > 0


def test_tsaf_rejects_groups_that_do_not_divide_channels():
    with pytest.raises(ValueError, match="deform_groups"):
        TSAF(deform_groups=5)
    with pytest.raises(ValueError, match="offset_groups"):
        ModulatedDeformConv2d(21, 8, offset_groups=4)


def test_dcn_flops_formula():
    dcn = ModulatedDeformConv2d(21, 16, 3, offset_groups=7)
    assert dcn.flops(10, 20) == 2 * 16 * 21 * 9 * 200 + 21 * 9 * 200 * 9
