"""Could a global, condition-chosen tone curve close the BT.2446-A gap? The per-clip best blend.

    .venv/bin/python benchmarks/blend_oracle.py [--model tiny] [--data data/train] [--every 4]

For every ``--every``-th clip of a set (``didtv data build``), keeps the network's residual as
it is and searches the weight ``w`` (0, 0.05, ..., 1) of the base mapping
``(1 - w) BT.2408 + w BT.2446-A^-1`` that gives the lowest L1 error against the HDR truth: the
most a per-clip global choice between the two curves could gain (an oracle: it sees the truth).
Then asks whether that best ``w`` can be predicted from what the network sees: 5-fold
cross-validated ridge regression from the condition vector, and from a luma histogram of the
SDR centre frame (24 bins of max(R, G, B), its cumulative sum, the clipped fraction, the mean
luma and the contrast). Prints per operator the mean and median best ``w`` and the L1 at
``w = 0`` and at the best ``w``, then each predictor's cross-validated correlation.
"""

from __future__ import annotations

import argparse
from collections import defaultdict

import numpy as np
import torch

from didtv.models.analytic import bt2446a_inverse_pq
from didtv.models.didnet import sdr_to_pq_bt2408
from didtv.models.registry import load_model
from didtv.train.dataset import ClipSet


def histogram_features(centre: np.ndarray) -> np.ndarray:
    """``(3, h, w)`` SDR in [0, 1] -> global tone statistics (see the module doc)."""
    peak = centre.max(0)
    hist = np.histogram(peak, bins=24, range=(0.0, 1.0))[0] / peak.size
    luma = 0.2126 * centre[0] + 0.7152 * centre[1] + 0.0722 * centre[2]
    return np.r_[hist, np.cumsum(hist), (peak > 0.98).mean(), luma.mean(), np.sqrt(centre.var(0).mean())]


def cv_correlation(x: np.ndarray, y: np.ndarray, lam: float, folds: int = 5, seed: int = 0) -> float:
    """Correlation of ``y`` with its ``folds``-fold cross-validated ridge prediction from ``x``."""
    x = (x - x.mean(0)) / (x.std(0) + 1e-6)
    x = np.c_[x, np.ones(len(x))]
    order = np.random.default_rng(seed).permutation(len(y))
    pred = np.zeros(len(y))
    for k in range(folds):
        test = order[k::folds]
        train = np.setdiff1d(order, test)
        a = x[train]
        beta = np.linalg.solve(a.T @ a + lam * np.eye(a.shape[1]), a.T @ y[train])
        pred[test] = np.clip(x[test] @ beta, 0.0, 1.0)
    return float(np.corrcoef(pred, y)[0, 1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--data", default="data/train")
    ap.add_argument("--every", type=int, default=4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    model = load_model(args.model)
    clips = ClipSet(args.data)
    weights = torch.linspace(0.0, 1.0, 21)
    ops, best, err0, errb, conds, hists = [], [], [], [], [], []
    with torch.inference_mode():
        for i in range(0, len(clips), args.every):
            lq, _, hdr = clips.item(i)
            frames = lq[None]
            cond = model.condition_vector(frames)
            res = model.residual(model.features(frames), cond)
            centre = frames[:, frames.shape[1] // 2]
            lo, hi = sdr_to_pq_bt2408(centre), bt2446a_inverse_pq(centre)
            truth = hdr[len(hdr) // 2][None]
            errs = [float((torch.lerp(lo, hi, float(w)) + res).clamp(0, 1).sub(truth).abs().mean()) for w in weights]
            k = int(np.argmin(errs))
            ops.append(clips.records[i]["operator"])
            best.append(float(weights[k]))
            err0.append(errs[0])
            errb.append(errs[k])
            conds.append(cond[0].numpy())
            hists.append(histogram_features(centre[0].numpy()))
    best_a = np.array(best)
    by = defaultdict(list)
    for op, w, e0, eb in zip(ops, best, err0, errb):
        by[op].append((w, e0, eb))
    print(f"{args.model} on {len(ops)} clips of {args.data}")
    print("| operator | clips | best w mean | best w median | L1 at w=0 | L1 at best w |")
    print("|---|---|---|---|---|---|")
    for op in sorted(by):
        v = np.array(by[op])
        print(f"| {op} | {len(v)} | {v[:, 0].mean():.2f} | {np.median(v[:, 0]):.2f} | {v[:, 1].mean():.4f} | {v[:, 2].mean():.4f} |")
    for name, x in (("condition vector", np.stack(conds)), ("luma histogram", np.stack(hists)),
                    ("both", np.c_[np.stack(conds), np.stack(hists)])):
        scores = ", ".join(f"ridge {lam:g}: {cv_correlation(x, best_a, lam):+.2f}" for lam in (1, 10, 100))
        print(f"predicting the best w from the {name}: 5-fold CV correlation {scores}")


if __name__ == "__main__":
    main()
