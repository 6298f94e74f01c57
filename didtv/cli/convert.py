"""``didtv convert IN OUT``: one SDR video to HDR10, or (IN a folder) every video in it.

A folder input is a batch (docs/batch.md): ``didtv convert IN_DIR OUT_DIR [--recursive]
[--container mkv|mp4] [--jobs N | --workers N | --engine ray]``; ``--workers N`` / ``--engine
ray`` also run the chunks of one file in parallel (docs/scale.md). The library does the work
(:func:`didtv.api.convert`, :func:`didtv.batch.convert_batch`); this module parses flags, renders
progress, prints the summary; Ctrl-C and SIGTERM stop it cleanly (didtv.cli.signals).
"""

from __future__ import annotations

import contextlib
import os
import sys

import click

from didtv.cli.batch_view import BatchRenderer, fmt_seconds, summary
from didtv.cli.common import handle_errors
from didtv.cli.signals import EXIT_TERMINATED, exit_now, interrupt_exit_code, signals_as_interrupts
from didtv.errors import UsageError

#: Exit status of a batch in which at least one file failed.
EXIT_SOME_FAILED = 1


def _progress_renderer(quiet: bool):
    """A context manager + callback pair: a rich bar on a terminal, log lines otherwise."""
    if quiet:
        return contextlib.nullcontext(), None
    if sys.stderr.isatty():
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        bar = Progress(TextColumn("[bold]converting"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[fps]:.1f} fps"), TimeRemainingColumn(),
                       TextColumn("{task.fields[chunks]}{task.fields[stages]}"),
                       console=Console(stderr=True), transient=True)
        task = bar.add_task("convert", total=None, fps=0.0, stages="", chunks="")

        def update(p) -> None:
            bar.update(task, total=p.frames_total, completed=p.frames_done, fps=p.fps,
                       stages=p.stages.describe() if p.stages else "", chunks=_chunks_text(p))

        return bar, update

    state = {"last": -1.0}

    def log(p) -> None:
        # A line every ~10% (and at the end): readable in logs, no flood.
        step = max(p.frames_total // 10, 1)
        if p.frames_done == p.frames_total or (p.frames_done and p.frames_done % step == 0):
            if p.frames_done != state["last"]:
                state["last"] = p.frames_done
                stages = f" ({p.stages.describe()})" if p.stages else ""
                eta = f", ETA {fmt_seconds(p.eta)}" if p.chunks_total else ""
                click.echo(f"didtv: {p.frames_done}/{p.frames_total} frames, {_chunks_text(p)}"
                           f"{p.fps:.1f} fps{eta}{stages}", err=True)

    return contextlib.nullcontext(), log


def _chunks_text(p) -> str:
    """``chunks 3/12 · `` for a chunked conversion, else nothing."""
    if not p.chunks_total:
        return ""
    return f"chunks {p.chunks_done}/{p.chunks_total} · "


@click.command("convert")
@click.argument("src", type=click.Path(path_type=str))
@click.argument("dst", type=click.Path(path_type=str))
@click.option("--model", "-m", default=None, help="Model name (see 'didtv models') or a .safetensors file. Default: the preset's ('auto').")
@click.option("--preset", "-p", default=None, help="Preset name (see 'didtv presets') or a .toml file. Default: hdr10-1000.")
@click.option("--crf", type=click.FloatRange(0, 51), default=None, help="x265 constant rate factor (lower = better).")
@click.option("--x265-preset", default=None, help="x265 speed preset (ultrafast ... placebo).")
@click.option("--lossless", is_flag=True, default=None, help="Write x265 lossless HEVC (mastering/measurement).")
@click.option("--overwrite", is_flag=True, help="Replace DST if it exists (folders: convert again even outputs that verify).")
@click.option("--force", is_flag=True, help="Convert even if the input is already HDR.")
@click.option("--device", default=None, help="torch device: auto (default), cpu, cuda, cuda:1 ...")
@click.option("--precision", type=click.Choice(["auto", "fp32", "bf16", "fp16"]), default="auto", show_default=True,
              help="Model arithmetic. auto: fp16 on CUDA, bf16 on CPUs with AVX512-BF16/AMX, else fp32.")
@click.option("--tile", default="auto", show_default=True,
              help="Tile edge in pixels for large frames, 'off', or 'auto' (tiles above 1920x1088).")
@click.option("--batch-size", type=click.IntRange(1, 64), default=None,
              help="Windows per model pass. Default: 1 on CPU, up to 8 Mpixel on CUDA.")
@click.option("--motion-guard/--no-motion-guard", default=None,
              help="Learned models: leave neighbour pixels that moved beyond reach out of each 7-frame "
                   "window (no ghosts of fast motion). Default: on.")
@click.option("--compile", "torch_compile", is_flag=True,
              help="Learned models: run the network through torch.compile (the first window waits "
                   "20-40 s for it on CPU), then 1.4-2x faster on CPU; see docs/benchmarks.md.")
@click.option("--chunks", default="auto", show_default=True,
              help="Convert a single file in chunks of at most this many seconds (split at hard cuts), "
                   "resumable after an interruption; 'off' for one pass; 'auto': 60 s chunks for videos "
                   "longer than 5 minutes.")
@click.option("--workers", "-w", type=click.IntRange(1, 256), default=None,
              help="Worker processes (chunks of a single file, files of a folder), threads shared out over "
                   "the cores; with --engine ray: tasks in flight. Default: 1 (ray: the cluster's room). "
                   "See docs/scale.md.")
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Run on this machine, or as Ray tasks on a cluster (pip install 'didtv[ray]').")
@click.option("--address", default=None,
              help="--engine ray: the cluster's address (ray start --head prints it). Default: RAY_ADDRESS, "
                   "else the cluster 'ray start' started last on this machine, else a Ray instance "
                   "started for this run.")
@click.option("--ray-data", type=click.Choice(["shared", "object-store"]), default=None,
              help="--engine ray: 'shared' (default): every node sees the input and output paths (a shared "
                   "filesystem); 'object-store': the source and the outputs travel through Ray's object "
                   "store, nodes need no shared filesystem. See docs/scale.md.")
@click.option("--task-cpus", type=float, default=None,
              help="--engine ray: CPUs each task asks Ray for, and threads it runs. Default: 1.")
@click.option("--keep-work", is_flag=True,
              help="Keep the chunks' work folder (.OUT.didtv-work) after success or failure.")
@click.option("--quiet", "-q", is_flag=True, help="No progress output.")
@click.option("--verbose", "-v", is_flag=True, help="Show every FFmpeg/mkvtoolnix command line as it starts.")
@click.option("--recursive", "-r", is_flag=True, default=None, help="Folders: include subfolders (mirrored in DST).")
@click.option("--container", type=click.Choice(["mkv", "mp4"]), default=None,
              help="Folders (or DST a folder): output container. Default: mkv.")
@click.option("--jobs", "-j", type=click.IntRange(1, 64), default=None, help="Folders: files converted at once. Default: 1.")
@click.option("--report", "report_path", type=click.Path(dir_okay=False, path_type=str), default=None,
              help="Folders: JSON report path. Default: DST/didtv-report.json.")
@click.option("--verify", type=click.Choice(["quick", "full"]), default=None,
              help="Folders: how existing outputs are checked before being skipped. Default: quick.")
@handle_errors
def command(src, dst, model, preset, crf, x265_preset, lossless, overwrite, force, device, precision,
            tile, batch_size, motion_guard, torch_compile, chunks, workers, engine, address, ray_data, task_cpus, keep_work, quiet, verbose, recursive, container, jobs, report_path, verify):
    """Convert SRC (8- or 10-bit BT.709 SDR) to DST (.mkv or .mp4): 10-bit BT.2020 PQ HEVC with
    HDR10 metadata (mastering display; MaxCLL/MaxFALL measured from the written frames).

    When SRC is a folder, every video in it (probed, not guessed from the extension) is
    converted into the folder DST, mirroring the structure; re-running skips outputs that
    verify, so an interrupted batch continues where it stopped. Exit status 0 only when no
    file failed. See docs/batch.md.

    \b
    Example:
      didtv convert holiday.mp4 holiday-hdr.mkv --model bt2408 --crf 16
      didtv convert videos/ videos-hdr/ --recursive --container mp4 --jobs 2
    """
    from didtv.pipeline.runner import parse_tile
    from didtv.presets import load_preset

    if verbose:
        from didtv.cli.main import configure_logging

        configure_logging(True)

    batch = os.path.isdir(src)
    if not batch:
        given = [f"--{n}" for n, v in (("recursive", recursive), ("jobs", jobs), ("report", report_path),
                                       ("verify", verify)) if v is not None]
        if given:
            raise click.UsageError(f"{', '.join(given)} only apply when SRC is a folder")
        if container is not None and not os.path.isdir(dst):
            raise click.UsageError("--container applies when SRC or DST is a folder "
                                   "(otherwise DST's extension decides)")
    elif chunks != "auto" or keep_work:
        raise click.UsageError("--chunks and --keep-work apply to a single file (folders: auto)")
    from didtv.engine import check_engine

    try:  # the library's checks of --engine, --workers, --address, --ray-data, --task-cpus
        check_engine(engine, workers, address, data=ray_data, task_cpus=task_cpus)
    except UsageError as exc:
        raise click.UsageError(str(exc)) from None
    if batch and (jobs or 1) > 1 and ((workers or 1) > 1 or engine == "ray"):
        raise click.UsageError("--jobs (threads in this process) and --workers / --engine ray "
                               "(processes) exclude each other: use --workers")
    from didtv.chunks import parse_chunks

    try:
        chunks = parse_chunks(chunks)
    except UsageError as exc:
        raise click.BadParameter(str(exc), param_hint="--chunks") from None
    try:
        tile = parse_tile(tile)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--tile") from None
    run = {"device": device, "precision": precision, "tile": tile, "batch_size": batch_size,
           "motion_guard": motion_guard, "torch_compile": torch_compile,
           "workers": workers, "engine": engine, "address": address, "ray_data": ray_data,
           "task_cpus": task_cpus}
    chosen = load_preset(preset).with_overrides(model=model, crf=crf, x265_preset=x265_preset,
                                                lossless=lossless)
    with signals_as_interrupts() as sig:
        try:
            if batch:
                _batch(src, dst, chosen, recursive=bool(recursive), container=container or "mkv",
                       jobs=jobs or 1, overwrite=overwrite, force=force, run=run,
                       quiet=quiet, report_path=report_path, verify=verify or "quick")
            else:
                _single(src, dst, chosen, container=container, overwrite=overwrite, force=force,
                        run=run, quiet=quiet, chunks=chunks, keep_work=keep_work)
        except Exception as exc:
            if sig["signal"] is None and sig["seen"] is None:
                if not batch and not keep_work:  # an error, not an interrupt: no chunks kept
                    from didtv.chunks.work import remove_work

                    remove_work(_single_output(src, dst, container))
                raise
            # A child that died of the same Ctrl-C (a terminal signals the whole process group)
            # can fail a stage before the signal reaches Python: still an interrupt, not an error.
            _interrupted(sig, exc, dst, report_path, quiet)
        except KeyboardInterrupt as exc:
            _interrupted(sig, exc, dst, report_path, quiet)


def _interrupted(sig: dict, exc: BaseException, dst, report_path, quiet: bool) -> None:
    """Ctrl-C / SIGTERM: the summary of an interrupted batch, one line, exit 130 / 143."""
    from didtv.batch import BatchInterrupted

    if isinstance(exc, BatchInterrupted):
        summary(exc.report, quiet=quiet, report_path=_report_path(dst, report_path))
    code = interrupt_exit_code(sig, exc)
    from didtv.chunks.work import work_dir

    kept = work_dir(dst)
    kept = f"; finished chunks kept in {kept}: run the same command to resume" if kept.is_dir() else ""
    click.echo(f"didtv: {'terminated' if code == EXIT_TERMINATED else 'interrupted'}; "
               f"temporary files removed{kept}", err=True)
    exit_now(code, sig)


def _single_output(src, dst, container) -> str:
    if os.path.isdir(dst):  # DST a folder: SRC's name with the container's extension
        return os.path.join(dst, os.path.splitext(os.path.basename(src))[0] + f".{container or 'mkv'}")
    return dst


def _single(src, dst, preset, *, container, overwrite, force, run, quiet, chunks, keep_work) -> None:
    from didtv.api import convert

    dst = _single_output(src, dst, container)
    ctx, callback = _progress_renderer(quiet)
    with ctx:
        # Chunks are kept on an error too: the caller tells an error from a Ctrl-C (whose
        # children can fail a stage first) and removes them on a real error.
        result = convert(src, dst, preset=preset, overwrite=overwrite, force=force, **run,
                         chunks=chunks, keep_work=True if keep_work else "on-failure",
                         on_progress=callback)
    for w in result.warnings:
        click.echo(f"didtv: warning: {w}", err=True)
    if not quiet:
        click.echo(
            f"{result.output}: {result.frames} frames {result.width}x{result.height} @ "
            f"{float(result.fps):.3f} fps, model {result.model} ({result.model_reason}), MaxCLL {result.light.max_cll} / "
            f"MaxFALL {result.light.max_fall} cd/m2, {result.seconds:.1f} s")
        if result.stages is not None:
            click.echo(f"  {result.device} {result.precision}: {result.stages.describe()}")


def _report_path(dst: str, report_path: str | None) -> str:
    return report_path or os.path.join(dst, "didtv-report.json")


def _batch(src, dst, preset, *, recursive, container, jobs, overwrite, force, run, quiet,
           report_path, verify) -> None:
    from didtv.batch import convert_batch
    from didtv.errors import OutputError

    if os.path.exists(dst) and not os.path.isdir(dst):
        raise OutputError(f"{dst} is a file: with a folder SRC, DST must be a folder")
    report_path = _report_path(dst, report_path)
    renderer = BatchRenderer(quiet)
    with renderer:
        report = convert_batch(src, dst, preset=preset, container=container, recursive=recursive,
                               jobs=jobs, overwrite=overwrite, force=force, **run,
                               verify=verify, report_path=report_path, on_event=renderer.event)
    summary(report, quiet=quiet, report_path=report_path)
    if not report.ok:
        sys.exit(EXIT_SOME_FAILED)
