"""TSAF: temporal-spatial alignment fusion (Sec. III-C of the paper).

The seven SDR frames go through a U-Net-like predictor of per-tap offsets and masks; a modulated
deformable convolution (DCNv2, Eq. 7 plus a sigmoid mask per tap) samples every frame at its own
offsets and fuses them into one feature map; residual blocks then refine the fused features::

    frames (b, t, 3, h, w) --concat--> (b, 3t, h, w) --OffsetUNet--> offsets, masks
    (b, 3t, h, w) --DCNv2(offsets, masks)--> (b, c, h, w) --ResBlocks--> F_f (b, c, h, w)

The deformable convolution itself (three kernels behind one function) is in
:mod:`didtv.models.deform`; its names are importable from here as before.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from didtv.models.deform import (  # noqa: F401  (re-exported: the old home of these names)
    ModulatedDeformConv2d,
    _dcn_geometry,
    _native_applies,
    conv_flops,
    convs_to_channels_last,
    deform_conv2d,
    deform_conv2d_native,
    deform_conv2d_torch,
    is_channels_last,
    native_deform_available,
    torchvision_available,
)


def _conv(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, 3, stride=stride, padding=1)


class OffsetUNet(nn.Module):
    """U-Net predicting DCN offsets and masks from the concatenated frames.

    ``depth`` stride-2 levels (each: strided 3x3 conv + 3x3 conv), bilinear upsampling with skip
    concatenation on the way up, and a final 3x3 conv to ``out_channels``. That final conv is
    zero-initialised, so the network starts as a plain convolution of every frame at its own
    position (offset 0, mask 0.5); it still receives gradients on the first step.

    Input ``(b, in_channels, h, w)`` with ``h`` and ``w`` multiples of ``2 ** depth``.
    """

    def __init__(self, in_channels: int, channels: int, out_channels: int, *, depth: int = 3):
        super().__init__()
        self.depth = depth
        self.head = _conv(in_channels, channels)
        self.down = nn.ModuleList(
            nn.ModuleList([_conv(channels, channels, stride=2), _conv(channels, channels)]) for _ in range(depth)
        )
        self.up = nn.ModuleList(_conv(2 * channels, channels) for _ in range(depth))
        self.out = _conv(channels, out_channels)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)
        self.act = nn.LeakyReLU(0.1, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        feat = self.act(self.head(x))
        skips = []
        for strided, conv in self.down:
            skips.append(feat)
            feat = self.act(conv(self.act(strided(feat))))
        for conv, skip in zip(self.up, reversed(skips)):
            feat = F.interpolate(feat, size=skip.shape[-2:], mode="bilinear", align_corners=False)
            feat = self.act(conv(torch.cat((feat, skip), dim=1)))
        return self.out(feat)

    def use_channels_last(self) -> None:
        """Channels-last weights for every convolution (faster on CPU with oneDNN: the U-Net body
        took 0.65 s instead of 1.10 s for Tiny at 960x544 on 2 cores). The output is then
        channels-last too; the native DCN kernel reads it as it lies (docs/benchmarks.md)."""
        convs_to_channels_last(self)

    def flops(self, h: int, w: int) -> int:
        total = conv_flops(self.head, h, w) + conv_flops(self.out, h, w)
        for level, ((strided, conv), up) in enumerate(zip(self.down, self.up)):
            lh, lw = h >> level, w >> level  # up conv of this level runs at its skip's size
            total += conv_flops(strided, lh // 2, lw // 2) + conv_flops(conv, lh // 2, lw // 2)
            total += conv_flops(up, lh, lw)
        return total


class ResidualBlock(nn.Module):
    """``x + conv(relu(conv(x)))`` with 3x3 convs, no normalisation (EDSR style)."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = _conv(channels, channels)
        self.conv2 = _conv(channels, channels)
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.act(self.conv1(x)))

    def flops(self, h: int, w: int) -> int:
        return conv_flops(self.conv1, h, w) + conv_flops(self.conv2, h, w)


#: Pixels of offset per unit of the offset U-Net's raw output near 0 (see :class:`TSAF`): the
#: slope of the original ``16 * tanh(raw)``, kept fixed when ``max_offset`` changes.
OFFSET_SLOPE = 16.0


