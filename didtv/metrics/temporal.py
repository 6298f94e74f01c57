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
- ``StaticCurve``: the static (time-invariant, global) mapping of an SDR clip closest to a
  model's output on it: a lookup table from each input colour cell (64 levels per channel) to
  that cell's mean output over all frames. The jitter of that table applied to the same frames
  is what a global tone curve with the model's own expansion shows; a model whose jitter stays
  at or below it adds no flicker of its own, whatever its expansion. A steeper curve than
  BT.2408's jitters more than BT.2408 however steady it is; this separates the two.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from didtv.metrics.basic import psnr_from_mse, quads

SCALES = 3
#: Input levels per channel of :class:`StaticCurve`'s table (64^3 cells): the table reproduces
#: the jitter of BT.2408's and BT.2446-A's own (global) mappings to 0.4% on tree.avi; 32 levels
#: were 3.5% off, a per-channel 256-entry curve 4% (it cannot express luminance-based curves).
STATIC_LEVELS = 64


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


class StaticCurve:
    """Fit the closest static mapping of input to output over a clip, one frame pair at a time.

    ``add(sdr, out)`` for every frame (both ``(3, h, w)`` in [0, 1]), then ``frame_means()``:
    each added frame's mean PQ value under that mapping, for :func:`jitter`. Each frame keeps
    only its histogram of colour cells. Cells with few samples reproduce the output itself, so
    the fit errs towards the model's own jitter, never away from it.
    """

    def __init__(self, levels: int = STATIC_LEVELS) -> None:
        self.levels = int(levels)
        cells = self.levels ** 3
        self._sum = np.zeros((3, cells), np.float64)
        self._count = np.zeros(cells, np.int64)
        self._frames: list[tuple[np.ndarray, np.ndarray]] = []  # (cells used, their pixel counts)

    def _cells(self, sdr: np.ndarray) -> np.ndarray:
        q = np.clip((np.asarray(sdr, np.float64) * self.levels).astype(np.int64), 0, self.levels - 1)
        return ((q[0] * self.levels + q[1]) * self.levels + q[2]).ravel()

    def add(self, sdr: np.ndarray, out: np.ndarray) -> None:
        if np.shape(sdr)[-2:] != np.shape(out)[-2:]:
            raise ValueError(f"input {np.shape(sdr)} and output {np.shape(out)} differ in size")
        cells = self._cells(sdr)
        n = self._sum.shape[1]
        hist = np.bincount(cells, minlength=n)
        self._count += hist
        for c in range(3):
            self._sum[c] += np.bincount(cells, np.asarray(out[c], np.float64).ravel(), minlength=n)
        used = np.flatnonzero(hist)
        self._frames.append((used, hist[used]))

    def frame_means(self) -> list[float]:
        table = (self._sum / np.maximum(self._count, 1)).mean(axis=0)  # mean over the channels
        return [float(table[used] @ counts / counts.sum()) for used, counts in self._frames]
