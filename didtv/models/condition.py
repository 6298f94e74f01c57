"""Condition networks: frames -> one global condition vector per sample (Sec. III-G).

:class:`ConditionNet3D` (the paper's 3D ConditionNet) looks at all frames of the window, which
makes the colour prior steadier from window to window; :class:`ConditionNet2D` (ablation) looks at
the centre frame only. Both return ``(b, cond_size)``; DIDNet maps that vector to the
``alpha, beta, gamma`` of every DMC layer.

Cost is independent of the frame size: the frames are first area-averaged to a fixed
``input_size x input_size`` thumbnail (aspect ratio is not kept: a colour prior needs global
statistics, not geometry). At 64x64 the 3D net (22 channels) costs about 0.4 GFLOPs per window,
whatever the resolution, i.e. ~200 FLOPs per 1080p pixel.

Six blocks of ``Conv -> pooling -> LeakyReLU -> InstanceNorm`` as in the paper, with two
decisions the paper leaves open:

- Blocks 1-5 pool 2x spatially (time is kept: 7 frames stay 7); block 6 pools globally over time
  and space and has no InstanceNorm, because normalising a single value per channel gives zero.
- InstanceNorm removes each channel's mean and scale, i.e. the overall brightness and colour cast
  a tone mapper needs most. The channel means of block 1 *before* its norm (a cheap statistics
  skip) are therefore concatenated with block 6's output before the final linear layer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class _ConditionNet(nn.Module):
    dims = 3

    def __init__(self, *, channels: int = 32, cond_size: int = 64, input_size: int = 64, blocks: int = 6):
        super().__init__()
        if blocks < 2:
            raise ValueError("a condition net needs at least 2 blocks")
        if input_size < 2**blocks:  # the last normalised map must keep >= 2x2 values
            raise ValueError(f"input_size={input_size} is too small for {blocks} blocks")
        conv = nn.Conv3d if self.dims == 3 else nn.Conv2d
        norm = nn.InstanceNorm3d if self.dims == 3 else nn.InstanceNorm2d
        self.input_size = input_size
        self.convs = nn.ModuleList(conv(3 if i == 0 else channels, channels, 3, padding=1) for i in range(blocks))
        self.norms = nn.ModuleList(norm(channels, affine=True) for _ in range(blocks - 1))
        self.act = nn.LeakyReLU(0.1)
        self.fc = nn.Linear(2 * channels, cond_size)
        self.cond_size = cond_size

    def _pool(self, x: torch.Tensor) -> torch.Tensor:
        if self.dims == 3:
            return F.avg_pool3d(x, (1, 2, 2))
        return F.avg_pool2d(x, 2)

    def _prepare(self, thumbs: torch.Tensor) -> torch.Tensor:
        """``(b, t, 3, s, s)`` thumbnails -> the first conv's input."""
        raise NotImplementedError

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """``(b, t, 3, h, w)`` in [0, 1] -> ``(b, cond_size)``."""
        b, t, c, h, w = frames.shape
        thumbs = self.thumbnail(frames.reshape(b * t, c, h, w))
        return self.from_thumbnails(thumbs.view(b, t, c, *thumbs.shape[-2:]))

    def from_thumbnails(self, thumbs: torch.Tensor) -> torch.Tensor:
        """The window's per-frame thumbnails ``(b, t, 3, s, s)`` (:meth:`thumbnail` of each
        frame) -> ``(b, cond_size)``: the same as :meth:`forward` on the frames."""
        x = self._prepare(thumbs)
        reduce_dims = tuple(range(2, x.dim()))
        stats = None
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if i < len(self.norms):
                x = self.act(self._pool(x))
                if stats is None:
                    stats = x.mean(dim=reduce_dims)
                x = self.norms[i](x)
            else:
                x = self.act(x.mean(dim=reduce_dims))
        return self.act(self.fc(torch.cat((x, stats), dim=1)))

    def thumbnail(self, frames: torch.Tensor) -> torch.Tensor:
        """``(n, 3, h, w)`` -> ``(n, 3, s, s)`` by area averaging (replication if smaller)."""
        return F.adaptive_avg_pool2d(frames, self.input_size)

    def flops(self, frames: int = 7) -> int:
        """Conv and linear FLOPs (2 * MACs) for one window; constant in the frame size."""
        total = 2 * self.fc.in_features * self.fc.out_features
        size = self.input_size
        depth = frames if self.dims == 3 else 1
        for i, conv in enumerate(self.convs):
            c_out, c_in = conv.weight.shape[:2]
            total += 2 * c_out * c_in * conv.weight[0, 0].numel() * size * size * depth
            if i < len(self.norms):
                size //= 2
        return total


class ConditionNet3D(_ConditionNet):
    """3D ConditionNet over the whole window: Conv3d with 3x3x3 kernels (time, rows, columns)."""

    dims = 3

    def _prepare(self, thumbs: torch.Tensor) -> torch.Tensor:
        return thumbs.transpose(1, 2)  # (b, c, t, s, s)


class ConditionNet2D(_ConditionNet):
    """2D variant (ablation): the centre frame only, Conv2d with 3x3 kernels."""

    dims = 2

    def _prepare(self, thumbs: torch.Tensor) -> torch.Tensor:
        return thumbs[:, thumbs.shape[1] // 2]
