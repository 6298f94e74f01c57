"""The few exceptions didtv raises. The CLI turns each into one line plus a hint and an exit code."""

from __future__ import annotations


class DidtvError(Exception):
    """Base class. ``hint`` is an optional second sentence telling the user what to do."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint


class ProbeError(DidtvError):
    """The input could not be read as a video (not a video, corrupt, unreadable)."""

    exit_code = 3


class FFmpegError(DidtvError):
    """FFmpeg/ffprobe/mkvtoolnix is missing, lacks a feature, or failed while running."""

    exit_code = 4


class ModelError(DidtvError):
    """A model name is unknown, or its weights are missing, incompatible or unsafe."""

    exit_code = 5


class UnsupportedInputError(DidtvError):
    """The input is a video didtv refuses to convert (already HDR, too small, ...)."""

    exit_code = 6


class OutputError(DidtvError):
    """The output cannot be written (exists, not writable, same as input, disk full)."""

    exit_code = 7


class UsageError(DidtvError):
    """An option value the library cannot honour here (e.g. a precision this device lacks)."""

    exit_code = 2
