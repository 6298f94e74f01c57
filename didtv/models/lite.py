"""DIDNet Lite: the DIDNet family made cheap enough to be the default on an ordinary CPU.

It keeps what makes DIDNet work (docs/didnet.md) and spends its FLOPs where they pay::

    X (b, 7, 3, h, w) SDR, BT.709 R'G'B' in [0, 1]
      C   = ConditionNet3D(X)                       global prior of the window, held per shot
      Z   = PixelUnshuffle4(X[t-1], X[t], X[t+1])   (b, 144, h/4, w/4): 3 frames at 1/4 size
      F   = ResBlocks(Conv1x1(Z))                   all convolutions at 1/16 of the pixels
                                                    (unshuffle + 1x1 run as one 4x4 conv, stride 4)
      S^  = clamp01(X_t + PixelShuffle4(Conv3x3(F)))            artifact removal: clean SDR (aux)
      G   = BT2408(S^) + sum_k w_k(C) * LUT_k(S^)                global tone mapping, per shot
      R   = Conv1x1(DMC(F; alpha, beta, gamma from C))          a PQ correction per 4x4 cell
      H^  = clamp01(G + up(R))                                   local correction, bilinear

- **Artifact removal before expansion**: the expansion (the LUT, the base mapping and the local
  matrices) reads the restored SDR S^, which the auxiliary clean-SDR loss supervises (Eq. 2-3).
- **A global condition that modulates the tone mapping** and is held for the shot: the runner
  averages ``condition_vector`` over a shot (as for DIDNet); the condition weighs K learned 3D
  LUTs (image-adaptive LUTs: one trilinear lookup per pixel, whatever K) and modulates the
  low-resolution layers that predict the local correction (dual modulated 1x1 convolutions).
- **Temporal context where it is cheap**: the centre frame and its two neighbours enter the
  low-resolution trunk (no alignment: at 1/4 size motion of a few pixels is sub-pixel); the
  condition sees all 7 frames.
- Per full-size pixel only cheap work runs: the pixel shuffles, the BT.2408 mapping, one
  trilinear LUT lookup and a bilinear upsampling of 3 values. The local correction is additive
  in PQ, i.e. close to a local gain in linear light; a 3x4 colour matrix per cell was the first
  design, but its 12 upsampled coefficients cost more per pixel than all the convolutions
  (docs/didnet.md, "Lite").

The LUTs and the local correction start at zero, so an untrained Lite is the BT.2408 mapping of
its restored SDR; everything it learns is a correction of that, as in DIDNet (Eq. 6).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from didtv.models.align import conv_flops, convs_to_channels_last
from didtv.models.condition import ConditionNet3D
from didtv.models.analytic import _BT709_TO_BT2020, sdr_to_pq_bt2408
from didtv.models.didnet import SDR_WHITE_CD_M2, WINDOW, clamp01
from didtv.models.modulated import DualModulatedConv2d
from didtv.models.spec import ModelSpec

#: The registered fast model (the registry keeps a literal copy; a test checks they agree).
LITE_CONFIG: dict[str, Any] = {
    "name": "lite",
    "channels": 24,
    "num_blocks": 2,
    "num_dmc": 2,
    "scale": 4,
    "context": 1,
    "luts": 6,
    "lut_size": 17,
    "cond_channels": 16,
    "cond_size": 32,
    "cond_input": 32,
    "cond_blocks": 5,
}


class DIDLite(nn.Module):
    """See the module docstring. ``model(frames[, cond]) -> (hdr, clean_sdr)``, both
    ``(b, 3, h, w)`` float32 in [0, 1]; ``frames`` ``(b, 7, 3, h, w)``, h and w multiples of
    ``scale``.

    Args:
        channels: width of the low-resolution trunk.
        num_blocks: residual blocks (two 3x3 convolutions each) in the trunk.
        num_dmc: condition-modulated 1x1 layers before the local-matrix head.
        scale: the trunk's downscale (pixel unshuffle factor).
        context: frames on each side of the centre that enter the trunk (0-3).
        luts, lut_size: number and edge of the condition-weighted 3D LUTs.
        cond_channels, cond_size, cond_input, cond_blocks: the 3D ConditionNet (see DIDNet); a
            32x32 thumbnail and 5 blocks: on 2 CPU cores the 64x64 one cost more per training step
            than the rest of Lite together.
    """

    def __init__(self, *, name: str = "lite", channels: int = 24, num_blocks: int = 2, num_dmc: int = 2,
                 scale: int = 4, context: int = 1, luts: int = 6, lut_size: int = 17,
                 cond_channels: int = 16, cond_size: int = 32, cond_input: int = 32, cond_blocks: int = 5):
        super().__init__()
        if not 0 <= context <= WINDOW // 2:
            raise ValueError(f"context must be 0..{WINDOW // 2}, got {context}")
        if scale < 1 or luts < 1 or lut_size < 2 or num_dmc < 1:
            raise ValueError("scale, luts, num_dmc must be >= 1 and lut_size >= 2")
        self.config = {"name": name, "channels": channels, "num_blocks": num_blocks, "num_dmc": num_dmc,
                       "scale": scale, "context": context, "luts": luts, "lut_size": lut_size,
                       "cond_channels": cond_channels, "cond_size": cond_size, "cond_input": cond_input,
                       "cond_blocks": cond_blocks}
        self.spec = ModelSpec(name=name, window=WINDOW, multiple_of=scale, supports_half=True, tile=None,
                              learned=True, context=context, thumbnail=cond_input,
                              description=f"DIDNet {name}: low-resolution restoration + condition-weighted "
                              "3D LUTs and a modulated local correction")
        self.cond_size, self.scale, self.context = cond_size, scale, context
        frames_in = 2 * context + 1
        self.condition = ConditionNet3D(channels=cond_channels, cond_size=cond_size, input_size=cond_input,
                                        blocks=cond_blocks)
        self.shuffle = nn.PixelShuffle(scale)
        self.inp = nn.Conv2d(3 * frames_in * scale * scale, channels, 1)
        self.body = nn.ModuleList(nn.Conv2d(channels, channels, 3, padding=1) for _ in range(2 * num_blocks))
        self.aux = nn.Conv2d(channels, 3 * scale * scale, 3, padding=1)
        self.dmc = nn.ModuleList(DualModulatedConv2d(channels, channels, 1) for _ in range(num_dmc))
        self.heads = nn.Linear(cond_size, num_dmc * 3 * channels)
        self.local = nn.Conv2d(channels, 3, 1)
        self.lut_weights = nn.Linear(cond_size, luts)
        self.luts = nn.Parameter(torch.zeros(luts, 3, lut_size, lut_size, lut_size))
        self.act = nn.LeakyReLU(0.1, inplace=True)
        with torch.no_grad():
            for conv in (self.aux, self.local, self.heads):
                conv.weight.mul_(0.1)
                conv.bias.zero_()
            self.local.weight.zero_()
            self.lut_weights.bias.fill_(1.0 / luts)

    # -- the global path (float32, autocast off, as in DIDNet) -------------------------------------

    def _check(self, frames: torch.Tensor, lengths: tuple[int, ...] = (WINDOW,)) -> None:
        if not isinstance(frames, torch.Tensor) or frames.dim() != 5 or frames.shape[2] != 3 \
                or frames.shape[1] not in lengths:
            shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
            raise ValueError(f"DIDNet {self.spec.name} expects frames of shape (b, {' or '.join(map(str, lengths))}, "
                             f"3, h, w), got {shape}")
        h, w = frames.shape[-2:]
        if h < self.scale or w < self.scale or h % self.scale or w % self.scale:
            raise ValueError(f"DIDNet {self.spec.name} needs height and width that are positive multiples of "
                             f"{self.scale}, got {h}x{w}; pad the frames (the runner does this)")

    def condition_vector(self, frames: torch.Tensor) -> torch.Tensor:
        """``(b, 7, 3, h, w)`` -> ``(b, cond_size)``; average it over a shot (DIDNet's contract)."""
        self._check(frames)
        with torch.autocast(frames.device.type, enabled=False):
            return self.condition(frames.float())

    def condition_thumbnails(self, frames: torch.Tensor) -> torch.Tensor:
        """``(n, 3, h, w)`` -> ``(n, 3, s, s)``: what the condition reads of each frame (the
        runner pools each frame once, ModelSpec.thumbnail)."""
        with torch.autocast(frames.device.type, enabled=False):
            return self.condition.thumbnail(frames.float())

    def condition_from_thumbnails(self, thumbs: torch.Tensor) -> torch.Tensor:
        """The window's thumbnails ``(b, 7, 3, s, s)`` -> ``(b, cond_size)``, as
        :meth:`condition_vector` of the window."""
        with torch.autocast(thumbs.device.type, enabled=False):
            return self.condition.from_thumbnails(thumbs.float())

    def modulation_vectors(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        with torch.autocast(cond.device.type, enabled=False):
            params = self.heads(cond.float()).chunk(len(self.dmc), dim=1)
        return [(1.0 + a, b, 1.0 + g) for a, b, g in (p.chunk(3, dim=1) for p in params)]

    def lut(self, cond: torch.Tensor) -> torch.Tensor:
        """``(b, cond_size)`` -> the shot's LUT ``(b, 3, n, n, n)`` (a PQ residual), float32."""
        with torch.autocast(cond.device.type, enabled=False):
            w = self.lut_weights(cond.float())
            return torch.einsum("bk,kcxyz->bcxyz", w, self.luts)

    # -- forward -----------------------------------------------------------------------------------

    def forward(self, frames: torch.Tensor, cond: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> ``(hdr, clean_sdr)``; ``clean_sdr`` is None where the fused CPU pass ran (inference
        without gradients on the CPU, :mod:`didtv.models.native`), which does not write it.
        With ``cond``, ``frames`` may also be only the ``2 context + 1`` frames around the centre
        (the runner's lean path, ModelSpec.thumbnail)."""
        full = 2 * self.context + 1
        self._check(frames, (WINDOW, full) if cond is not None else (WINDOW,))
        if cond is None:
            cond = self.condition_vector(frames)
        elif tuple(cond.shape) != (frames.shape[0], self.cond_size):
            raise ValueError(f"cond must be (b={frames.shape[0]}, {self.cond_size}), got {tuple(cond.shape)}")
        b, t, _, h, w = frames.shape
        c = t // 2
        centre = frames[:, c].float()
        z = frames[:, c - self.context: c + self.context + 1].reshape(b, -1, h, w)
        # PixelUnshuffle(s) then the 1x1 conv `inp`, computed as one s x s conv of stride s (the
        # same weights, channel c*s*s + i*s + j -> kernel tap [c, i, j]): no unshuffled copy of
        # the frames (203 -> 40-53 ms at 1080p on 2 cores)
        feat = self._input_native(z) if self._fused(frames) and z.dtype == torch.float32 else None
        if feat is None:
            weight = self.inp.weight.reshape(self.inp.out_channels, -1, self.scale, self.scale)
            feat = self.act(F.conv2d(z, weight, self.inp.bias, stride=self.scale))
        for i in range(0, len(self.body), 2):
            feat = feat + self.body[i + 1](self.act(self.body[i](feat)))
        aux = self.aux(feat)
        for layer, (alpha, beta, gamma) in zip(self.dmc, self.modulation_vectors(cond)):
            feat = self.act(layer(feat, alpha, beta, gamma))
        coeffs = self.local(feat).float()
        if self._fused(frames):
            return self._expand_native(centre, aux.float(), coeffs, cond), None
        clean = clamp01(centre + self.shuffle(aux).float())
        return self.expand(clean, coeffs, cond), clean

    #: Off: always the PyTorch expansion (tests compare the two; DIDTV_NATIVE=0 also turns it off).
    fused_expand = True

    def _fused(self, frames: torch.Tensor) -> bool:
        from didtv.models import native

        return (self.fused_expand and frames.device.type == "cpu" and not torch.is_grad_enabled()
                and native.lite_expand_kernel() is not None and native.lite_input_kernel() is not None)

    def _input_native(self, z: torch.Tensor) -> torch.Tensor | None:
        """The unshuffle, the input 1x1 conv and its activation in one C pass (lite_expand.c),
        channels-last float32 out; None where the kernel refuses (more than 64 channels)."""
        from didtv.models import native

        b, c, h, w = z.shape
        o = self.inp.out_channels
        wt = self.inp.weight.detach().reshape(o, -1).t().contiguous().float()
        bias = self.inp.bias.detach().contiguous().float()
        out = torch.empty((b, h // self.scale, w // self.scale, o), dtype=torch.float32)
        strides = torch.tensor(z.stride(), dtype=torch.int64)
        rc = native.lite_input_kernel()(z.data_ptr(), strides.data_ptr(), b, c, h, w, self.scale, wt.data_ptr(),
                                        bias.data_ptr(), o, self.act.negative_slope, out.data_ptr(),
                                        torch.get_num_threads())
        return None if rc else out.permute(0, 3, 1, 2)

    def _expand_native(self, centre: torch.Tensor, aux: torch.Tensor, coeffs: torch.Tensor,
                       cond: torch.Tensor) -> torch.Tensor:
        """:meth:`expand` and the pixel shuffle before it in one C pass (lite_expand.c)."""
        from didtv.models import native

        b, _, h, w = centre.shape
        lut = self.lut(cond).contiguous()
        out = torch.empty((b, 3, h, w), dtype=torch.float32)
        strides = [torch.tensor(t.stride(), dtype=torch.int64) for t in (centre, aux, coeffs)]
        matrix = torch.tensor(_BT709_TO_BT2020, dtype=torch.float32)
        rc = native.lite_expand_kernel()(
            centre.data_ptr(), strides[0].data_ptr(), aux.data_ptr(), strides[1].data_ptr(),
            coeffs.data_ptr(), strides[2].data_ptr(), lut.data_ptr(), lut.shape[-1], matrix.data_ptr(),
            SDR_WHITE_CD_M2, out.data_ptr(), b, h, w, self.scale, torch.get_num_threads())
        if rc == -2:
            raise MemoryError(f"lite_expand: no memory for a row buffer ({h}x{w})")
        if rc:
            raise ValueError(f"lite_expand refused its arguments ({h}x{w}, scale {self.scale})")
        return out

    def expand(self, clean: torch.Tensor, coeffs: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """Restored SDR ``(b, 3, h, w)``, the low-resolution correction ``(b, 3, h/s, w/s)`` and the
        condition -> HDR (float32, autocast off: 10-bit PQ needs more than bfloat16's 8 bits)."""
        with torch.autocast(clean.device.type, enabled=False):
            clean, coeffs = clean.float(), coeffs.float()
            # grid_sample's (x, y, z) index the LUT's (last, middle, first) axes: LUT[b, c, R, G, B]
            grid = (clean.flip(1) * 2.0 - 1.0).permute(0, 2, 3, 1).unsqueeze(1)  # (b, 1, h, w, 3)
            lut = F.grid_sample(self.lut(cond), grid, mode="bilinear", padding_mode="border", align_corners=True)
            local = F.interpolate(coeffs, size=clean.shape[-2:], mode="bilinear", align_corners=False)
            return clamp01(sdr_to_pq_bt2408(clean) + lut.squeeze(2) + local)

    def regularization(self) -> torch.Tensor:
        """Smoothness of the LUTs, for training (``reg_weight`` in the config): the mean squared
        difference of neighbouring nodes along R, G and B, plus the mean squared value (pulling
        nodes that training never reaches back to the BT.2408 base). Without it Adam's normalised
        steps move rarely visited nodes as far as busy ones: the first run's training PSNR rose
        from iteration 2,000 to 6,000 while the val pool's fell 0.8 dB (docs/training.md)."""
        t = self.luts
        tv = sum(d.pow(2).mean() for d in (t.diff(dim=2), t.diff(dim=3), t.diff(dim=4)))
        return tv + t.pow(2).mean()

    def use_channels_last(self) -> None:
        """Channels-last convolutions for CPU inference (oneDNN's fastest layout), except the
        strided input conv, which reads the stacked frames as they lie (NCHW): with channels-last
        weights oneDNN first copied the full-size frames to channels-last (80-120 vs 40-53 ms at
        1080p)."""
        convs_to_channels_last(self)
        self.inp.to(memory_format=torch.contiguous_format)

    # -- cost --------------------------------------------------------------------------------------

    def flops(self, h: int = 1080, w: int = 1920) -> dict[str, int]:
        """FLOPs of one window at ``h x w`` by part, with DIDNet's convention (2 per MAC of every
        convolution and linear map); added: the trilinear lookup (8 corners x 3 channels, 2 FLOPs
        each) and the bilinear upsampling (4 taps x 3 channels)."""
        lh, lw = -(-h // self.scale), -(-w // self.scale)
        n = self.luts.shape[-1] ** 3
        parts = {
            "condition": self.condition.flops(WINDOW) + 2 * self.heads.in_features * self.heads.out_features
            + 2 * self.lut_weights.in_features * self.lut_weights.out_features + 2 * self.luts.shape[0] * 3 * n,
            "trunk": conv_flops(self.inp, lh, lw) + sum(conv_flops(cv, lh, lw) for cv in self.body),
            "aux": conv_flops(self.aux, lh, lw),
            "dmc": sum(layer.flops(lh, lw) for layer in self.dmc) + conv_flops(self.local, lh, lw),
            "expand": (2 * 8 * 3 + 2 * 4 * 3) * h * w,
        }
        parts["total"] = sum(parts.values())
        return parts


__all__ = ["DIDLite", "LITE_CONFIG"]
