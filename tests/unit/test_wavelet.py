"""Haar DWT/IDWT and the FFE layer (didtv/models/wavelet.py)."""

from __future__ import annotations

import pytest
import torch

from didtv.models.wavelet import FFE, haar_dwt, haar_idwt, pad_to_even


@pytest.mark.parametrize("shape", [(1, 1, 2, 2), (2, 3, 8, 6), (1, 5, 16, 34)])
def test_dwt_idwt_reconstruct_exactly(shape):
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    bands = haar_dwt(x)
    assert bands.shape == (shape[0], 4 * shape[1], shape[2] // 2, shape[3] // 2)
    torch.testing.assert_close(haar_idwt(bands), x, rtol=0, atol=1e-12)
    # orthonormal: energy is kept (Parseval)
    torch.testing.assert_close(bands.square().sum(), x.square().sum(), rtol=1e-12, atol=0)


def test_dwt_subbands_of_simple_patterns():
    const = torch.full((1, 1, 4, 4), 3.0, dtype=torch.float64)
    ll, lh, hl, hh = haar_dwt(const).unbind(1)
    assert torch.all(ll == 6.0) and torch.all(lh == 0) and torch.all(hl == 0) and torch.all(hh == 0)
    rows = torch.tensor([1.0, -1.0], dtype=torch.float64).repeat(2).view(1, 1, 4, 1).expand(1, 1, 4, 4)
    ll, lh, hl, hh = haar_dwt(rows).unbind(1)  # rows alternate: only LH (row differences) responds
    assert torch.all(ll == 0) and torch.all(lh == 2.0) and torch.all(hl == 0) and torch.all(hh == 0)


def test_channel_order_is_band_major_per_channel():
    x = torch.zeros(1, 2, 2, 2)
    x[0, 1] = 1.0  # only channel 1
    bands = haar_dwt(x)[0, :, 0, 0]
    assert bands.tolist() == [0.0, 0.0, 0.0, 0.0, 2.0, 0.0, 0.0, 0.0]


def test_odd_sizes_are_rejected_by_the_raw_transform_and_padded_by_pad_to_even():
    x = torch.rand(1, 2, 5, 7)
    with pytest.raises(ValueError, match="even"):
        haar_dwt(x)
    padded = pad_to_even(x)
    assert padded.shape == (1, 2, 6, 8)
    assert torch.equal(padded[..., :5, :7], x)  # original stays at the top-left: no shift
    assert torch.equal(padded[..., 5, :7], x[..., 4, :])  # replicate
    assert pad_to_even(torch.rand(1, 1, 4, 6)).shape == (1, 1, 4, 6)


def _identity_ffe(channels: int) -> FFE:
    """FFE whose 1x1 mix is the identity and whose attention passes everything (sigmoid(60)=1)."""
    ffe = FFE(channels, reduction=4).double()
    with torch.no_grad():
        ffe.mix.weight.copy_(torch.eye(4 * channels).view(4 * channels, 4 * channels, 1, 1))
        ffe.mix.bias.zero_()
        ffe.attention.fc2.weight.zero_()
        ffe.attention.fc2.bias.fill_(60.0)
    return ffe


@pytest.mark.parametrize("size", [(7, 9), (8, 5), (1, 1), (6, 10)])
def test_ffe_keeps_shape_and_does_not_shift(size):
    ffe = _identity_ffe(4)
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    out = ffe(x)
    assert out.shape == x.shape
    # identity branch + residual = 2x at every pixel, also in the last (padded) row/column
    torch.testing.assert_close(out, 2 * x, rtol=0, atol=1e-12)


def test_ffe_random_init_runs_on_odd_sizes_with_gradients():
    torch.manual_seed(0)
    ffe = FFE(8)
    x = torch.randn(1, 8, 9, 11, requires_grad=True)
    out = ffe(x)
    assert out.shape == x.shape
    out.square().mean().backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in ffe.parameters())


def test_ffe_flops_count_matches_flop_counter():
    from torch.utils.flop_counter import FlopCounterMode

    ffe = FFE(8)
    with FlopCounterMode(display=False) as counter:
        ffe(torch.rand(1, 8, 10, 14))
    assert counter.get_total_flops() == ffe.flops(10, 14)


@pytest.mark.parametrize("size", [(16, 24), (15, 23)])
@pytest.mark.parametrize("b", [1, 2])
def test_channels_last_ffe_folds_the_transforms_and_gives_the_same_numbers(size, b):
    """Channels-last features (CPU inference) take the folded form: the DWT inside the mix's
    stride-2 conv, the attention inside a dense IDWT kernel per sample. It equals the literal
    Eq. 8 within float rounding, with the frame's own attention mean or a given one (tiling),
    odd sizes included; bands() (what tiling sums) folds the same way."""
    torch.manual_seed(1)
    literal = FFE(8).eval()
    folded = FFE(8).eval()
    folded.load_state_dict(literal.state_dict())
    folded.to(memory_format=torch.channels_last)
    x = torch.randn(b, 8, *size)
    xc = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        total, count = literal.band_sum(x)
        mean = total / count
        ftotal, fcount = folded.band_sum(xc)
        want, want_mean = literal(x), literal(x, mean)
        got, got_mean = folded(xc), folded(xc, mean)
    assert fcount == count
    torch.testing.assert_close(ftotal, total, rtol=1e-5, atol=1e-4)
    torch.testing.assert_close(got, want, rtol=0, atol=1e-5)
    torch.testing.assert_close(got_mean, want_mean, rtol=0, atol=1e-5)
    if size[0] % 2 == 0:
        assert got.is_contiguous(memory_format=torch.channels_last) and not got.is_contiguous()
