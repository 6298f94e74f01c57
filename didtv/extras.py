"""Optional dependencies ("extras"): converting needs none of them; a few commands need one.

``pip install didtv`` installs what ``didtv convert`` (and probe, presets, models, bench, demo)
needs. The rest is opt-in, by pyproject extra:

- ``train``: ``didtv data build`` (OpenEXR and OpenCV read the HDR photographs);
- ``eval``: ``didtv eval`` (piq's structural metrics, which import torchvision);
- ``preview``: ``didtv preview`` (matplotlib draws the legends and histograms);
- ``ray``: ``didtv convert --engine ray`` (chunks and files as Ray tasks, docs/scale.md).

:data:`COMMAND_EXTRAS` says which command needs which; the CLI checks it before running the
command (:func:`require`), so a missing package is one line naming the extra to install, not a
``ModuleNotFoundError`` traceback half-way through.
"""

from __future__ import annotations

import importlib.util

from didtv.errors import DidtvError

#: extra -> the import names it provides (each its own distribution in pyproject.toml).
EXTRAS: dict[str, tuple[str, ...]] = {
    "train": ("OpenEXR", "cv2"),
    "eval": ("piq", "torchvision"),
    "preview": ("matplotlib",),
    "ray": ("ray",),
}

#: command (as typed after ``didtv``) -> the extra it needs.
COMMAND_EXTRAS: dict[str, str] = {"data build": "train", "eval": "eval", "preview": "preview"}


class MissingExtraError(DidtvError):
    """A command needs an optional dependency that is not installed."""

    exit_code = 1


def missing(extra: str) -> list[str]:
    """The import names of ``extra`` that cannot be found (without importing anything)."""
    return [name for name in EXTRAS[extra] if importlib.util.find_spec(name) is None]


def require(extra: str, command: str) -> None:
    """Raise :class:`MissingExtraError` (one line, naming the extra) when ``extra`` is incomplete."""
    lacking = missing(extra)
    if lacking:
        raise MissingExtraError(f"didtv {command} needs the optional '{extra}' dependencies "
                                f"(missing: {', '.join(lacking)}): pip install 'didtv[{extra}]'")
