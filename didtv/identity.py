"""What an output records about how it was made (batch resumption, docs/batch.md; the chunks
of a chunked conversion, didtv.chunks.work). Re-exported by didtv.api."""

from __future__ import annotations

import hashlib
import os
from fractions import Fraction

from didtv.presets import Preset

#: Global tag holding :func:`conversion_identity` as JSON, in MKV and MP4 outputs.
IDENTITY_TAG = "DIDTV"
IDENTITY_VERSION = 1
_SAMPLE = 1 << 20  # bytes hashed at the start, middle and end of a file
#: A ``.safetensors`` name -> the file this process reads for it: a Ray node's copy of weights
#: that came through the object store (didtv.engine.objects). The model is loaded from the copy,
#: outputs record the name the user gave (and the copy's fingerprint, the same bytes).
WEIGHTS_COPIES: dict[str, str] = {}


def weights_file(name: str | os.PathLike) -> str:
    """Where this process reads the weights file named ``name`` (itself, unless copied)."""
    return WEIGHTS_COPIES.get(str(name), str(name))


def file_fingerprint(path: str | os.PathLike) -> str:
    """``"SIZE:SHA256"`` over the size and up to three 1 MiB samples (start, middle, end).

    Cheap on any file size and independent of path and mtime (a copied library still matches);
    an edit that keeps the size and all three samples is not noticed.
    """
    h = hashlib.sha256()
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        for offset in sorted({0, max(0, size // 2 - _SAMPLE // 2), max(0, size - _SAMPLE)}):
            f.seek(offset)
            h.update(f.read(_SAMPLE))
    return f"{size}:{h.hexdigest()}"


def conversion_options(preset: Preset, model_name: str, fps: Fraction) -> dict:
    """Everything that changes the pixels or metadata of an output, as a JSON-ready dict: the
    resolved model (plus a fingerprint of its weights file when it is a path), the encoder
    settings at ``fps``, tone targets and output size. Not didtv's version, device or paths."""
    enc = preset.encode_for(fps) if hasattr(preset, "encode_for") else preset.encode
    options: dict = {
        "model": model_name,
        "crf": None if enc.lossless else enc.crf,
        "x265_preset": enc.preset,
        "lossless": enc.lossless,
        "x265_params": list(enc.x265_params),
        "mastering": enc.mastering.x265(),
    }
    tone = getattr(preset, "tone", None)
    if tone is not None:
        options["tone"] = {"diffuse_white": tone.diffuse_white, "peak": tone.peak}
    options["max_height"] = getattr(preset, "max_height", None)
    if str(model_name).endswith(".safetensors") and os.path.isfile(weights_file(model_name)):
        options["weights"] = file_fingerprint(weights_file(model_name))
    return options


def conversion_identity(src: str | os.PathLike, options: dict, frames: int) -> dict:
    """The DIDTV tag: which source (fingerprint, frame count) and options made an output."""
    return {"v": IDENTITY_VERSION, "source": file_fingerprint(src), "frames": frames,
            "options": options}
