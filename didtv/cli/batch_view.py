"""How ``didtv convert`` shows a batch (a folder): the progress of the files and the batch, and
the closing table and total."""

from __future__ import annotations

import sys
import time

import click


def fmt_seconds(s: float | None) -> str:
    if s is None:
        return "-:--"
    s = int(round(s))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


class BatchRenderer:
    """Overall progress (files done / skipped / failed, frames, ETA) and each running file's
    progress: rich bars on a terminal, plain lines otherwise. Called from worker threads
    (convert_batch serialises the calls)."""

    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.t0 = time.monotonic()
        self.frames_done = 0  # frames of finished conversions
        self.current: dict[int, int] = {}  # id(item) -> frames done so far
        self.expected = 0  # estimated frames of everything to convert
        self.bar = None
        self.overall = None
        self.tasks: dict[int, int] = {}
        self.logged: dict[int, int] = {}

    def __enter__(self):
        if not self.quiet and self.tty:
            from rich.console import Console
            from rich.progress import BarColumn, Progress, TextColumn

            self.bar = Progress(TextColumn("{task.description}"), BarColumn(),
                                TextColumn("{task.fields[info]}"), console=Console(stderr=True),
                                transient=True)
            self.bar.start()
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _line(self, text: str) -> None:
        if self.bar is not None:
            self.bar.console.print(text, markup=False, highlight=False)
        else:
            click.echo(f"didtv: {text}", err=True)

    def _overall_text(self, report) -> str:
        c = report.counts
        finished = c["converted"] + c["skipped"] + c["failed"]
        done = self.frames_done + sum(self.current.values())
        elapsed = time.monotonic() - self.t0
        eta = None
        if done and elapsed > 0:
            eta = max(self.expected - done, 0) / (done / elapsed)
        return (f"{finished}/{c['total']} files: {c['converted']} converted, {c['skipped']} skipped, "
                f"{c['failed']} failed; {done}/{self.expected} frames; ETA {fmt_seconds(eta)}")

    def event(self, ev) -> None:
        report, item = ev.report, ev.item
        if ev.kind == "plan":
            todo = [i for i in report.items if i.status == "pending"]
            self.expected = sum(i.estimated_frames or 0 for i in todo)
            if self.quiet:
                return
            self._line(f"{len(report.items)} files in {report.in_dir}: {len(todo)} videos to check "
                       f"or convert into {report.out_dir}")
            for p in report.removed_partials:
                self._line(f"removed stale temporary file {p}")
            if self.bar is not None:
                self.overall = self.bar.add_task("[bold]batch", total=max(len(report.items), 1),
                                                 info=self._overall_text(report))
            return
        key = id(item)
        if ev.kind == "start":
            self.current[key] = 0
            if self.bar is not None:
                self.tasks[key] = self.bar.add_task(f"  {item.input}", total=item.estimated_frames, info="")
        elif ev.kind == "progress":
            p = ev.progress
            self.current[key] = p.frames_done
            if self.bar is not None and key in self.tasks:
                self.bar.update(self.tasks[key], total=p.frames_total, completed=p.frames_done,
                                info=f"{p.frames_done}/{p.frames_total} frames, {p.fps:.1f} fps, "
                                     f"ETA {fmt_seconds(p.eta)}"
                                     + (f", bottleneck: {p.stages.bottleneck}" if p.stages and p.stages.bottleneck else ""))
            elif self.bar is None and not self.quiet and p.frames_total:
                step = max(p.frames_total // 4, 1)  # a line every 25 %
                if p.frames_done and (p.frames_done % step == 0 or p.frames_done == p.frames_total) \
                        and self.logged.get(key) != p.frames_done:
                    self.logged[key] = p.frames_done
                    self._line(f"  {item.input}: {p.frames_done}/{p.frames_total} frames, "
                               f"{p.fps:.1f} fps | {self._overall_text(report)}")
        elif ev.kind == "done":
            self.current.pop(key, None)
            if item.info is not None:  # a video: replace its estimate by what it really took
                self.expected -= item.estimated_frames or 0
                if item.status == "converted":
                    self.frames_done += item.frames or 0
                    self.expected += item.frames or 0
            if key in self.tasks:
                self.bar.remove_task(self.tasks.pop(key))
            if item.status == "failed":
                # Failures are shown even with --quiet: one line each.
                if self.quiet:
                    click.echo(f"didtv: failed: {item.input}: {item.reason}", err=True)
                else:
                    self._line(f"failed: {item.input}: {item.reason}")
            elif not self.quiet and item.status in ("converted", "interrupted") or (
                    not self.quiet and item.status == "skipped" and item.info is not None):
                extra = f" ({item.frames} frames, {item.seconds or 0:.1f} s)" if item.status == "converted" else ""
                why = f": {item.reason}" if item.reason else ""
                self._line(f"{item.status}: {item.input}{extra}{why}")
        if self.bar is not None and self.overall is not None:
            c = report.counts
            self.bar.update(self.overall, completed=c["converted"] + c["skipped"] + c["failed"],
                            info=self._overall_text(report))


def summary(report, *, quiet: bool, report_path: str) -> None:
    """The table of every file (stdout) and a one-line total."""
    c = report.counts
    line = (f"{c['converted']} converted, {c['skipped']} skipped, {c['failed']} failed"
            + (f", {c['interrupted']} interrupted, {c['pending']} not started" if report.interrupted else "")
            + f" of {c['total']} files in {report.seconds:.1f} s; report: {report_path}")
    if quiet:
        if c["failed"] or report.interrupted:
            click.echo(f"didtv: {line}", err=True)
        return
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"didtv: {report.in_dir} -> {report.out_dir}", title_justify="left")
    for col, kw in (("status", {}), ("input", {"overflow": "fold"}), ("output", {"overflow": "fold"}),
                    ("frames", {"justify": "right"}), ("s", {"justify": "right"}),
                    ("reason", {"overflow": "fold"})):
        table.add_column(col, **kw)
    style = {"converted": "green", "skipped": "dim", "failed": "bold red", "interrupted": "yellow",
             "pending": "yellow"}
    for i in report.items:
        table.add_row(f"[{style[i.status]}]{i.status}[/]", i.input, i.output or "",
                      "" if i.frames is None else str(i.frames),
                      "" if i.seconds is None else f"{i.seconds:.1f}", i.reason or "")
    console = Console(file=sys.stdout, width=None if sys.stdout.isatty() else 160)
    console.print(table)
    click.echo(line)
