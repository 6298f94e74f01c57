"""Evaluation protocols (issue 26): which clips each model is scored on, and one table per protocol.

- ``in-family``: the val pool rendered with the six fixed operators (``data build --split val``),
  the operators every shipped model trained on. It flatters: it measures recall of the training
  family, not what happens on SDR made otherwise.
- ``held-out-scenes``: scenes no training build reads (``hdri/val``) rendered with the continuous
  operator families (``data build --split val --operators continuous``), reported per family.
  Where a learned model's weights sit in a training run folder (``config.json`` beside them),
  the run's training sources are checked against the val set's: a shared scene is refused.
- ``lofo`` (leave one family out): a model trained with ``data build --exclude-family F`` is
  scored on family F only, next to the formulas. F is read from the run (its ``config.json``
  names the training set, whose manifest lists the families it was built with) or given.

Every protocol scores PSNR and ΔE_ITP only (:data:`didtv.train.evaluate.QUICK_METRICS`), the
metrics of the model card's tables. Rows are operators (in-family) or families (the others);
the ``bt2446`` family is also split into its Method A and Method C variants, because the
BT.2446-A formula is the exact inverse of one member of the A variant (an *oracle*, marked):
the issue's targets exempt a learned model from beating a formula where the formula is the
inverse of the SDR's own operator.
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from didtv.data.build import load_manifest
from didtv.errors import DidtvError

PROTOCOLS = ("in-family", "held-out-scenes", "lofo")
FORMULAS = ("bt2408", "bt2446a")
ALL = "mean"  # the row that averages the families (or operators) with equal weight

#: (formula, row) -> why the formula is an oracle there (the exact inverse of that SDR's operator).
ORACLES = {
    ("bt2446a", "bt2446a"): "exact inverse of the fixed BT.2446-A operator",
    ("bt2446a", "bt2446 · A"): "exact inverse of this variant at L_HDR 1000 cd/m2 and gain 1 "
                               "(drawn here: 600-2000 cd/m2, gain 2^U(-0.25, 0.75))",
    ("bt2446a", "bt2446"): "half the family is the Method A variant, of which it is the inverse at one point",
}


class ProtocolError(DidtvError):
    exit_code = 2


def row_of(rec: dict) -> str:
    """The table row of a clip: its operator or family; ``bt2446`` clips also name their variant."""
    return rec.get("family", rec["operator"])


def variant_of(rec: dict) -> str | None:
    if rec.get("family") == "bt2446" and "params" in rec:
        return f"bt2446 · {rec['params']['method'].upper()}"
    return None


def _run_config(model: str) -> dict | None:
    """The ``config.json`` of a model's run (beside its weights), or None."""
    cfg = Path(model).parent / "config.json" if model.endswith(".safetensors") else None
    return json.loads(cfg.read_text()) if cfg is not None and cfg.is_file() else None


def _train_dirs(config: dict) -> list[str]:
    train = config.get("train_data", "")
    return [train] if isinstance(train, str) else list(train)


def trained_families(model: str) -> list[str] | None:
    """The continuous families a model's training set was built with, read from the run folder
    of its weights (``config.json`` -> ``train_data`` -> ``manifest.json``, every folder of a
    list, less the config's ``exclude_families``); None for a model name, weights without a run
    folder, or a training set of the fixed operators only."""
    config = _run_config(model)
    if config is None:
        return None
    excluded = config.get("exclude_families") or []
    families: list[str] = []
    for train in _train_dirs(config):
        if not (Path(train) / "manifest.json").is_file():
            raise ProtocolError(f"{model}: its run's training set {train or '(none)'} is not here to say which "
                                "families it was trained on: give --family F")
        families += [f for f in load_manifest(train).get("families") or [] if f not in families + excluded]
    return families or None


def training_sources(model: str) -> list[str]:
    """The source files of a model's training set (its run folder's config), or [] if unknown."""
    config = _run_config(model)
    sources: list[str] = []
    for train in _train_dirs(config) if config is not None else []:
        if (Path(train) / "manifest.json").is_file():
            sources += [s for s in load_manifest(train)["sources"] if s not in sources]
    return sources


def lofo_family(models: Iterable[str], family: str | None, all_families: Iterable[str]) -> str:
    """The left-out family: ``family`` if given, else the one family missing from the training
    set of every learned model that has a run folder (they must agree)."""
    all_families = list(all_families)
    if family is not None:
        if family not in all_families:
            raise ProtocolError(f"unknown family {family!r}; allowed: {', '.join(all_families)}")
        return family
    left = set()
    for m in models:
        fams = trained_families(m)
        if fams is None:
            continue
        missing = [f for f in all_families if f not in fams]
        if len(missing) != 1:
            raise ProtocolError(f"{m}: trained without {len(missing)} families ({', '.join(missing) or 'none'}); "
                                "lofo needs exactly one: give --family F")
        left.add(missing[0])
    if len(left) != 1:
        raise ProtocolError("lofo: no model says which family it left out (weights in a run folder built "
                            "with --exclude-family F), or they disagree: give --family F"
                            if not left else f"lofo: the models left out different families ({', '.join(sorted(left))})")
    return left.pop()


