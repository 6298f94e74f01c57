"""Haar wavelet transform and the FFE (feature frequency enhancement) layer, Eq. 8 of the paper.

The one-level 2-D Haar DWT is four fixed 2x2 stride-2 filters per channel (LL, LH, HL, HH), each
with entries +-1/2. They are orthonormal, so the inverse (IDWT) is the transposed convolution with
the same filters and reconstruction is exact up to rounding (~1e-16 in float64).

Odd heights/widths are padded at the bottom/right (replicate) before the DWT and the result is
cropped back after the IDWT; padding only at the far edges keeps pixel (0, 0) at (0, 0), so the
image is never shifted.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from didtv.models.align import conv_flops, is_channels_last

#: Sub-band filters, in output order: LL (average), LH (rows differ: horizontal edges),
#: HL (columns differ: vertical edges), HH (diagonal).
_HAAR = (
    ((0.5, 0.5), (0.5, 0.5)),
    ((0.5, 0.5), (-0.5, -0.5)),
    ((0.5, -0.5), (0.5, -0.5)),
    ((0.5, -0.5), (-0.5, 0.5)),
)


def _filters(channels: int, like: torch.Tensor) -> torch.Tensor:
    """``(4 * channels, 1, 2, 2)``: the four Haar filters repeated for each channel."""
    base = torch.tensor(_HAAR, dtype=like.dtype, device=like.device).unsqueeze(1)  # (4, 1, 2, 2)
    return base.repeat(channels, 1, 1, 1)


def _dense_filters(channels: int, like: torch.Tensor) -> torch.Tensor:
    """``(4 * channels, channels, 2, 2)``: :func:`_filters` as one dense (block-diagonal) kernel,
    ``conv2d(x, it, stride=2) == haar_dwt(x)`` and ``conv_transpose2d(y, it, stride=2) ==
    haar_idwt(y)`` exactly (the zeros add nothing)."""
    eye = torch.eye(channels, dtype=like.dtype, device=like.device)
    return (eye[:, None, :, None, None] * _filters(1, like)[None]).reshape(4 * channels, channels, 2, 2)


def haar_dwt(x: torch.Tensor) -> torch.Tensor:
    """One-level Haar DWT: ``(b, c, h, w)`` -> ``(b, 4c, h/2, w/2)``; ``h`` and ``w`` even.

    Output channel ``4 * i + s`` is sub-band ``s`` (LL, LH, HL, HH) of input channel ``i``.
    """
    b, c, h, w = x.shape
    if h % 2 or w % 2:
        raise ValueError(f"haar_dwt needs even height and width, got {h}x{w} (use pad_to_even)")
    return F.conv2d(x, _filters(c, x), stride=2, groups=c)


def haar_idwt(y: torch.Tensor) -> torch.Tensor:
    """Inverse of :func:`haar_dwt`: ``(b, 4c, h, w)`` -> ``(b, c, 2h, 2w)``."""
    b, c4, h, w = y.shape
    if c4 % 4:
        raise ValueError(f"haar_idwt needs a multiple of 4 channels, got {c4}")
    return F.conv_transpose2d(y, _filters(c4 // 4, y), stride=2, groups=c4 // 4)


def pad_to_even(x: torch.Tensor, mode: str = "replicate") -> torch.Tensor:
    """Pad one row at the bottom and/or one column at the right when the size is odd."""
    h, w = x.shape[-2:]
    if h % 2 == 0 and w % 2 == 0:
        return x
    return F.pad(x, (0, w % 2, 0, h % 2), mode=mode)


def _spatial_sum(x: torch.Tensor) -> torch.Tensor:
    """``(b, c, h, w)`` -> its sums over ``h, w``, ``(b, c, 1, 1)`` float32. Channels-last (CPU
    inference): one matrix-vector product in ``x``'s dtype (float32 accumulation in oneDNN, the
    result rounded once to that dtype), 6 ms instead of 35 ms for Tiny's bands at 960x544 in bf16,
    where ``sum(dtype=float32)`` first copies ``x`` to float32."""
    if is_channels_last(x):
        ones = torch.ones(x.shape[2] * x.shape[3], 1, dtype=x.dtype, device=x.device)
        return (x.flatten(2) @ ones).float().unsqueeze(-1)
    return x.sum(dim=(2, 3), keepdim=True, dtype=torch.float32)


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(fc2(lrelu(fc1(mean_hw(x)))))``.

    LeakyReLU instead of SE's ReLU: with few hidden units (``channels // reduction``) a ReLU
    bottleneck can start with every unit dead for a sample and pass no gradient.
    """

    def __init__(self, channels: int, reduction: int = 16):
        super().__init__()
        hidden = max(1, channels // reduction)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
        """``mean`` (``(b, c, 1, 1)``) replaces ``x``'s own spatial mean: a tiled frame passes the
        whole frame's, so every tile is weighted like the untiled frame."""
        return x * self.weights(x, mean)

    def weights(self, x: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
        """The per-channel weights ``(b, c, 1, 1)`` that :meth:`forward` multiplies ``x`` by."""
        if mean is None:
            mean = _spatial_sum(x) / (x.shape[2] * x.shape[3])
        return torch.sigmoid(self.fc2(F.leaky_relu(self.fc1(mean.to(x.dtype)), 0.1)))

    def flops(self) -> int:
        return conv_flops(self.fc1, 1, 1) + conv_flops(self.fc2, 1, 1)


class FFE(nn.Module):
    """Feature frequency enhancement (Eq. 8), with a residual connection.

    ``out = x + IDWT(CA(Conv1x1(DWT(x))))`` for ``x`` of shape ``(b, c, h, w)``: the four sub-bands
    of every channel are mixed by a 1x1 conv (``4c -> 4c``: the paper's "dimensionality reduction"
    has to keep 4c channels for the IDWT to return c), reweighted by channel attention over the
    ``4c`` sub-band channels, and recombined. The residual keeps the original structure and lets
    the layer start close to the identity. Any ``h``, ``w`` (odd sizes padded and cropped back).
    """

    def __init__(self, channels: int, *, reduction: int = 16, pad_mode: str = "replicate"):
        super().__init__()
        self.channels = channels
        self.pad_mode = pad_mode
        self.mix = nn.Conv2d(4 * channels, 4 * channels, 1)
        self.attention = ChannelAttention(4 * channels, reduction)

    def bands(self, x: torch.Tensor) -> torch.Tensor:
        """The mixed sub-bands ``Conv1x1(DWT(x))``, ``(b, 4c, ceil(h/2), ceil(w/2))``."""
        x = pad_to_even(x, self.pad_mode)
        if is_channels_last(x):
            # CPU inference (channels-last): the DWT folded into the mix, one dense 2x2 stride-2
            # conv with the mix's cost (docs/benchmarks.md: 51 -> 13-25 ms for Tiny at 960x544 bf16)
            folded = self.mix.weight.flatten(1) @ _dense_filters(self.channels, self.mix.weight).flatten(1)
            return F.conv2d(x, folded.view(-1, self.channels, 2, 2), self.mix.bias, stride=2)
        return self.mix(haar_dwt(x))

    def band_sum(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(sum over positions of :meth:`bands` in float32, number of positions): what a tiled
        frame accumulates over its tiles to get the whole frame's attention mean."""
        bands = self.bands(x)
        return _spatial_sum(bands), bands.shape[-2] * bands.shape[-1]

    def forward(self, x: torch.Tensor, mean: torch.Tensor | None = None) -> torch.Tensor:
        """``mean``: the channel attention's input for the whole frame (see :meth:`band_sum`);
        ``None`` uses ``x``'s own."""
        h, w = x.shape[-2:]
        bands = self.bands(x)
        weights = self.attention.weights(bands, mean)
        if is_channels_last(bands):
            # the attention folded into a dense IDWT kernel per sample (grouped transposed convs
            # are ~4x slower than dense ones channels-last on oneDNN; docs/benchmarks.md)
            dense = _dense_filters(self.channels, bands)
            parts = [F.conv_transpose2d(bands[i : i + 1], dense * weights[i].view(-1, 1, 1, 1), stride=2)
                     for i in range(bands.shape[0])]
            enhanced = parts[0] if len(parts) == 1 else torch.cat(parts)
        else:
            enhanced = haar_idwt(bands * weights)
        return x + enhanced[..., :h, :w]

    def flops(self, h: int, w: int) -> int:
        """1x1 mix at half resolution + the two fixed Haar convs (4 MACs per output value each)."""
        hh, hw = (h + 1) // 2, (w + 1) // 2
        haar = 2 * 2 * 4 * 4 * self.channels * hh * hw  # DWT and IDWT: 4 outputs x 4 taps each
        return conv_flops(self.mix, hh, hw) + self.attention.flops() + haar
