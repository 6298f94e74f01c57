"""Temporal consistency: with a ground truth (val clips) and without one (real SDR clips).

- ``msrl_psnr``: the frame-to-frame change of the output against that of the target, at scales
  1, 1/2 and 1/4 (2x2 area averages), as a PSNR of the mean squared error over the scales: the
  PSNR form of the multi-scale relation loss the paper cites (Dai et al., CVPR 2022). Higher is
  steadier motion rendering; identical changes give infinity (capped like ``psnr``).
- ``jitter``: mean |mean(t) - mean(t-1)| of a frame sequence's average PQ value, in 10-bit
  codes: the brightness flicker of an output. A mapping without global instability has about
  the jitter of the BT.2408 mapping of the same frames (which only follows the input).
- ``jitter_error``: mean |change(t) - truth change(t)| of the same per-frame means, in 10-bit
  codes: how far an output's brightness changes are from the ground truth's (val clips). Zero
  for an output that changes exactly as the truth does, however much that is.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from didtv.metrics.basic import psnr_from_mse, quads

SCALES = 3


def _halve(x: np.ndarray) -> np.ndarray:
    return sum(quads(x)) / 4


def msrl_psnr(pred: Sequence[np.ndarray], target: Sequence[np.ndarray]) -> float:
    """``pred`` and ``target``: two consecutive frames each, ``(c, h, w)`` in [0, 1]."""
    if len(pred) != 2 or len(target) != 2:
        raise ValueError("msrl_psnr compares two consecutive frames of output and target")
    dp = np.asarray(pred[1], np.float64) - np.asarray(pred[0], np.float64)
    dt = np.asarray(target[1], np.float64) - np.asarray(target[0], np.float64)
    mses = []
    for _ in range(SCALES):
        mses.append(float(np.mean((dp - dt) ** 2)))
        dp, dt = _halve(dp), _halve(dt)
    return psnr_from_mse(float(np.mean(mses)))


def jitter(frame_means: Sequence[float]) -> float:
    """Mean absolute change of per-frame mean PQ values, in 10-bit code values."""
    if len(frame_means) < 2:
        return 0.0
    return float(np.mean(np.abs(np.diff(np.asarray(frame_means, np.float64))))) * 1023


def jitter_error(frame_means: Sequence[float], truth_means: Sequence[float]) -> float:
    """Mean absolute difference of the per-frame changes of two mean-PQ sequences, in 10-bit codes."""
    if len(frame_means) != len(truth_means):
        raise ValueError(f"{len(frame_means)} output frames against {len(truth_means)} truth frames")
    if len(frame_means) < 2:
        return 0.0
    d = np.diff(np.asarray(frame_means, np.float64)) - np.diff(np.asarray(truth_means, np.float64))
    return float(np.mean(np.abs(d))) * 1023
