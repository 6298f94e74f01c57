"""``didtv convert IN OUT``: one SDR video to HDR10."""

from __future__ import annotations

import sys

import click

from didtv.cli.common import handle_errors


def _progress_renderer(quiet: bool):
    """A context manager + callback pair: a rich bar on a terminal, log lines otherwise."""
    import contextlib

    if quiet:
        return contextlib.nullcontext(), None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]converting"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[fps]:.1f} fps"), TimeRemainingColumn(),
                       console=Console(stderr=True), transient=True)
        task = bar.add_task("convert", total=None, fps=0.0)

        def update(p) -> None:
            bar.update(task, total=p.frames_total, completed=p.frames_done, fps=p.fps)

        return bar, update

    state = {"last": -1.0}

    def log(p) -> None:
        # A line every ~10% (and at the end): readable in logs, no flood.
        step = max(p.frames_total // 10, 1)
        if p.frames_done == p.frames_total or (p.frames_done and p.frames_done % step == 0):
            if p.frames_done != state["last"]:
                state["last"] = p.frames_done
                click.echo(f"didtv: {p.frames_done}/{p.frames_total} frames, {p.fps:.1f} fps", err=True)

    return contextlib.nullcontext(), log


@click.command("convert")
@click.argument("src", type=click.Path(dir_okay=False, path_type=str))
@click.argument("dst", type=click.Path(dir_okay=False, path_type=str))
@click.option("--model", "-m", default=None, help="Model name (see 'didtv models') or a .safetensors file. Default: the preset's ('auto').")
@click.option("--preset", "-p", default=None, help="Preset name (presets/*.toml) or a .toml file. Default: hdr10-1000.")
@click.option("--crf", type=click.FloatRange(0, 51), default=None, help="x265 constant rate factor (lower = better).")
@click.option("--x265-preset", default=None, help="x265 speed preset (ultrafast ... placebo).")
@click.option("--lossless", is_flag=True, default=None, help="Write x265 lossless HEVC (mastering/measurement).")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists.")
@click.option("--force", is_flag=True, help="Convert even if the input is already HDR.")
@click.option("--device", default=None, help="torch device: auto (default), cpu, cuda, cuda:1 ...")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@handle_errors
def command(src, dst, model, preset, crf, x265_preset, lossless, overwrite, force, device, quiet):
    """Convert SRC (8- or 10-bit BT.709 SDR) to DST (.mkv or .mp4): 10-bit BT.2020 PQ HEVC with
    HDR10 metadata (mastering display; MaxCLL/MaxFALL measured from the written frames).

    \b
    Example:
      didtv convert holiday.mp4 holiday-hdr.mkv --model bt2408 --crf 16
    """
    from didtv.api import convert
    from didtv.presets import load_preset

    chosen = load_preset(preset).with_overrides(model=model, crf=crf, x265_preset=x265_preset,
                                                lossless=lossless)
    ctx, callback = _progress_renderer(quiet)
    with ctx:
        result = convert(src, dst, preset=chosen, overwrite=overwrite, force=force, device=device,
                         on_progress=callback)
    for w in result.warnings:
        click.echo(f"didtv: warning: {w}", err=True)
    if not quiet:
        click.echo(
            f"{result.output}: {result.frames} frames {result.width}x{result.height} @ "
            f"{float(result.fps):.3f} fps, model {result.model}, MaxCLL {result.light.max_cll} / "
            f"MaxFALL {result.light.max_fall} cd/m2, {result.seconds:.1f} s")