class TSAF(nn.Module):
    """Temporal-spatial alignment fusion: ``(b, t, 3, h, w)`` frames -> ``(b, channels, h, w)``.

    Args:
        frames: window length ``t``.
        channels: output feature channels.
        offset_channels: width of the offset U-Net.
        offset_depth: number of stride-2 levels of the U-Net (``h``, ``w`` must be multiples of
            ``2 ** offset_depth``).
        deform_groups: offset groups of the DCN; must divide ``3 * frames``. ``frames`` gives each
            frame its own offsets per tap.
        max_offset: offsets are ``max_offset * tanh(raw * OFFSET_SLOPE / max_offset)`` pixels:
            bounded by ``max_offset``, smooth, with the same slope (``OFFSET_SLOPE`` pixels per unit
            of the U-Net's output) at 0 whatever the bound, so weights trained with one bound start
            from the same small offsets under another (BasicVSR++ bounds them the same way).
        num_blocks: residual blocks after the DCN.
        kernel_size: DCN kernel size.
    """

    def __init__(
        self,
        *,
        frames: int = 7,
        channels: int = 64,
        offset_channels: int = 32,
        offset_depth: int = 3,
        deform_groups: int = 7,
        max_offset: float = 16.0,
        num_blocks: int = 2,
        kernel_size: int = 3,
    ):
        super().__init__()
        in_channels = 3 * frames
        if in_channels % deform_groups:
            raise ValueError(f"deform_groups={deform_groups} must divide 3 * frames = {in_channels}")
        self.frames = frames
        self.max_offset = float(max_offset)
        self.dcn = ModulatedDeformConv2d(in_channels, channels, kernel_size, offset_groups=deform_groups)
        self.offsets = OffsetUNet(in_channels, offset_channels, 3 * deform_groups * self.dcn.taps, depth=offset_depth)
        self.blocks = nn.Sequential(*(ResidualBlock(channels) for _ in range(num_blocks)))
        self.act = nn.LeakyReLU(0.1, inplace=True)
        #: the native DCN writes its output channels-last (set by :meth:`use_channels_last`)
        self.channels_last = False

    def use_channels_last(self) -> None:
        """Channels-last weights, and a channels-last result from the native DCN: the layout in
        which oneDNN's CPU convolutions are fastest (docs/benchmarks.md). Same numbers."""
        convs_to_channels_last(self)
        self.channels_last = True

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(b, 3t, h, w)`` -> offsets ``(b, 2*g*k*k, h, w)`` in pixels, masks ``(b, g*k*k, h, w)``."""
        return self.activate(self.offsets(x))

    def activate(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The offset U-Net's raw output -> (offsets in pixels, masks)."""
        raw_offset, raw_mask = self._split(raw)
        if self.max_offset != OFFSET_SLOPE:  # else exactly the original 16 * tanh(raw)
            raw_offset = raw_offset * (OFFSET_SLOPE / self.max_offset)
        return self.max_offset * torch.tanh(raw_offset), torch.sigmoid(raw_mask)

    def _split(self, raw: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n_off = 2 * self.dcn.offset_groups * self.dcn.taps
        return raw[:, :n_off], raw[:, n_off:]

    def deform(self, x: torch.Tensor, raw: torch.Tensor) -> torch.Tensor:
        """The DCN over ``x`` ``(b, 3t, h, w)`` at the offsets and masks of the U-Net's ``raw`` output."""
        dcn = self.dcn
        if _native_applies(x, raw, None, dcn.weight):
            # CPU inference: the C kernel applies activate()'s tanh and sigmoid as it samples
            raw_offset, raw_mask = self._split(raw)
            return deform_conv2d_native(x, raw_offset, raw_mask, dcn.weight, dcn.bias, padding=dcn.padding,
                                        raw_activation=(self.max_offset, OFFSET_SLOPE / self.max_offset),
                                        channels_last=self.channels_last)
        # the PyTorch path slices the offsets per channel, fastest in NCHW
        return dcn(x, *self.activate(raw.contiguous()))

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        b, t, c, h, w = frames.shape
        x = frames.reshape(b, t * c, h, w)
        return self.blocks(self.act(self.deform(x, self.offsets(x))))

    def flops(self, h: int, w: int) -> int:
        return (
            self.offsets.flops(h, w)
            + self.dcn.flops(h, w)
            + sum(block.flops(h, w) for block in self.blocks)
        )
