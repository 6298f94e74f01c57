"""Cost of a DIDNet (or any model with a ``flops(h, w)`` method): parameters and FLOPs, for
``didtv models``, the docs and the tests. A config mapping means a DIDNet built from it."""

from __future__ import annotations

from typing import Any, Mapping

from torch import nn


def _as_model(model_or_config: nn.Module | Mapping[str, Any]) -> nn.Module:
    if isinstance(model_or_config, nn.Module):
        return model_or_config
    from didtv.models.didnet import DIDNet

    return DIDNet(**dict(model_or_config))


def count_parameters(model_or_config: nn.Module | Mapping[str, Any]) -> int:
    """Number of trainable parameters."""
    return sum(p.numel() for p in _as_model(model_or_config).parameters() if p.requires_grad)


def flops_breakdown(model_or_config: nn.Module | Mapping[str, Any], h: int = 1080, w: int = 1920) -> dict[str, int]:
    """FLOPs of one window at ``h x w``, by part, plus ``"total"``.

    Convention: 2 FLOPs per multiply-accumulate of every convolution, transposed/grouped
    convolution, linear layer and matmul (the Haar DWT/IDWT included), bias additions not
    counted -- exactly what ``torch.utils.flop_counter`` counts. Added on top, because
    flop_counter cannot see them: deformable sampling at 9 FLOPs per sampled value (4 bilinear
    MACs + the mask multiply) and the DMC modulation (per sample ``2*c_out*c_in*k*k + 2*c_out``
    for kernel modulation, per pixel ``c_in + 2*c_out`` for feature modulation). Activations,
    normalisation, pooling, attention scaling, residual additions and the fixed SDR->PQ mapping
    (together < 1% here) are not counted.
    """
    return _as_model(model_or_config).flops(h, w)


def flops_per_pixel(model_or_config: nn.Module | Mapping[str, Any], h: int = 1080, w: int = 1920) -> float:
    """Total FLOPs of one ``h x w`` window divided by ``h * w`` (the condition net's fixed cost
    amortised over the frame)."""
    return flops_breakdown(model_or_config, h, w)["total"] / (h * w)


def gflops_1080p(model_or_config: nn.Module | Mapping[str, Any]) -> float:
    """GFLOPs to produce one 1920x1080 HDR frame (one 7-frame window, no tiling overlap)."""
    return flops_breakdown(model_or_config, 1080, 1920)["total"] / 1e9


def describe(model_or_config: nn.Module | Mapping[str, Any]) -> dict[str, Any]:
    """Parameters, FLOPs per pixel and GFLOPs at 1080p, for docs and ``didtv models``."""
    model = _as_model(model_or_config)
    return {
        "parameters": count_parameters(model),
        "flops_per_pixel": flops_per_pixel(model),
        "gflops_1080p": gflops_1080p(model),
    }
