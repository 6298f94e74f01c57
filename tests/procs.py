"""Which processes are alive, read from /proc (Linux; no psutil): for the shutdown tests, which
check that no FFmpeg / x265 / mkvtoolnix child outlives an error or a signal. Not a test module.

A zombie (state Z: dead, not yet reaped) counts as ended.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

#: Skip mark for tests that read /proc.
requires_proc = pytest.mark.skipif(not sys.platform.startswith("linux") or not Path("/proc/self/stat").exists(),
                                   reason="needs Linux /proc")


def _processes() -> list[tuple[int, str, str, int, int]]:
    """(pid, name, state, ppid, pgrp) of every process."""
    out = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            text = Path(f"/proc/{entry}/stat").read_text()
        except OSError:  # ended meanwhile
            continue
        name = text[text.index("(") + 1:text.rindex(")")]
        state, ppid, pgrp = text[text.rindex(")") + 2:].split()[:3]
        out.append((int(entry), name, state, int(ppid), int(pgrp)))
    return out


def live_children(ppid: int | None = None) -> list[tuple[int, str]]:
    """(pid, name) of the living children of ``ppid`` (default: this process)."""
    ppid = os.getpid() if ppid is None else ppid
    return [(pid, name) for pid, name, state, parent, _ in _processes() if parent == ppid and state != "Z"]


def live_in_group(pgrp: int) -> list[tuple[int, str]]:
    """(pid, name) of the living processes in process group ``pgrp`` (children keep their
    parent's group even after the parent is gone and they are reparented)."""
    return [(pid, name) for pid, name, state, _, group in _processes() if group == pgrp and state != "Z"]
