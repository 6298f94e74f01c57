"""``didtv bench``: per-stage speed, the bottleneck and how close the pipeline gets (didtv.bench)."""

from __future__ import annotations

import json

import click

from didtv.cli.common import handle_errors


def _fmt_flops(v: float | None) -> str:
    return "" if v is None else f"{v / 1e9:.1f} GFLOP/s"


@click.command("bench")
@click.option("--model", "-m", default="tiny", show_default=True, help="Model name or .safetensors file.")
@click.option("--size", default="960x540", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--frames", "-n", type=click.IntRange(1, 100000), default=24, show_default=True,
              help="Frames per measurement.")
@click.option("--device", default=None, help="torch device: auto (default), cpu, cuda ...")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True)
@click.option("--tile", default="auto", show_default=True, help="Tile edge, 'off' or 'auto'.")
@click.option("--batch-size", type=click.IntRange(1, 64), default=None, help="Windows per model pass.")
@click.option("--preset", "-p", default="hdr10-1000", show_default=True, help="Preset for the encoder settings.")
@click.option("--part", "parts", multiple=True,
              type=click.Choice(["reference", "network", "decode", "encode", "pipeline"]),
              help="Measure only these parts (repeatable). Default: all.")
@click.option("--untrained", is_flag=True,
              help="Time the model's architecture with random weights (e.g. Full, which has none shipped).")
@click.option("--compile", "torch_compile", is_flag=True,
              help="Run the network through torch.compile (as convert --compile).")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def command(model, size, frames, device, precision, tile, batch_size, preset, parts, untrained, torch_compile,
            as_json):
    """Measure the reference convolution, the network alone, decode alone, encode alone and the
    whole convert pipeline; print the bottleneck and the pipeline's efficiency.

    \b
    Example:
      didtv bench --model tiny --size 960x540
      didtv bench --model bt2408 --size 1920x1080 --part decode --part encode --json
    """
    from didtv.bench import PARTS, bench, parse_size
    from didtv.pipeline.runner import parse_tile

    def progress(part: str, result: dict) -> None:
        if not as_json:
            click.echo(f"measured {part}", err=True)

    report = bench(model=model, size=parse_size(size), frames=frames, device=device, precision=precision,
                   tile=parse_tile(tile), batch_size=batch_size, preset=preset, untrained=untrained,
                   torch_compile=torch_compile, parts=tuple(parts) or PARTS, on_part=progress)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    _print(report)


def _print(report: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    m = report["machine"]
    title = (f"didtv bench: {report['model']}{' (untrained)' if report['untrained'] else ''} at {report['size']}, {report['frames']} frames; "
             f"{m['cpu']} ({m['cores']} cores){', ' + m['gpu'] if 'gpu' in m else ''}, torch {m['torch']}")
    table = Table(title=title, title_justify="left")
    for col in ("part", "frames/s", "Mpixel/s", "achieved", "peak RSS MB (+FFmpeg)", "notes"):
        table.add_column(col, justify="left" if col in ("part", "notes") else "right")
    w, h = (int(v) for v in report["size"].split("x"))
    for name, r in report["parts"].items():
        mem = r.get("memory", {})
        rss = mem.get("tree_rss_mb", mem.get("rss_mb", 0))
        notes = []
        if "precision" in r:
            notes.append(f"{r.get('device', '')} {r['precision']}")
        if "cuda_mb" in mem:
            notes.append(f"CUDA peak {mem['cuda_mb']:.0f} MB")
        if name == "reference":
            table.add_row(name, "", "", _fmt_flops(r["flops_per_s"]), f"{rss:.0f}", "64->64 3x3 conv, " + " ".join(notes))
            continue
        fps = r["fps"]
        if name == "pipeline":
            notes.append(f"streaming {r['streaming_fps']:.2f} fps; bottleneck {r['stages']['bottleneck']}")
        if name == "network" and r.get("torch_compile"):
            notes.append(f"torch.compile (first window {r['warmup_s']:.0f} s)")
        if name == "network" and r.get("deform_sampling"):
            notes.append(f"deformable sampling: {r['deform_sampling']}")
        if name == "network" and r.get("tile"):
            notes.append(f"tiles of {r['tile']}")
        if name == "encode":
            notes.append(f"x265 {r['x265_preset']}")
        table.add_row(name, f"{fps:.2f}", f"{fps * w * h / 1e6:.1f}", _fmt_flops(r.get("flops_per_s")),
                      f"{rss:.0f}", "; ".join(notes))
    Console().print(table)
    if "bottleneck" in report:
        click.echo(f"bottleneck: {report['bottleneck']}")
    if "efficiency" in report:
        click.echo(f"pipeline efficiency: {report['efficiency'] * 100:.0f}% "
                   "(streaming fps / slowest stage alone)")
    if "network_vs_reference" in report:
        ref = report["parts"].get("network", {}).get("reference_flops_per_s")
        when = f" ({_fmt_flops(ref)}, run between the network's windows)" if ref else ""
        click.echo(f"network achieved FLOP/s: {report['network_vs_reference'] * 100:.0f}% of the reference convolution{when}")