def run_protocol(protocol: str, models: Iterable[str], data_dir: str | Path, *, family: str | None = None,
                 qps: Iterable[int] | None = None, device: str | None = None, motion_guard: bool | None = None,
                 on_clip: Callable[[int, int], None] | None = None) -> dict:
    """Score ``models`` under ``protocol`` on the val set ``data_dir``.

    Returns ``{"protocol", "data", "family" (lofo), "models", "clips", "qps", "cells":
    [{row, model, n, psnr, delta_e_itp, oracle}], "rows": [row names in table order],
    "rows_detail": the per-clip scores}``."""
    from didtv.data.families import FAMILIES
    from didtv.train.evaluate import evaluate

    if protocol not in PROTOCOLS:
        raise ProtocolError(f"unknown protocol {protocol!r}; allowed: {', '.join(PROTOCOLS)}")
    models = list(models)
    data_dir = Path(data_dir)
    if not (data_dir / "manifest.json").is_file():
        raise ProtocolError(f"{data_dir}: no manifest.json (build it with didtv data build --split val)")
    manifest = load_manifest(data_dir)
    if manifest.get("split") != "val":
        raise ProtocolError(f"{data_dir}: a {manifest.get('split')} set; protocols score val sets (--split val)")
    continuous = "families" in manifest
    if protocol == "in-family" and continuous:
        raise ProtocolError(f"{data_dir}: built with continuous families; in-family is the fixed-operator val pool "
                            "(didtv data build ../shared/data/hdri/val --split val)")
    if protocol != "in-family" and not continuous:
        raise ProtocolError(f"{data_dir}: built with the fixed operators; {protocol} needs a val set of the continuous "
                            "families (didtv data build ../shared/data/hdri/val --split val --operators continuous)")
    operators = None
    if protocol == "held-out-scenes":
        val_stems = {Path(s).stem for s in manifest["sources"]}
        for m in models:
            shared = sorted(val_stems & {Path(s).stem for s in training_sources(m)})
            if shared:
                raise ProtocolError(f"{m} was trained on scenes of {data_dir}: {', '.join(shared)}")
    if protocol == "lofo":
        family = lofo_family(models, family, FAMILIES)
        if family not in manifest["families"]:
            raise ProtocolError(f"{data_dir} has no {family} clips: build it with --families {family} (or all)")
        operators = [family]
    elif family is not None:
        raise ProtocolError("--family chooses the left-out family of the lofo protocol")
    result = evaluate(models, data_dir, qps=qps, device=device, motion_guard=motion_guard, quick=True,
                      operators=operators, on_clip=on_clip)
    by_file = {c["file"]: c for c in manifest["clips"]}
    cells, order = protocol_cells(result["rows"], by_file, models)
    return {"protocol": protocol, "data": str(data_dir), "family": family if protocol == "lofo" else None,
            "models": models, "clips": result["clips"], "qps": sorted({r["qp"] for r in result["rows"]}),
            "rows": order, "cells": cells, "rows_detail": result["rows"]}


def protocol_cells(rows: list[dict], by_file: dict[str, dict], models: list[str]) -> tuple[list[dict], list[str]]:
    """Per-clip scores -> mean PSNR and ΔE_ITP per (row, model); the ``mean`` row averages the
    operator/family rows (not the variants) with equal weight."""
    groups: dict[tuple[str, str], list[dict]] = defaultdict(list)
    main, variants = set(), set()
    for r in rows:
        rec = by_file[r["file"]]
        main.add(row_of(rec))
        groups[(row_of(rec), r["model"])].append(r)
        if (v := variant_of(rec)) is not None:
            variants.add(v)
            groups[(v, r["model"])].append(r)
    order = []
    for name in sorted(main):
        order += [name] + sorted(v for v in variants if v.startswith(name + " · "))
    cells = []
    for row in order:
        for m in models:
            rs = groups[(row, m)]
            cells.append({"row": row, "model": m, "n": len(rs), "psnr": _mean([r["psnr"] for r in rs]),
                          "delta_e_itp": _mean([r["delta_e_itp"] for r in rs]), "oracle": ORACLES.get((m, row))})
    if len(main) > 1:
        for m in models:
            own = [c for c in cells if c["model"] == m and c["row"] in main]
            cells.append({"row": ALL, "model": m, "n": sum(c["n"] for c in own),
                          "psnr": _mean([c["psnr"] for c in own]), "delta_e_itp": _mean([c["delta_e_itp"] for c in own]),
                          "oracle": None})
        order.append(ALL)
    return cells, order


