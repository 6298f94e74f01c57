"""Dual modulated convolution (DMC), Eq. 9-13 of the paper.

Global feature modulation (Eq. 9) scales and shifts a conv's output per channel with vectors
predicted from a condition: ``y = alpha * (W * x + b) + beta``. Because the modulation is per
channel and per sample, it can be folded into the kernel (Eq. 10-11)::

    alpha * (W * x + b) + beta = (diag(alpha) W) * x + (alpha * b + beta)

and DMC adds a per-channel pre-scale ``gamma`` of the input (Eq. 12-13)::

    alpha * (W * (gamma * x) + b) + beta = (diag(alpha) W diag(gamma)) * x + (alpha * b + beta)

Folding costs ``2 * c_out * c_in * k * k + 2 * c_out`` multiplications per sample instead of
``~3 * c * h * w`` per frame, and runs as one grouped convolution over the batch (``groups = b``):
every sample gets its own kernel. Zero padding commutes with the channel scaling, so the two forms
agree exactly for any kernel size. :func:`feature_modulated_conv2d` is the direct form, kept as
the numerical reference and as an ablation switch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from didtv.models.align import is_channels_last


def _check(x: torch.Tensor, weight: torch.Tensor, alpha, beta, gamma) -> None:
    b, c_in = x.shape[:2]
    c_out = weight.shape[0]
    for name, vec, n in (("alpha", alpha, c_out), ("beta", beta, c_out), ("gamma", gamma, c_in)):
        if vec is not None and tuple(vec.shape) != (b, n):
            raise ValueError(f"{name} must be (b={b}, {n}), got {tuple(vec.shape)}")


def kernel_modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor | None = None,
    *,
    padding: int = 0,
) -> torch.Tensor:
    """Eq. 13: conv of ``x`` with the per-sample kernel ``diag(alpha) W diag(gamma)``.

    Args:
        x: ``(b, c_in, h, w)``.
        weight: ``(c_out, c_in, k, k)``; bias ``(c_out,)`` or ``None``.
        alpha, beta: ``(b, c_out)``; gamma: ``(b, c_in)`` or ``None`` (Eq. 11, no pre-scale).

    Returns:
        ``(b, c_out, h', w')``, equal to :func:`feature_modulated_conv2d` up to rounding.
    """
    _check(x, weight, alpha, beta, gamma)
    b, c_in, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    kernel = alpha.view(b, c_out, 1, 1, 1) * weight.unsqueeze(0)  # (b, c_out, c_in, kh, kw)
    if gamma is not None:
        kernel = kernel * gamma.view(b, 1, c_in, 1, 1)
    shift = beta if bias is None else alpha * bias + beta  # (b, c_out)
    if b == 1 or is_channels_last(x):
        # One conv per sample. The grouped form below reshapes x to (1, b * c_in, h, w), which
        # copies a channels-last x (and for b == 1 leaves strides oneDNN takes for NCHW: the conv
        # then ran 35x slower, 146 ms against 4 ms for Tiny's 32-channel 1x1 at 960x544, bf16).
        outs = [F.conv2d(x[i : i + 1], kernel[i], shift[i], padding=padding) for i in range(b)]
        return outs[0] if b == 1 else torch.cat(outs)
    out = F.conv2d(
        x.reshape(1, b * c_in, h, w),
        kernel.reshape(b * c_out, c_in, kh, kw),
        shift.reshape(b * c_out),
        padding=padding,
        groups=b,
    )
    return out.view(b, c_out, *out.shape[-2:])


def feature_modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    alpha: torch.Tensor,
    beta: torch.Tensor,
    gamma: torch.Tensor | None = None,
    *,
    padding: int = 0,
) -> torch.Tensor:
    """Eq. 12 computed literally: scale the features, convolve, scale and shift the result."""
    _check(x, weight, alpha, beta, gamma)
    if gamma is not None:
        x = x * gamma[:, :, None, None]
    y = F.conv2d(x, weight, bias, padding=padding)
    return y * alpha[:, :, None, None] + beta[:, :, None, None]


class DualModulatedConv2d(nn.Module):
    """A conv layer whose kernel is modulated per sample by ``(alpha, beta, gamma)`` (Eq. 13).

    ``mode="kernel"`` folds the modulation into the kernel (the paper's method);
    ``mode="feature"`` scales the features (the ablation/reference); both give the same numbers.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 1, *, mode: str = "kernel"):
        super().__init__()
        if mode not in ("kernel", "feature"):
            raise ValueError(f"mode must be 'kernel' or 'feature', got {mode!r}")
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.kernel_size = kernel_size
        self.mode = mode
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels))
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))

    def forward(self, x: torch.Tensor, alpha: torch.Tensor, beta: torch.Tensor, gamma: torch.Tensor) -> torch.Tensor:
        fn = kernel_modulated_conv2d if self.mode == "kernel" else feature_modulated_conv2d
        return fn(x, self.weight, self.bias, alpha, beta, gamma, padding=self.kernel_size // 2)

    def flops(self, h: int, w: int) -> int:
        """Conv (2 * MACs) + the modulation, per sample (see :func:`modulation_cost`)."""
        k2 = self.kernel_size**2
        conv = 2 * self.out_channels * self.in_channels * k2 * h * w
        if self.mode == "kernel":
            return conv + 2 * self.out_channels * self.in_channels * k2 + 2 * self.out_channels
        return conv + self.in_channels * h * w + 2 * self.out_channels * h * w


# ----------------------------------------------------------------------------------------------
# Table XI of the paper: what modulating features costs against modulating the kernel.


@dataclass(frozen=True)
class ModulationCost:
    """Operation counts for one 1x1 ``channels -> channels`` layer on one ``height x width`` frame.

    ``gfm``: global feature modulation, ``h * w * c * 2`` (a scale and a shift per value).
    ``ckm``: convolution kernel modulation (Eq. 11), ``c * c + 2 * c`` (scale the kernel, then
    ``alpha * b + beta``). ``dmc``: dual modulation (Eq. 13), ``2 * c * c + 2 * c``.
    """

    height: int
    width: int
    channels: int

    @property
    def gfm(self) -> int:
        return self.height * self.width * self.channels * 2

    @property
    def ckm(self) -> int:
        return self.channels * self.channels + 2 * self.channels

    @property
    def dmc(self) -> int:
        return 2 * self.channels * self.channels + 2 * self.channels

    @property
    def ratio(self) -> float:
        """``ckm / gfm`` as a fraction (the paper prints it in percent)."""
        return self.ckm / self.gfm


#: The frame sizes of the paper's Table XI, (height, width).
TABLE_XI_SIZES = ((480, 720), (1080, 1920), (2160, 3840))


def modulation_cost_table(channels: int = 64, sizes=TABLE_XI_SIZES) -> list[ModulationCost]:
    """Rows of Table XI (pure arithmetic; nothing is run)."""
    return [ModulationCost(h, w, channels) for h, w in sizes]


def format_modulation_table(rows: list[ModulationCost] | None = None) -> str:
    """Table XI as plain text, in the paper's units (GFM in M, CKM in K), plus DMC (with gamma).

    The paper prints 44.22M for 720x480x64; the arithmetic gives 44.24M (its other rows match).
    """
    rows = rows if rows is not None else modulation_cost_table()
    lines = [f"{'Feature shape (w x h x c)':<26} {'GFM':>10} {'CKM':>7} {'Ratio':>9} {'DMC':>7}"]
    for r in rows:
        shape = f"{r.width}x{r.height}x{r.channels}"
        lines.append(
            f"{shape:<26} {r.gfm / 1e6:>9.2f}M {r.ckm / 1e3:>6.2f}K {r.ratio * 100:>8.4f}% {r.dmc / 1e3:>6.2f}K"
        )
    return "\n".join(lines)
