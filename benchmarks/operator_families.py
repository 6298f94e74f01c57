"""Draw 20 random curves of each continuous SDR operator family (didtv/data/families.py) into
docs/img/operator-families.png: SDR code value (BT.1886, 0-1) of grey against HDR cd/m2, with
the six fixed operators (didtv/data/degrade.py) as grey dashes for reference.

Usage: ``.venv/bin/python benchmarks/operator_families.py [-o docs/img/operator-families.png]``
(no weights, no data; a few seconds). Curves are on flat grey fields, so the local family shows
its global part (its spatial part needs a picture) and per-channel vs luminance curves coincide.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from didtv.color.transfer import REFERENCE_WHITE
from didtv.data.degrade import OPERATORS, render_sdr
from didtv.data.families import FAMILIES, draw_params


def grey_curve(apply, nits: np.ndarray) -> np.ndarray:
    """SDR code value (0-1, BT.1886) of each grey level, each as a flat 4x4 field."""
    lin = np.stack([np.clip(apply(np.full((4, 4, 3), v)), 0.0, 1.0)[0, 0].mean() for v in nits])
    return lin ** (1 / 2.4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("-o", "--output", default="docs/img/operator-families.png")
    ap.add_argument("--curves", type=int, default=20)
    args = ap.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    nits = np.geomspace(0.1, 4000, 60)
    fixed = [render_sdr(np.repeat(nits[:, None], 3, 1), op)[:, 0] / 255.0 for op in OPERATORS]
    fig, axes = plt.subplots(2, 4, figsize=(11, 5.2), sharex=True, sharey=True)
    for ax, (name, family) in zip(axes.flat, FAMILIES.items()):
        for curve in fixed:
            ax.plot(nits, curve, color="0.75", lw=0.7, ls="--")
        for seed in range(args.curves):
            p = draw_params(name, np.random.default_rng(seed))
            ax.plot(nits, grey_curve(lambda x, p=p: family.apply(x, p), nits), lw=0.8, alpha=0.8)
        ax.axvline(REFERENCE_WHITE, color="k", lw=0.6, ls=":")
        ax.set_xscale("log")
        ax.set_title(name, fontsize=10)
        ax.grid(alpha=0.3, lw=0.4)
    for ax in axes[1]:
        ax.set_xlabel("HDR grey, cd/m2 (dotted: 203)")
    for ax in axes[:, 0]:
        ax.set_ylabel("SDR code (BT.1886)")
    fig.suptitle(f"{args.curves} random curves per family (dashed grey: the six fixed operators)", fontsize=10)
    fig.tight_layout()
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=72)
    print(f"wrote {out} ({out.stat().st_size // 1024} KB)")


if __name__ == "__main__":
    main()
