"""``didtv data build``, ``didtv train`` and ``didtv eval``: making, training and measuring models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from didtv.cli.common import handle_errors


@click.group("data")
def data_group() -> None:
    """Build training and validation data from real HDR images."""


@data_group.command("build")
@click.argument("sources", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("-o", "--output", required=True, type=click.Path(file_okay=False), help="Folder to write clips and manifest.json into.")
@click.option("--split", type=click.Choice(["train", "val"]), default="train", show_default=True)
@click.option("--clips-per-source", default=10, show_default=True, help="Random views per source (train split).")
@click.option("--size", default=192, show_default=True, help="View edge in pixels (train split).")
@click.option("--seed", default=0, show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--transfer", type=click.Choice(["pq", "hlg"]), default="pq", show_default=True,
              help="How 16-bit PNG/TIFF sources are encoded (BT.2020 PQ or HLG); EXR and .hdr are scene-linear.")
@click.option("--moving-objects", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of still-source clips given an object moving against the background (up to 24 px/frame).")
@click.option("--operators", "operator_set", type=click.Choice(["fixed", "continuous"]), default="fixed",
              show_default=True, help="The six fixed SDR operators, or the continuous families with random "
                                      "parameters (didtv/data/families.py; docs/training.md).")
@click.option("--families", default=None, help="Comma-separated continuous families to use (implies continuous), "
                                                "e.g. filmic,local.")
@click.option("--exclude-family", "excluded", multiple=True,
              help="Leave this continuous family out (implies continuous; repeatable): leave-one-family-out "
                   "training data. Score on a val set built with --families F.")
@click.option("--metering", type=click.Choice(["average", "highkey"]), default="average", show_default=True,
              help="Exposure of scene-linear views: average (log-average at 18 % of 203 cd/m2) or highkey "
                   "(also lift views whose brightest surfaces land below 3/4 of 203 cd/m2, up to 2 stops; "
                   "docs/training.md).")
@handle_errors
def data_build(sources, output, split, clips_per_source, size, seed, workers, transfer, moving_objects,
               operator_set, families, excluded, metering):
    """Render SOURCES (OpenEXR, Radiance .hdr, 16-bit PQ/HLG PNG/TIFF, HDR10/HLG videos, or
    folders of them) into (degraded SDR, clean SDR, HDR) clips.

    \b
    Example:
      didtv data build ../shared/data/hdri/train -o data/train --split train
      didtv data build ../shared/data/hdri/val -o data/val --split val
      didtv data build ../shared/data/hdri/train -o data/train-no-local --exclude-family local
      didtv data build ../shared/data/hdri/val -o data/val-local --split val --families local
    """
    from didtv.data.build import build
    from didtv.data.families import FAMILIES

    chosen = None
    if families or excluded or operator_set == "continuous":
        if operator_set == "fixed" and click.get_current_context().get_parameter_source("operator_set").name != "DEFAULT":
            raise click.UsageError("--families/--exclude-family choose continuous families: drop --operators fixed")
        chosen = [f.strip() for f in families.split(",") if f.strip()] if families else list(FAMILIES)
        unknown = [f for f in [*chosen, *excluded] if f not in FAMILIES]
        if unknown:
            raise click.BadParameter(f"unknown families {', '.join(unknown)}; allowed: {', '.join(FAMILIES)}")
        chosen = [f for f in chosen if f not in excluded]
        if not chosen:
            raise click.UsageError("every family is excluded")

    out = build(list(sources), output, seed=seed, clips_per_source=clips_per_source, size=(size, size),
                split=split, workers=workers, transfer=transfer, moving_objects=moving_objects,
                families=chosen, metering=metering, on_clip=lambda n: click.echo(f"didtv: {n} clips", err=True) if n % 50 == 0 else None,
                on_skip=lambda src, why: click.echo(f"didtv: skipped {src}: {why}", err=True))
    click.echo(f"wrote {out}/manifest.json")


@click.command("train")
@click.argument("config", type=click.Path(exists=True, dir_okay=False))
@click.option("--resume", is_flag=True, help="Continue from out_dir/checkpoint.pt.")
@click.option("--iterations", type=int, default=None, help="Stop after this many more iterations.")
@handle_errors
def train_command(config, resume, iterations):
    """Train DIDNet with a TOML CONFIG (see didtv/train/configs/tiny.toml).

    \b
    Example:
      didtv train didtv/train/configs/tiny.toml --resume
    """
    from didtv.train.config import load_config
    from didtv.train.loop import train

    cfg = load_config(config)

    def log(rec: dict) -> None:
        if "val" in rec:
            v = rec["val"]
            click.echo(f"[{rec['iteration']}] val PSNR {v['psnr']:.2f} dB (bt2408 {v['psnr_bt2408']:.2f})", err=True)
        elif "init_from" in rec:
            click.echo(f"[{rec['iteration']}] branched from {rec['init_from']}", err=True)
        elif "init_weights" in rec:
            fresh = ", ".join(rec["new_parameters"]) or "none"
            click.echo(f"[{rec['iteration']}] started from {rec['init_weights']} (new parameters: {fresh})", err=True)
        else:
            click.echo(f"[{rec['iteration']}] loss {rec['loss']:.4f} (hdr {rec['l1_hdr']:.4f}, aux {rec['l1_aux']:.4f}) "
                       f"lr {rec['lr']:.2e} {rec['sec_per_it']:.2f} s/it", err=True)

    out = train(cfg, resume=resume, log=log, stop_after=iterations)
    click.echo(f"checkpoints and log in {out}")


@click.command("eval")
@click.option("--model", "-m", "models", multiple=True, required=True, help="Model name or .safetensors (repeatable).")
@click.option("--data", "data_dir", type=click.Path(exists=True, file_okay=False), help="A validation set (didtv data build --split val).")
@click.option("--clip", "clips", multiple=True, type=click.Path(exists=True, dir_okay=False),
              help="A real SDR video (no ground truth): report the output's flicker next to BT.2408's (repeatable).")
@click.option("--frames", default=48, show_default=True, type=click.IntRange(2), help="Frames read from each --clip.")
@click.option("--qp", default=None, help="Comma-separated QPs to keep, e.g. 27,32,37,42.")
@click.option("--flicker", is_flag=True,
              help="With --data: also run every frame of each val clip and report the output's flicker "
                   "next to the truth's and BT.2408's (about 3.5x the time).")
@click.option("--motion-guard/--no-motion-guard", default=None,
              help="Leave unreachable neighbour pixels out of the learned models' windows, as convert "
                   "does (default: convert's default).")
@click.option("--quick", is_flag=True, help="With --data: PSNR and ΔE_ITP only (the model card's tables; "
              "about a tenth of the time).")
@click.option("--protocol", type=click.Choice(["in-family", "held-out-scenes", "lofo"]), default=None,
              help="With --data: one protocol's table (PSNR and ΔE_ITP per operator or family, the formulas' "
                   "oracles marked): in-family = the fixed-operator val pool; held-out-scenes = a val set of "
                   "the continuous families; lofo = only the family the learned models were trained without.")
@click.option("--family", default=None, help="With --protocol lofo: the left-out family (default: read from the "
              "weights' run folder, config.json -> train_data -> manifest).")
@click.option("--json", "as_json", is_flag=True, help="Print the full result as JSON.")
@handle_errors
def eval_command(models, data_dir, clips, frames, qp, flicker, motion_guard, quick, protocol, family, as_json):
    """Score models side by side: the paper's metrics per SDR operator and QP on a validation
    set (PSNR, SSIM, MS-SSIM, ΔE_ITP, VIFp, HaarPSI, VSI, high-frequency PSNR, MSRL-PSNR), the
    flicker of the output on the val clips against their truth (--flicker), and on real SDR clips.

    \b
    Example:
      didtv eval -m tiny -m bt2408 -m bt2446a --data data/val --qp 27,32,37,42
      didtv eval -m tiny --data data/val --flicker
      didtv eval -m tiny --clip didtv/samples/bikes-sample.mp4
      didtv eval -m lite -m tiny -m bt2408 -m bt2446a --data data/val-cont --protocol held-out-scenes
      didtv eval -m runs/lite-no-local/final.safetensors -m bt2408 -m bt2446a --data data/val-cont --protocol lofo
    """
    from didtv.train.evaluate import evaluate, evaluate_clips, evaluate_flicker

    if not data_dir and not clips:
        raise click.UsageError("nothing to evaluate: give --data DIR (a val set) and/or --clip FILE")
    if flicker and not data_dir:
        raise click.UsageError("--flicker measures the val clips of --data DIR (real clips always get it)")
    if protocol and not data_dir:
        raise click.UsageError("--protocol scores a val set: give --data DIR")
    if family and protocol != "lofo":
        raise click.UsageError("--family names the left-out family of --protocol lofo")
    qps = [int(q) for q in qp.split(",")] if qp else None
    result: dict = {"models": list(models)}
    progress = None if as_json else (lambda k, n: click.echo(f"didtv: {k}/{n} clips", err=True) if k % 24 == 0 else None)
    if protocol:
        from didtv.train.protocols import run_protocol

        result["protocol"] = run_protocol(protocol, models, data_dir, family=family, qps=qps,
                                          motion_guard=motion_guard, on_clip=progress)
    elif data_dir:
        result = evaluate(models, data_dir, qps=qps, motion_guard=motion_guard, quick=quick, on_clip=progress)
    if flicker:
        result["val_flicker"] = evaluate_flicker(
            models, data_dir, qps=qps, motion_guard=motion_guard,
            on_clip=None if as_json else (lambda k, n: click.echo(f"didtv: flicker {k}/{n} clips", err=True) if k % 24 == 0 else None))
    if clips:
        result["real_clips"] = evaluate_clips(
            models, clips, frames=frames, motion_guard=motion_guard,
            on_model=None if as_json else (lambda clip, model: click.echo(f"didtv: {Path(clip).name}: {model}", err=True)))
    if as_json:
        click.echo(json.dumps(result, indent=1))
        return
    click.echo(format_tables(result))


METRIC_LABELS = {"psnr": "PSNR (dB, PQ BT.2020)", "ssim": "SSIM", "ms_ssim": "MS-SSIM",
                 "delta_e_itp": "ΔE_ITP (lower is better)", "vif_p": "VIFp", "haarpsi": "HaarPSI", "vsi": "VSI",
                 "hf_psnr": "HF-PSNR (dB, Haar detail sub-bands)", "msrl_psnr": "MSRL-PSNR (dB, temporal)"}
DIGITS = {"ssim": 4, "ms_ssim": 4, "vif_p": 4, "haarpsi": 4, "vsi": 4}


def format_tables(result: dict) -> str:
    """Markdown tables: rows = operator (and 'all'), columns = QPs then mean, one per metric and
    model; then the flicker table of the real clips."""
    lines = []
    if result.get("protocol"):
        from didtv.train.protocols import format_protocol

        lines.append(format_protocol(result["protocol"]))
    if "summary" in result:
        groups = result["summary"]["groups"]
        ops = sorted({g["operator"] for g in groups if g["operator"] != "*"}) + ["*"]
        qps = sorted({g["qp"] for g in groups if g["qp"] != "*"}) + ["*"]
        index = {(g["model"], g["operator"], g["qp"]): g for g in groups}
        for metric, label in METRIC_LABELS.items():
            if metric not in result.get("metrics", METRIC_LABELS):
                continue  # not computed (--quick)
            lines.append(f"\n### {label}\n")
            head = "| operator | model | " + " | ".join(f"QP {q}" if q != "*" else "mean" for q in qps) + " |"
            lines += [head, "|" + "---|" * (len(qps) + 2)]
            for op in ops:
                for model in result["models"]:
                    cells = [_cell(index.get((model, op, q), {}).get(metric), DIGITS.get(metric, 2)) for q in qps]
                    lines.append(f"| {'all' if op == '*' else op} | {model} | " + " | ".join(cells) + " |")
    if result.get("val_flicker"):
        f = result["val_flicker"]
        bt2408 = f["models"]["bt2408"]["jitter"]
        lines += [f"\n### Flicker on moving val clips ({f['clips']} clips, {f['frames']} frames each; jitter of the mean "
                  "PQ level and its error against the truth's changes, 10-bit codes per frame; ratio to BT.2408's)\n",
                  "| model | jitter | ratio | jitter error |", "|---|---|---|---|",
                  f"| truth | {f['truth_jitter']:.3f} | {_cell(f['truth_jitter'] / bt2408 if bt2408 > 0 else None, 2)} | 0 |"]
        for model, m in f["models"].items():
            lines.append(f"| {model} | {m['jitter']:.3f} | {_cell(m['ratio'], 2)} | {m['jitter_error']:.3f} |")
    if result.get("real_clips"):
        lines += ["\n### Flicker on real SDR clips (jitter of the mean PQ level, 10-bit codes per frame; "
                  "ratio to BT.2408's mapping; static curve: the jitter of the time-invariant mapping closest "
                  "to the model's output, and the model's own ratio to it: <= 1 adds no flicker of its own)\n",
                  "| clip | frames | model | jitter | ratio | static curve | own ratio |", "|---|---|---|---|---|---|---|"]
        for c in result["real_clips"]:
            for model, j in c["jitter"].items():
                lines.append(f"| {Path(c['clip']).name} | {c['frames']} | {model} | {j:.3f} | {_cell(c['ratio'][model], 2)} "
                             f"| {c['static_jitter'][model]:.3f} | {_cell(c['own_ratio'][model], 2)} |")
    return "\n".join(lines)


def _cell(value, digits: int) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"