def margins(result: dict, *, base: str = "bt2408", rival: str = "bt2446a") -> list[dict]:
    """For each learned model: its PSNR margin over ``base`` on the mean row and its smallest on a
    family/operator row, the rows where it is not ahead of ``base`` in ΔE_ITP, and the rows where
    it trails ``rival`` in PSNR (``rival``'s oracle rows apart)."""
    index = {(c["row"], c["model"]): c for c in result["cells"]}
    rows = [r for r in result["rows"] if r != ALL and " · " not in r]
    out = []
    for m in result["models"]:
        if m in FORMULAS or base not in result["models"]:
            continue
        d = {r: index[(r, m)]["psnr"] - index[(r, base)]["psnr"] for r in rows}
        worst = min(d, key=d.get)
        entry = {"model": m, "base": base, "mean_margin": index[(ALL, m)]["psnr"] - index[(ALL, base)]["psnr"]
                 if (ALL, m) in index else d[worst], "min_margin": d[worst], "min_row": worst,
                 "de_not_better": [r for r in rows if index[(r, m)]["delta_e_itp"] >= index[(r, base)]["delta_e_itp"]]}
        if rival in result["models"]:
            entry["rival"] = rival
            entry["behind_rival"] = [r for r in rows if index[(r, m)]["psnr"] < index[(r, rival)]["psnr"]
                                     and not index[(r, rival)]["oracle"]]
        out.append(entry)
    return out


def format_protocol(result: dict) -> str:
    """One markdown table: rows = families (operators), columns = models, cells 'PSNR / ΔE_ITP';
    the best PSNR of a row in bold (oracle cells left out), oracles marked with a dagger."""
    index = {(c["row"], c["model"]): c for c in result["cells"]}
    qps = result["qps"]
    what = {"in-family": "the fixed operators the models trained on",
            "held-out-scenes": "scenes never trained on, continuous operator families",
            "lofo": f"family {result['family']}, left out of the learned models' training"}[result["protocol"]]
    lines = [f"\n### Protocol {result['protocol']}: {what}\n",
             f"`{result['data']}`, {result['clips']} clips, QP {', '.join(map(str, qps))}; "
             "PSNR (dB, PQ BT.2020) / ΔE_ITP (lower is better)" + ("; mean over the QPs" if len(qps) > 1 else "") + "\n",
             f"| {'operator' if result['protocol'] == 'in-family' else 'family'} | " + " | ".join(result["models"]) + " |",
             "|---|" + "---|" * len(result["models"])]
    notes = {}
    for row in result["rows"]:
        cells = [index[(row, m)] for m in result["models"]]
        fair = [c["psnr"] for c in cells if not c["oracle"] and np.isfinite(c["psnr"])]
        best = max(fair) if fair else None
        out = []
        for c in cells:
            text = f"{_f(c['psnr'], 2)} / {_f(c['delta_e_itp'], 1)}"
            if best is not None and c["psnr"] == best and not c["oracle"] and len(cells) > 1:
                text = f"**{text}**"
            if c["oracle"]:
                notes.setdefault(c["oracle"], "†" * (len(notes) + 1))
                text += f" {notes[c['oracle']]}"
            out.append(text)
        label = f"**{row}**" if row == ALL else row
        lines.append(f"| {label} | " + " | ".join(out) + " |")
    if notes:
        lines.append("")
        lines += [f"{mark} oracle: {why}." for why, mark in notes.items()]
    ms = margins(result)
    if ms:
        lines.append("")
    for e in ms:
        text = (f"- {e['model']}: {e['mean_margin']:+.2f} dB over {e['base']} on the mean, "
                f"{e['min_margin']:+.2f} at the least ({e['min_row']}); ΔE_ITP at or above {e['base']}'s on "
                f"{', '.join(e['de_not_better']) or 'none'}")
        if "rival" in e:
            text += f"; behind {e['rival']} in PSNR on {', '.join(e['behind_rival']) or 'none'} (oracles apart)"
        lines.append(text + ".")
    return "\n".join(lines)


def _f(value: float, digits: int) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _mean(values: list[float]) -> float:
    arr = np.asarray(values, np.float64)
    arr = arr[np.isfinite(arr)]
    return float(arr.mean()) if arr.size else float("nan")
