"""Batch conversion of a folder: discover videos by probing, mirror the folder structure, convert
each with :func:`didtv.api.convert`, resume where a previous run stopped. No click, no rich.

The design, the JSON report schema and the resumption rules are in docs/batch.md. In short::

    report = convert_batch("videos/", "videos-hdr/", model="bt2408", recursive=True)
    report.ok            # True when nothing failed (and the run was not interrupted)
    report.to_json()     # every input with its status and a one-line reason

* **Discovery** probes every file (``ffprobe``), not just those with a video extension. A file
  ffprobe cannot read is *failed* when its extension says video (a damaged video), *skipped*
  otherwise (not a video). Still images and already-HDR video (without ``force``) are skipped,
  hidden files too. Hidden folders are not entered, nor OUT_DIR when it lies inside IN_DIR.
* **Outputs** mirror IN_DIR: ``IN/a/b.mp4`` -> ``OUT/a/b.mkv``. When two inputs of one folder
  would get the same output name (``b.mp4``, ``b.mov``), both keep their extension
  (``b.mp4.mkv``, ``b.mov.mkv``).
* **Resumption**: an existing output is skipped only after :func:`verify_output` accepts it
  (HEVC Main10 with HDR10 metadata, a ``DIDTV`` tag naming the same source fingerprint and
  options, the source's exact frame count, decodable); anything else is converted again and
  replaced atomically. Stale ``.NAME.didtv-partial-HOST-PID.*`` files of dead processes are removed.
* **Isolation**: one file's failure (any exception but an interrupt) is recorded with a one-line
  reason and the batch goes on.
* **Interrupts**: KeyboardInterrupt (the CLI turns SIGTERM into one) stops the batch once the
  running conversions have removed their temporary files; :class:`BatchInterrupted` carries
  the report. With ``jobs > 1`` the workers stop at their next frame.

Modules: :mod:`~didtv.batch.report` (items, the report, events), :mod:`~didtv.batch.discovery`
(folders, discovery, output names, stale partial files), :mod:`~didtv.batch.verify` (is an
existing output complete and current), :mod:`~didtv.batch.schedule` (:func:`convert_batch`:
running the conversions, one at a time or in parallel).
"""

from didtv.batch.discovery import VIDEO_EXTENSIONS, check_dirs, clean_stale_partials, discover, output_names
from didtv.batch.report import (REPORT_SCHEMA_VERSION, STATUSES, BatchEvent, BatchInterrupted, BatchItem,
                                BatchReport)
from didtv.batch.schedule import convert_batch
from didtv.batch.verify import read_identity, verify_output

__all__ = ["convert_batch", "BatchReport", "BatchItem", "BatchEvent", "BatchInterrupted",
           "verify_output", "discover", "output_names", "clean_stale_partials",
           "REPORT_SCHEMA_VERSION", "VIDEO_EXTENSIONS", "STATUSES", "check_dirs", "read_identity"]
