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
              type=click.Choice(["reference", "network", "decode", "encode", "x265", "pipeline"]),
              help="Measure only these parts (repeatable). Default: all (x265 only when the "
                   "preset's encoder differs from the default preset's, else encode is it).")
@click.option("--untrained", is_flag=True,
              help="Time the model's architecture with random weights (e.g. Full, which has none shipped).")
@click.option("--compile", "torch_compile", is_flag=True,
              help="Run the network through torch.compile (as convert --compile).")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="torch threads per part (default: --cores, else every usable CPU).")
@click.option("--cores", type=click.IntRange(1, 1024), default=None,
              help="Pin each part (FFmpeg/x265 included) to this many CPUs: emulate a smaller machine.")
@click.option("--cpu-isa", type=click.Choice(["avx2"]), default=None,
              help="Cap PyTorch/oneDNN at this instruction set, fp32 on the CPU (ONEDNN_MAX_CPU_ISA=AVX2, "
                   "ATEN_CPU_CAPABILITY=avx2): with --cores 2, a 2-core AVX2 CPU on a bigger one.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@handle_errors
def command(model, size, frames, device, precision, tile, batch_size, preset, parts, untrained, torch_compile,
            threads, cores, cpu_isa, as_json):
    """Measure the reference convolution, the network alone, decode alone, encode alone, x265
    medium alone and the whole convert pipeline; print the bottleneck, the pipeline's
    efficiency, the network's and the conversion's speed as a fraction of x265 medium's, the
    model's GFLOP per frame and the conversion's peak memory.

    \b
    Example:
      didtv bench --model tiny --size 960x540
      didtv bench --model bt2408 --size 1920x1080 --part decode --part encode --json
      didtv bench --model lite --size 1920x1080 --cpu-isa avx2 --cores 2 --part network --part encode
    """
    from didtv.bench import bench, parse_size
    from didtv.pipeline.runner import parse_tile

    def progress(part: str, result: dict) -> None:
        if not as_json:
            click.echo(f"measured {part}", err=True)

    report = bench(model=model, size=parse_size(size), frames=frames, device=device, precision=precision,
                   tile=parse_tile(tile), batch_size=batch_size, preset=preset, untrained=untrained,
                   torch_compile=torch_compile, parts=tuple(parts) or None, threads=threads, cores=cores,
                   cpu_isa=cpu_isa, on_part=progress)
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
    if "emulated" in m:
        e = m["emulated"]
        title += (f"; emulating {e['cores'] or m['cores']} cores" + (f", {e['cpu_isa'].upper()} fp32" if e["cpu_isa"] else ""))
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
        if name in ("encode", "x265"):
            notes.append(f"x265 {r['x265_preset']}" + (f" CRF {r['crf']:g}" if r.get("crf") is not None else "")
                         + (f" ({r['preset']})" if name == "x265" else ""))
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
    _print_targets(report)


def _print_targets(report: dict) -> None:
    """The cost lines of issue 25's targets: GFLOP per frame, fps against x265 medium, memory."""
    cost = report.get("gflops_per_frame")
    if cost:
        click.echo("model GFLOP per frame: " + ", ".join(f"{v:.1f} at {k}" for k, v in cost.items()))
    if "x265_medium_fps" in report:
        src = "" if report["x265_medium_part"] == "x265" else " (the encode part: the preset's encoder is the default's)"
        click.echo(f"x265 medium alone: {report['x265_medium_fps']:.2f} fps{src}")
    if "network_vs_x265" in report:
        click.echo(f"network / x265-medium: {report['network_vs_x265']:.2f} (target >= 1 at 1920x1080 on a 2-core AVX2 fp32 CPU)")
    if "convert_vs_x265" in report:
        click.echo(f"convert / x265-medium: {report['convert_vs_x265']:.2f} (whole convert call; streaming loop "
                   f"{report['streaming_vs_x265']:.2f}; target >= 0.75)")
    if report.get("pipeline_peak_mb") is not None:
        click.echo(f"convert peak memory: {report['pipeline_peak_mb'] / 1024:.2f} GB (process tree, FFmpeg and x265 "
                   "included; target at 3840x2160: < 3 GB)")
