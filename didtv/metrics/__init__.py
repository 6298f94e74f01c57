"""Image and video metrics on HDR frames. Convention: BT.2020 PQ R'G'B' in [0, 1], channel-first
``(3, h, w)``, all channels, no border crop (docs/evaluation.md)."""

from didtv.metrics.basic import delta_e_itp, delta_e_itp_map, hf_psnr, psnr
from didtv.metrics.structural import STRUCTURAL_METRICS, structural_scores
from didtv.metrics.temporal import StaticCurve, jitter, jitter_error, msrl_psnr

__all__ = ["psnr", "delta_e_itp", "delta_e_itp_map", "hf_psnr", "structural_scores", "STRUCTURAL_METRICS", "jitter", "jitter_error", "msrl_psnr", "StaticCurve"]
