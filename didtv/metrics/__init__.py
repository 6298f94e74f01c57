"""Image metrics on HDR frames. Convention: BT.2020 PQ R'G'B' in [0, 1], channel-first
``(3, h, w)`` (or batched ``(b, 3, h, w)``), all channels, no border crop (docs/evaluation.md)."""

from didtv.metrics.basic import delta_e_itp, psnr

__all__ = ["psnr", "delta_e_itp"]
