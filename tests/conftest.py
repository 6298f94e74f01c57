"""Shared pytest setup: environment, and fixtures that make tiny real clips (tests/clips.py).

``sdr_clip`` and ``clip_factory`` skip the test with "FFmpeg not installed (apt-get install
ffmpeg mkvtoolnix)" when ffmpeg or ffprobe is missing. Tests that run FFmpeg without these
fixtures use ``from clips import requires_ffmpeg`` (a skipif mark) or ``skip_without_ffmpeg()``.
``tests/`` is on sys.path (this conftest lives there), so ``import clips`` works from any test.
"""

from __future__ import annotations

import os

# colour-science warns about matplotlib at import; keep test output readable.
os.environ.setdefault("COLOUR_SCIENCE__FILTER_USAGE_WARNINGS", "True")

import itertools  # noqa: E402
from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from clips import (FFMPEG_MISSING_REASON, ffmpeg_available, make_clip,  # noqa: E402,F401
                   requires_ffmpeg, skip_without_ffmpeg)


@pytest.fixture
def clip_factory(tmp_path):
    """``clip_factory(name=None, **make_clip_kwargs) -> Path``: a clip inside this test's
    tmp_path. ``name`` picks the file name and so the container ("a.mkv"); by default
    clip1.mp4, clip2.mp4, ..."""
    skip_without_ffmpeg()
    counter = itertools.count(1)

    def factory(name: str | None = None, **kwargs) -> Path:
        return make_clip(tmp_path / (name or f"clip{next(counter)}.mp4"), **kwargs)

    return factory


@pytest.fixture
def sdr_clip(tmp_path) -> Path:
    """A 12-frame 64x48 25 fps 8-bit BT.709 H.264 .mp4 with stereo AAC audio ("eng") and a
    mov_text subtitle track ("fra")."""
    skip_without_ffmpeg()
    return make_clip(tmp_path / "sdr.mp4", kind="sdr", frames=12, audio=True, subtitles=True)
