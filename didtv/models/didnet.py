"""DIDNet: Dual Inverse Degradation Network (the paper's Fig. 5, Eq. 1-6), as built here.

::

    X (b, 7, 3, h, w) SDR, BT.709 R'G'B' in [0, 1]
      F_f = TSAF(X)                                     (Eq. 1)  align.py
      S^  = clamp01(X_centre + Conv3x3(F_f))            (Eq. 2)  restored clean SDR (aux output)
      F_w = FFE(F_f)                                    (Eq. 4)  wavelet.py
      C   = ConditionNet3D(X) -> (alpha, beta, gamma) per DMC layer        condition.py
      F_m = [DMC(., alpha_i, beta_i, gamma_i) -> LeakyReLU] x n (F_w)  (Eq. 5, 13)  modulated.py
      H^  = clamp01(Base(X_centre, C) + Conv3x3(F_m))   (Eq. 6)  HDR: BT.2020 PQ in [0, 1]

Both outputs are residuals on analytic mappings: the clean SDR on the input centre frame, the HDR
on a base mapping. A network that starts from such a mapping only has to learn the correction,
which trains far faster. The base (hyperparameter ``base``, one value) is the BT.2408
display-light mapping (:func:`didtv.models.analytic.sdr_to_pq_bt2408`: BT.1886 decode with gamma
2.4, SDR white to 203 cd/m2, BT.709 -> BT.2020, PQ encode). A condition-chosen blend with the
BT.2446-A inverse was tried and removed (it did not help; docs/training.md, "Experiment: a
condition-chosen base curve").

``clamp01`` is a straight-through clamp: the forward pass is exactly ``clamp(y, 0, 1)`` (valid PQ
code values, no saturation curve bending the mid-tones) and the backward pass is the identity, so
a pixel outside [0, 1] still gets the gradient that moves it back in. Both outputs are float32,
also under bfloat16/float16: bfloat16 has 8 significant bits, too few for 10-bit PQ.

The global path (ConditionNet and the condition -> (alpha, beta, gamma) heads) also
runs in float32 with autocast off, whatever the precision of the rest: it is cheap (a 64x64
thumbnail and a few small linear maps), and it is one value per shot that modulates every pixel.
In bfloat16, ``1 + alpha`` moves in steps of 1/256 and the runner's running mean of the condition
in steps of 1/256 of its size, so a slowly drifting shot mean changed whole channels at once:
Full's frame-mean output on vtest.avi wandered by 0.10 10-bit codes from frame to frame against
float32's (0.017 with this path in float32) and its jitter rose 15% (docs/training.md, "Precision
and flicker").

Training loss (Eq. 3, 6): ``0.8 * |H^ - H|_1 + 0.2 * |S^ - S|_1``.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from didtv.color.transfer import REFERENCE_WHITE
from didtv.models.align import TSAF, conv_flops, convs_to_channels_last
from didtv.models.analytic import sdr_to_pq_bt2408
from didtv.models.condition import ConditionNet2D, ConditionNet3D
from didtv.models.cost import count_parameters, describe, flops_breakdown, flops_per_pixel, gflops_1080p  # noqa: F401
from didtv.models.modulated import DualModulatedConv2d
from didtv.models.spec import ModelSpec
from didtv.models.wavelet import FFE

WINDOW = 7
#: Context per tile side when a frame is tiled (didtv.pipeline.runner): the offset U-Net's
#: receptive field plus the largest deformable offset. Measured on the sample clip with the
#: shipped Tiny (tiles of 128 and 256): 16 px left up to 1.5 ten-bit codes of difference to the
#: whole frame, 32 px none (< 0.001 code); 40 keeps a margin (docs/benchmarks.md).
HALO = 40

#: Hyperparameters of the two registered variants (``didtv models`` lists them). The registry
#: keeps literal copies (so importing it does not import torch); a test checks they agree.
FULL_CONFIG: dict[str, Any] = {
    "name": "full",
    "channels": 64,
    "num_blocks": 2,
    "num_dmc": 3,
    "dmc_kernel": 1,
    "offset_channels": 32,
    "offset_depth": 3,
    "deform_groups": 7,
    "max_offset": 16.0,
    "cond_channels": 22,
    "cond_size": 64,
    "cond_input": 64,
    "use_ffe": True,
    "condition": "3d",
    "modulation": "kernel",
    "aux_head": True,
    "base": "bt2408",
}
TINY_CONFIG: dict[str, Any] = {
    **FULL_CONFIG,
    "name": "tiny",
    "channels": 32,
    "num_blocks": 2,
    "offset_channels": 16,
    "offset_depth": 3,
    "cond_channels": 16,
    "cond_size": 32,
}

SDR_WHITE_CD_M2 = REFERENCE_WHITE


def clamp01(y: torch.Tensor) -> torch.Tensor:
    """``clamp(y, 0, 1)`` in the forward pass, identity gradient in the backward pass."""
    return y + (y.clamp(0.0, 1.0) - y).detach()


def _shrink_init(conv: nn.Module, scale: float) -> None:
    with torch.no_grad():
        conv.weight.mul_(scale)
        if conv.bias is not None:
            conv.bias.zero_()


class DIDNet(nn.Module):
    """DIDNet for SDR -> HDR10 (see the module docstring for the data flow).

    Keyword-only hyperparameters (all stored in ``self.config``, JSON-serialisable):

    Args:
        name: registry name reported in ``spec.name``.
        channels: feature channels of the main path.
        num_blocks: residual blocks after the deformable fusion in TSAF.
        num_dmc: dual modulated conv layers; ``dmc_kernel`` their kernel size.
        offset_channels, offset_depth: width and number of stride-2 levels of the offset U-Net;
            frames must be multiples of ``2 ** offset_depth`` (``spec.multiple_of``).
        deform_groups: DCN offset groups over the 21 stacked input channels (7: one per frame).
        max_offset: offsets bounded to ``max_offset * tanh(.)`` pixels.
        cond_channels, cond_size, cond_input: condition net width, size of its output vector,
            and edge of the thumbnail it looks at.
        use_ffe: include the wavelet FFE layer (ablation switch).
        condition: ``"3d"`` (all 7 frames) or ``"2d"`` (centre frame only; ablation).
        modulation: ``"kernel"`` (Eq. 13, the paper's DMC) or ``"feature"`` (same numbers,
            computed by modulating features; ablation/reference).
        aux_head: predict the clean SDR centre frame (Eq. 2); ``False`` returns ``None`` there.
        base: the analytic mapping the HDR residual is added to: ``"bt2408"`` (the only one)
            (a condition-chosen mix of BT.2408 and the BT.2446-A inverse; module docstring).

    Call ``model(frames)`` with ``frames (b, 7, 3, h, w)``; returns ``(hdr, sdr_aux)``, both
    ``(b, 3, h, w)`` float32 in [0, 1]. ``model(frames, cond)`` uses a given condition vector
    ``(b, cond_size)`` instead of computing one: the runner computes it once per frame (or
    averages it over a shot, see :meth:`condition_vector`) and passes it to every tile, so tiles
    and frames of one shot share one tone mapping.
    """

    def __init__(
        self,
        *,
        name: str = "didnet",
        channels: int = 64,
        num_blocks: int = 2,
        num_dmc: int = 3,
        dmc_kernel: int = 1,
        offset_channels: int = 32,
        offset_depth: int = 3,
        deform_groups: int = 7,
        max_offset: float = 16.0,
        cond_channels: int = 22,
        cond_size: int = 64,
        cond_input: int = 64,
        use_ffe: bool = True,
        condition: str = "3d",
        modulation: str = "kernel",
        aux_head: bool = True,
        base: str = "bt2408",
    ):
        super().__init__()
        if condition not in ("3d", "2d"):
            raise ValueError(f"condition must be '3d' or '2d', got {condition!r}")
        if modulation not in ("kernel", "feature"):
            raise ValueError(f"modulation must be 'kernel' or 'feature', got {modulation!r}")
        if base != "bt2408":
            raise ValueError(f"base must be 'bt2408', got {base!r}")
        if num_dmc < 1:
            raise ValueError("num_dmc must be >= 1")
        self.config = {
            "name": name,
            "channels": channels,
            "num_blocks": num_blocks,
            "num_dmc": num_dmc,
            "dmc_kernel": dmc_kernel,
            "offset_channels": offset_channels,
            "offset_depth": offset_depth,
            "deform_groups": deform_groups,
            "max_offset": float(max_offset),
            "cond_channels": cond_channels,
            "cond_size": cond_size,
            "cond_input": cond_input,
            "use_ffe": bool(use_ffe),
            "condition": condition,
            "modulation": modulation,
            "aux_head": bool(aux_head),
            "base": base,
        }
        self.spec = ModelSpec(
            name=name,
            window=WINDOW,
            multiple_of=2**offset_depth,
            supports_half=True,
            tile=512,
            halo=HALO,
            learned=True,
            description=f"DIDNet {name}: 7-frame deformable restoration + condition-modulated tone mapping",
        )
        self.cond_size = cond_size
        self.tsaf = TSAF(
            frames=WINDOW,
            channels=channels,
            offset_channels=offset_channels,
            offset_depth=offset_depth,
            deform_groups=deform_groups,
            max_offset=max_offset,
            num_blocks=num_blocks,
        )
        self.aux = nn.Conv2d(channels, 3, 3, padding=1) if aux_head else None
        self.ffe = FFE(channels) if use_ffe else None
        cond_cls = ConditionNet3D if condition == "3d" else ConditionNet2D
        self.condition = cond_cls(channels=cond_channels, cond_size=cond_size, input_size=cond_input)
        self.dmc = nn.ModuleList(
            DualModulatedConv2d(channels, channels, dmc_kernel, mode=modulation) for _ in range(num_dmc)
        )
        # One linear map from the condition to every layer's (alpha, beta, gamma).
        self.heads = nn.Linear(cond_size, sum(2 * m.out_channels + m.in_channels for m in self.dmc))
        self.out = nn.Conv2d(channels, 3, 3, padding=1)
        self.act = nn.LeakyReLU(0.1, inplace=True)
        # Start near the fixed mappings and near unit modulation (alpha = gamma = 1, beta = 0).
        for conv in (self.out, self.aux, self.heads):
            if conv is not None:
                _shrink_init(conv, 0.1)

    # -- helpers ---------------------------------------------------------------------------------

    def _check(self, frames: torch.Tensor) -> None:
        if not isinstance(frames, torch.Tensor) or frames.dim() != 5:
            shape = tuple(frames.shape) if isinstance(frames, torch.Tensor) else type(frames).__name__
            raise ValueError(f"DIDNet expects frames of shape (b, {WINDOW}, 3, h, w), got {shape}")
        b, t, c, h, w = frames.shape
        if t != WINDOW or c != 3:
            raise ValueError(f"DIDNet expects (b, {WINDOW}, 3, h, w), got {tuple(frames.shape)}")
        m = self.spec.multiple_of
        if h < m or w < m or h % m or w % m:
            raise ValueError(
                f"DIDNet needs height and width that are positive multiples of {m}, got {h}x{w}; "
                "pad the frames (the runner does this from spec.multiple_of)"
            )

    def condition_vector(self, frames: torch.Tensor) -> torch.Tensor:
        """``(b, 7, 3, h, w)`` -> ``(b, cond_size)``: the global colour prior of a window.

        Cheap (a 64x64 thumbnail). Average it over a shot and pass it to :meth:`forward` to keep
        the tone mapping steady from frame to frame and identical across tiles.
        """
        self._check(frames)
        return self._condition(frames)

    def _condition(self, frames: torch.Tensor) -> torch.Tensor:
        """ConditionNet in float32, autocast off (module docstring: the global path)."""
        with torch.autocast(frames.device.type, enabled=False):
            return self.condition(frames.float())

    def modulation_vectors(self, cond: torch.Tensor) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """``(b, cond_size)`` -> per DMC layer ``(alpha, beta, gamma)``; alpha, gamma around 1;
        float32, autocast off (module docstring: the global path)."""
        with torch.autocast(cond.device.type, enabled=False):
            params = self.heads(cond.float())
        out, start = [], 0
        for layer in self.dmc:
            co, ci = layer.out_channels, layer.in_channels
            a, bt, g = params[:, start : start + 2 * co + ci].split((co, co, ci), dim=1)
            out.append((1.0 + a, bt, 1.0 + g))
            start += 2 * co + ci
        return out

    def base_mapping(self, centre: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        """The analytic HDR the residual is added to: ``(b, 3, h, w)`` SDR -> BT.2020 PQ, float32."""
        return sdr_to_pq_bt2408(centre)

    # -- forward ---------------------------------------------------------------------------------

    def forward(
        self, frames: torch.Tensor, cond: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        self._check(frames)
        if cond is None:
            cond = self._condition(frames)
        elif tuple(cond.shape) != (frames.shape[0], self.cond_size):
            raise ValueError(f"cond must be (b={frames.shape[0]}, {self.cond_size}), got {tuple(cond.shape)}")
        centre = frames[:, WINDOW // 2]
        feat = self.tsaf(frames)  # F_f
        sdr_aux = None
        if self.aux is not None:
            sdr_aux = clamp01(centre.float() + self.aux(feat).float())
        return self.head(feat, centre, cond), sdr_aux

    def use_channels_last(self) -> None:
        """Channels-last weights and features for CPU inference, where oneDNN's convolutions are
        fastest in that layout (docs/benchmarks.md); the same numbers within rounding."""
        self.tsaf.use_channels_last()  # its convs, and the DCN's result
        convs_to_channels_last(self)

    # -- the two halves, for tiled inference (didtv.pipeline.runner) -----------------------------
    # TSAF needs a wide context (halo); everything after it is local except FFE's channel
    # attention, which pools over the whole frame. A tiled frame therefore runs `features` per
    # tile (with halo), sums `ffe_band_sum` over the tile cores, and runs `head` per tile with
    # the whole frame's mean: the result equals the untiled forward up to TSAF's truncated context.

    def features(self, frames: torch.Tensor) -> torch.Tensor:
        """``(b, 7, 3, h, w)`` -> F_f ``(b, channels, h, w)`` (Eq. 1)."""
        self._check(frames)
        return self.tsaf(frames)

    def ffe_band_sum(self, feat: torch.Tensor) -> tuple[torch.Tensor, int] | None:
        """FFE's attention statistics of ``feat`` (sum, count), or None without FFE."""
        return None if self.ffe is None else self.ffe.band_sum(feat)

    def residual(self, feat: torch.Tensor, cond: torch.Tensor,
                 ffe_mean: torch.Tensor | None = None) -> torch.Tensor:
        """F_f and the condition -> the HDR residual ``Conv3x3(F_m)`` (float32), before it is
        added to :meth:`base_mapping` (Eq. 4-6)."""
        if self.ffe is not None:
            feat = self.ffe(feat, ffe_mean)  # F_w
        for layer, (alpha, beta, gamma) in zip(self.dmc, self.modulation_vectors(cond)):
            feat = self.act(layer(feat, alpha, beta, gamma))  # F_m
        return self.out(feat).float()

    def head(self, feat: torch.Tensor, centre: torch.Tensor, cond: torch.Tensor,
             ffe_mean: torch.Tensor | None = None) -> torch.Tensor:
        """F_f, the centre SDR frame and the condition -> HDR (Eq. 4-6)."""
        return clamp01(self.base_mapping(centre, cond) + self.residual(feat, cond, ffe_mean))

    # -- cost ------------------------------------------------------------------------------------

    def flops(self, h: int = 1080, w: int = 1920) -> dict[str, int]:
        """FLOPs of one forward pass on one ``h x w`` window, by part (see :func:`flops_breakdown`)."""
        parts = {
            "tsaf": self.tsaf.flops(h, w),
            "aux": conv_flops(self.aux, h, w) if self.aux is not None else 0,
            "ffe": self.ffe.flops(h, w) if self.ffe is not None else 0,
            "condition": self.condition.flops(WINDOW) + 2 * self.heads.in_features * self.heads.out_features,
            "dmc": sum(layer.flops(h, w) for layer in self.dmc),
            "out": conv_flops(self.out, h, w),
        }
        parts["total"] = sum(parts.values())
        return parts


__all__ = [
    "DIDNet",
    "FULL_CONFIG",
    "TINY_CONFIG",
    "sdr_to_pq_bt2408",
    "clamp01",
    "count_parameters",
    "flops_breakdown",
    "flops_per_pixel",
    "gflops_1080p",
    "describe",
]
