"""``didtv eval``: models side by side on a validation set built by ``didtv data build --split val``.

For every clip the model sees the 7 degraded SDR frames and predicts the HDR centre frame, whole
frame, no crop; metrics compare it with the HDR target (BT.2020 PQ in [0, 1]). Scores are
averaged per (operator, QP), per QP, and overall.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

import numpy as np


from didtv.data.build import load_manifest
from didtv.metrics import delta_e_itp, psnr

METRICS = ("psnr", "delta_e_itp")


def _window(lq: np.ndarray, size: int) -> list[np.ndarray]:
    r, c = size // 2, len(lq) // 2
    return [lq[c + k] for k in range(-r, r + 1)]


def evaluate(models: Iterable[str], data_dir: str | Path, *, qps: Iterable[int] | None = None,
             device: str | None = None, on_clip: Callable[[int, int], None] | None = None) -> dict:
    """Returns ``{"models": [...], "rows": [{model, operator, qp, file, psnr, delta_e_itp}], "summary": ...}``."""
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    data_dir = Path(data_dir)
    manifest = load_manifest(data_dir)
    clips = [c for c in manifest["clips"] if qps is None or c["qp"] in set(qps)]
    names = list(models)
    runners = {name: Runner(load_model(name), device=device) for name in names}
    rows = []
    for k, rec in enumerate(clips):
        with np.load(data_dir / rec["file"]) as z:
            lq = z["lq"].astype(np.float32) / 65535.0
            hdr = z["hdr"].astype(np.float64) / 65535.0
        target = hdr[len(hdr) // 2]
        for name, runner in runners.items():
            out = runner.infer(_window(lq, runner.spec.window)).astype(np.float64)
            out = np.clip(out, 0.0, 1.0)
            rows.append({"model": name, "operator": rec["operator"], "qp": rec["qp"], "file": rec["file"],
                         "psnr": psnr(out, target), "delta_e_itp": delta_e_itp(out, target)})
        if on_clip:
            on_clip(k + 1, len(clips))
    return {"models": names, "data": str(data_dir), "clips": len(clips), "rows": rows,
            "summary": summarise(rows)}


def summarise(rows: list[dict]) -> dict:
    """Means per model x (operator, qp), per model x qp, per model x operator, per model."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        for key in ((r["model"], r["operator"], r["qp"]), (r["model"], "*", r["qp"]),
                    (r["model"], r["operator"], "*"), (r["model"], "*", "*")):
            groups[key].append(r)
    out = []
    for (model, op, qp), rs in groups.items():
        out.append({"model": model, "operator": op, "qp": qp, "n": len(rs),
                    **{m: float(np.mean([r[m] for r in rs])) for m in METRICS}})
    return {"groups": out}


