"""The batch's items and report (JSON schema in docs/batch.md), the events ``on_event``
receives, and the interrupt that carries the report."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from didtv.api import Progress
from didtv.errors import OutputError
from didtv.io.probe import VideoInfo

REPORT_SCHEMA_VERSION = 1
#: Item statuses: pending (not reached), converted, skipped, failed, interrupted.
STATUSES = ("pending", "converted", "skipped", "failed", "interrupted")


@dataclass
class BatchItem:
    """One file under IN_DIR. ``input``/``output``: paths relative to IN_DIR / OUT_DIR (POSIX
    separators in the report). ``frames``: exact, for converted and verified files (else None);
    ``estimated_frames``: the probe's estimate for videos (None when unknown). ``reason``: one line for skipped/failed/interrupted (and the
    reason a previous output was redone, for converted ones)."""

    source: Path
    input: str
    output: str | None = None
    status: str = "pending"
    reason: str | None = None
    frames: int | None = None
    estimated_frames: int | None = None
    seconds: float | None = None
    warnings: list[str] = field(default_factory=list)
    error: str | None = None
    info: VideoInfo | None = field(default=None, repr=False)

    def to_json(self) -> dict:
        return {"input": self.input, "output": self.output, "status": self.status,
                "reason": self.reason, "frames": self.frames,
                "estimated_frames": self.estimated_frames,
                "seconds": None if self.seconds is None else round(self.seconds, 3),
                "warnings": list(self.warnings), "error": self.error}


@dataclass
class BatchReport:
    in_dir: Path
    out_dir: Path
    container: str
    recursive: bool
    jobs: int
    options: dict
    items: list[BatchItem] = field(default_factory=list)
    started: str = ""
    finished: str | None = None
    seconds: float = 0.0
    interrupted: bool = False
    removed_partials: list[str] = field(default_factory=list)
    excluded: list[str] = field(default_factory=list)

    def count(self, status: str) -> int:
        return sum(1 for i in self.items if i.status == status)

    @property
    def counts(self) -> dict[str, int]:
        out = {s: self.count(s) for s in STATUSES}
        out["total"] = len(self.items)
        return out

    @property
    def ok(self) -> bool:
        """Nothing failed and nothing was left undone by an interrupt."""
        return not self.interrupted and self.count("failed") == 0

    @property
    def frames_converted(self) -> int:
        return sum(i.frames or 0 for i in self.items if i.status == "converted")

    def to_json(self) -> dict:
        from didtv import __version__

        return {
            "schema_version": REPORT_SCHEMA_VERSION,
            "didtv_version": __version__,
            "in_dir": str(self.in_dir),
            "out_dir": str(self.out_dir),
            "container": self.container,
            "recursive": self.recursive,
            "jobs": self.jobs,
            "options": self.options,
            "started": self.started,
            "finished": self.finished,
            "seconds": round(self.seconds, 3),
            "interrupted": self.interrupted,
            "ok": self.ok,
            "counts": self.counts,
            "frames_converted": self.frames_converted,
            "removed_partials": list(self.removed_partials),
            "excluded": list(self.excluded),
            "files": [i.to_json() for i in self.items],
        }

    def write_json(self, path: Path) -> None:
        """Write the report atomically (a hidden temporary file renamed into place)."""
        path = Path(path)
        tmp = path.with_name(f".{path.name}.didtv-partial-{os.getpid()}.json")
        try:
            tmp.write_text(json.dumps(self.to_json(), indent=2, ensure_ascii=False) + "\n",
                           encoding="utf-8")
            os.replace(tmp, path)
        except OSError as exc:
            raise OutputError(f"cannot write the report {path}: {exc.strerror or exc}") from exc
        finally:
            try:
                tmp.unlink()
            except FileNotFoundError:
                pass


@dataclass(frozen=True)
class BatchEvent:
    """Passed to ``on_event``. kind: "plan" (discovery done: ``report.items`` lists everything),
    "start" (``item`` begins: verification or conversion), "progress" (``progress`` of
    ``item``'s conversion), "done" (``item`` has its final status)."""

    kind: str
    report: BatchReport
    item: BatchItem | None = None
    progress: Progress | None = None


class BatchInterrupted(KeyboardInterrupt):
    """Raised by :func:`convert_batch` on an interrupt, after cleanup; ``report`` says what
    was done (the interrupted files have status "interrupted", the others "pending")."""

    def __init__(self, report: BatchReport) -> None:
        super().__init__("batch interrupted")
        self.report = report
