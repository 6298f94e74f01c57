"""didtv: SDR to HDR10 video conversion with DIDNet.

The library works without the CLI::

    import didtv
    info = didtv.probe("in.mp4")
    result = didtv.convert("in.mp4", "out.mkv", model="bt2408")
"""

from __future__ import annotations

__version__ = "0.1.0"

from didtv.errors import DidtvError  # noqa: E402

__all__ = ["__version__", "DidtvError", "convert", "convert_batch", "probe", "load_model"]


def __getattr__(name: str):
    # Lazy: importing didtv must not import torch or spawn anything.
    if name == "convert":
        from didtv.api import convert

        return convert
    if name == "convert_batch":
        from didtv.batch import convert_batch

        return convert_batch
    if name == "probe":
        from didtv.io.probe import probe

        return probe
    if name == "load_model":
        from didtv.models.registry import load_model

        return load_model
    raise AttributeError(f"module 'didtv' has no attribute {name!r}")
