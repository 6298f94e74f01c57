"""``didtv eval``: models side by side on a validation set built by ``didtv data build --split val``.

For every clip the model sees the 7 degraded SDR frames and predicts the HDR centre frame, whole
frame, no crop; metrics compare it with the HDR target (BT.2020 PQ in [0, 1]). The model then
predicts the next frame too (its window edge-padded as at the end of a video, the condition held
over the two as ``convert`` holds it over a shot), for the temporal measure (MSRL-PSNR). Scores
are averaged per (operator, QP), per QP, and overall; conventions in docs/evaluation.md.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

import numpy as np


from didtv.data.build import load_manifest
from didtv.metrics import delta_e_itp, hf_psnr, msrl_psnr, psnr, structural_scores
from didtv.pipeline.window import window_indices

# In table order. Higher is better for all but delta_e_itp.
METRICS = ("psnr", "ssim", "ms_ssim", "delta_e_itp", "vif_p", "haarpsi", "vsi", "hf_psnr", "msrl_psnr")


#: ``quick=True``: the two metrics the model card's tables use (about a tenth of the time).
QUICK_METRICS = ("psnr", "delta_e_itp")


def frame_scores(out: np.ndarray, target: np.ndarray, *, quick: bool = False) -> dict[str, float]:
    """Every per-frame metric of one HDR output against its target (``quick``: PSNR, ΔE_ITP)."""
    scores = {"psnr": psnr(out, target), "delta_e_itp": delta_e_itp(out, target)}
    if not quick:
        scores.update({"hf_psnr": hf_psnr(out, target), **structural_scores(out, target)})
    return scores


def load_val_clip(data_dir: Path, rec: dict) -> tuple[np.ndarray, np.ndarray]:
    """One clip of a built set: SDR input frames float32 and HDR target frames float64, in [0, 1]."""
    with np.load(data_dir / rec["file"]) as z:
        return z["lq"].astype(np.float32) / 65535.0, z["hdr"].astype(np.float64) / 65535.0


def evaluate(models: Iterable[str], data_dir: str | Path, *, qps: Iterable[int] | None = None,
             device: str | None = None, on_clip: Callable[[int, int], None] | None = None,
             motion_guard: bool | None = None, quick: bool = False,
             operators: Iterable[str] | None = None) -> dict:
    """``motion_guard``: the Runner's (None: its default). ``quick``: only :data:`QUICK_METRICS`
    (the other metrics, MSRL-PSNR included, are NaN; the next frame is not run). ``operators``:
    keep only the clips of these operators (or continuous families); None: all.

    Returns ``{"models": [...], "rows": [{model, operator, qp, file, <METRICS>}], "summary": ...}``."""
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner, ShotCondition

    data_dir = Path(data_dir)
    manifest = load_manifest(data_dir)
    clips = [c for c in manifest["clips"] if (qps is None or c["qp"] in set(qps))
             and (operators is None or c["operator"] in set(operators))]
    names = list(models)
    runners = {name: Runner(load_model(name), device=device, motion_guard=motion_guard) for name in names}
    rows = []
    for k, rec in enumerate(clips):
        lq, hdr = load_val_clip(data_dir, rec)
        c = len(lq) // 2
        temporal = len(hdr) == len(lq) and not quick  # a train-split set keeps only the centre HDR frame
        for name, runner in runners.items():
            shot = ShotCondition()
            outs = [np.clip(runner.infer([lq[j] for j in window_indices(len(lq), runner.spec.window)[i]], shot),
                            0.0, 1.0).astype(np.float64) for i in ((c, c + 1) if temporal else (c,))]
            rows.append({"model": name, "operator": rec["operator"], "qp": rec["qp"], "file": rec["file"],
                         **frame_scores(outs[0], hdr[len(hdr) // 2], quick=quick),
                         "msrl_psnr": msrl_psnr(outs, hdr[c:c + 2]) if temporal else float("nan")})
        if on_clip:
            on_clip(k + 1, len(clips))
    return {"models": names, "data": str(data_dir), "clips": len(clips), "rows": rows,
            "metrics": list(QUICK_METRICS if quick else METRICS), "summary": summarise(rows)}


def evaluate_flicker(models: Iterable[str], data_dir: str | Path, *, qps: Iterable[int] | None = None,
                     device: str | None = None, on_clip: Callable[[int, int], None] | None = None,
                     motion_guard: bool | None = None) -> dict:
    """Moving val clips (with a ground truth): every frame of each clip through each model as
    ``convert`` runs it (shot condition, edge-padded windows), and the brightness ``jitter`` of
    the output next to the truth's and BT.2408's; ``jitter_error`` says how far the output's
    brightness changes are from the truth's. Means over the clips; ``ratio`` is a model's mean
    jitter over BT.2408's.

    Returns ``{"clips": n, "frames": f, "truth_jitter": j, "models": {name: {"jitter", "ratio",
    "jitter_error"}}}``.
    """
    from didtv.metrics import jitter, jitter_error
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    data_dir = Path(data_dir)
    manifest = load_manifest(data_dir)
    clips = [c for c in manifest["clips"] if qps is None or c["qp"] in set(qps)]
    names = list(dict.fromkeys([*models, "bt2408"]))
    runners = {name: Runner(load_model(name), device=device, motion_guard=motion_guard) for name in names}
    truth, scores = [], {name: {"jitter": [], "jitter_error": []} for name in names}
    frames = 0
    for k, rec in enumerate(clips):
        lq, hdr = load_val_clip(data_dir, rec)
        if len(hdr) != len(lq):
            raise ValueError(f"{rec['file']}: {len(hdr)} HDR frames for {len(lq)} SDR frames: "
                             "flicker needs a val set (didtv data build --split val)")
        frames = len(lq)
        truth_means = [float(f.mean()) for f in hdr]
        truth.append(jitter(truth_means))
        for name, runner in runners.items():
            means = [float(np.clip(o, 0.0, 1.0).mean()) for o in runner.process(list(lq))]
            scores[name]["jitter"].append(jitter(means))
            scores[name]["jitter_error"].append(jitter_error(means, truth_means))
        if on_clip:
            on_clip(k + 1, len(clips))
    means = {name: {m: _mean(v) for m, v in s.items()} for name, s in scores.items()}
    bt2408 = means["bt2408"]["jitter"]
    for m in means.values():
        m["ratio"] = _ratio(m["jitter"], bt2408)
    return {"clips": len(clips), "frames": frames, "truth_jitter": _mean(truth), "models": means}


def evaluate_clips(models: Iterable[str], clips: Iterable[str | Path], *, frames: int = 48,
                   device: str | None = None, on_model: Callable[[str, str], None] | None = None,
                   motion_guard: bool | None = None) -> list[dict]:
    """Real SDR clips (no ground truth): each model's brightness ``jitter`` over the first
    ``frames`` frames, and its ratio to the jitter of BT.2408's mapping of the same frames (a
    static curve: it only follows the input's own changes). Also ``static_jitter``: the jitter of
    the static mapping closest to each model's output on the clip (:class:`StaticCurve`: the
    model's own expansion, without any change over time), and ``own_ratio`` = jitter /
    static_jitter: at or below 1 the model adds no flicker of its own."""
    import itertools

    from didtv.api import check_input
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe
    from didtv.metrics import StaticCurve, jitter
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    names = list(dict.fromkeys([*models, "bt2408"]))
    runners = {name: Runner(load_model(name), device=device, motion_guard=motion_guard) for name in names}  # process() keeps no state
    out = []
    for path in clips:
        info = probe(path)
        check_input(info)  # SDR video only: HDR code values read as SDR would mean nothing
        with FrameReader(info) as reader:
            sdr = list(itertools.islice(reader, frames))
        scores, static = {}, {}
        for name, runner in runners.items():
            if on_model:
                on_model(str(path), name)
            fit, means = StaticCurve(), []
            for frame, o in zip(sdr, runner.process(sdr)):
                o = np.clip(o, 0, 1)
                means.append(float(o.mean()))
                fit.add(frame, o)
            scores[name] = jitter(means)
            static[name] = jitter(fit.frame_means())
        out.append({"clip": str(path), "frames": len(sdr), "jitter": scores,
                    "ratio": {n: _ratio(scores[n], scores["bt2408"]) for n in names},
                    "static_jitter": static,
                    "own_ratio": {n: _ratio(scores[n], static[n]) for n in names}})
    return out


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
                    **{m: _mean([r[m] for r in rs if m in r]) for m in METRICS}})
    return {"groups": out}




def _ratio(a: float, b: float) -> float:
    return a / b if b > 0 else float("nan")


def _mean(values: list[float]) -> float:
    """Mean without NaN (a metric undefined at a clip's size); NaN if none is defined."""
    arr = np.asarray(values, np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")
