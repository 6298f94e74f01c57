"""Does DIDNet's condition vector know which SDR operator made its input? A linear probe.

    .venv/bin/python benchmarks/condition_probe.py [--model tiny] [--train data/train] [--val data/val]
        [--detect bt2446a --also data/val-graded]

Computes the condition vector of every clip of a train set and a val set (``didtv data build``),
fits a ridge least-squares one-vs-rest classifier of the operator on the train vectors and
prints its accuracy and confusion matrix on the val vectors (rows: true operator).
``--detect OP``: instead, a one-operator read-out (ridge least squares on 1 for OP, 0 for the
others; ``score > 0.5`` counts as detected), with its hits and mean scores on every set
(``--also`` adds more sets, e.g. val photographs at a random grade).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from didtv.data.degrade import OPERATORS
from didtv.models.registry import load_model


def condition_vectors(model, data: Path) -> tuple[np.ndarray, np.ndarray]:
    manifest = json.loads((data / "manifest.json").read_text())
    xs, ys = [], []
    with torch.inference_mode():
        for rec in manifest["clips"]:
            with np.load(data / rec["file"]) as z:
                lq = torch.from_numpy(z["lq"].astype(np.float32) / 65535.0)[None]
            xs.append(model.condition_vector(lq)[0].flatten().numpy())
            ys.append(OPERATORS.index(rec["operator"]))
    return np.array(xs), np.array(ys)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--train", default="data/train", type=Path)
    ap.add_argument("--val", default="data/val", type=Path)
    ap.add_argument("--ridge", default=1.0, type=float)
    ap.add_argument("--detect", choices=OPERATORS, help="Read out one operator (yes / no) instead of all six.")
    ap.add_argument("--also", type=Path, action="append", default=[], help="More sets to score (with --detect).")
    args = ap.parse_args()
    model = load_model(args.model).eval()
    xt, yt = condition_vectors(model, args.train)
    xv, yv = condition_vectors(model, args.val)
    mu, sd = xt.mean(0), xt.std(0) + 1e-8
    a = np.c_[(xt - mu) / sd, np.ones(len(xt))]
    b = np.c_[(xv - mu) / sd, np.ones(len(xv))]
    fit = lambda targets: np.linalg.solve(a.T @ a + args.ridge * np.eye(a.shape[1]), a.T @ targets)  # noqa: E731
    if args.detect:
        k = OPERATORS.index(args.detect)
        w = fit((yt == k).astype(float))
        sets = [(args.train, a, yt), (args.val, b, yv)]
        for extra in args.also:
            x, y = condition_vectors(model, extra)
            sets.append((extra, np.c_[(x - mu) / sd, np.ones(len(x))], y))
        for name, m, y in sets:
            score, pos = m @ w, y == k
            print(f"{name}: {args.detect} detected on {int((score[pos] > 0.5).sum())} of {int(pos.sum())} clips, "
                  f"on {int((score[~pos] > 0.5).sum())} of {int((~pos).sum())} others; mean score "
                  f"{score[pos].mean():.2f} vs {score[~pos].mean():.2f}")
        return
    w = fit(np.eye(len(OPERATORS))[yt])
    pv = np.argmax(b @ w, 1)
    print(f"{args.model}: condition of {xt.shape[1]} values; train accuracy {(np.argmax(a @ w, 1) == yt).mean():.2f}, "
          f"val accuracy {(pv == yv).mean():.2f} (chance {1 / len(OPERATORS):.2f})")
    cm = np.zeros((len(OPERATORS),) * 2, int)
    np.add.at(cm, (yv, pv), 1)
    print("true \\ predicted  " + " ".join(f"{o[:8]:>8s}" for o in OPERATORS))
    for o, row in zip(OPERATORS, cm):
        print(f"{o:16s}  " + " ".join(f"{n:8d}" for n in row))


if __name__ == "__main__":
    main()
