"""Native CPU kernels, built on first use with the system C compiler and loaded with ctypes.

One kernel so far: the deformable convolution's bilinear sampling (``deform_sample.c``), which
replaces ``grid_sample`` + mask multiply + dtype cast of :func:`didtv.models.align.deform_conv2d_torch`
for CPU inference (docs/benchmarks.md, "Fused deformable sampling"). It needs no Python or torch
headers, so building it takes about a second with ``cc -O3 -march=native``; the shared object is
cached under ``$XDG_CACHE_HOME/didtv/native`` (default ``~/.cache``), keyed by the source, the
compiler command and this CPU's feature flags (a cache shared between machines never hands an
AVX-512 build to a CPU without it).

When no compiler is found or the build fails, :func:`deform_kernel` returns ``None`` and DIDNet
uses the pure-PyTorch path: the same numbers within float rounding, slower. ``DIDTV_NATIVE=0``
switches the native path off; ``DIDTV_CC`` names the compiler.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import logging
import os
import platform
import shutil
import subprocess
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("deform_sample.c")
# -mprefer-vector-width=512: GCC's -march=native stops at 256-bit vectors on AVX-512 CPUs; the
# per-pixel loops run 5-10% faster with 512 (AMX Xeon, 2026-12-02). Ignored without AVX-512.
CFLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-fno-math-errno", "-fno-trapping-math",
          "-fPIC", "-shared", "-fopenmp")
#: Added to CFLAGS, builds the plain-C kernel even on an AVX-512 CPU (tests compare the two).
GENERIC_CFLAGS = ("-DDIDTV_GENERIC",)

# dtype codes of deform_sample.c
F32, BF16 = 0, 1


def enabled() -> bool:
    """False when ``DIDTV_NATIVE`` is set to 0/false/off/no."""
    return os.environ.get("DIDTV_NATIVE", "1").strip().lower() not in {"0", "false", "off", "no"}


def _compiler() -> str | None:
    name = os.environ.get("DIDTV_CC") or "cc"
    return shutil.which(name) or (shutil.which("gcc") if name == "cc" else None)


def _cpu_flags() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(("flags", "Features")):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "didtv" / "native"


def _build(cc: str, target: Path) -> None:
    target.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target and rename: a concurrent process never loads a half-written file.
    fd, tmp = tempfile.mkstemp(suffix=".so", dir=target.parent)
    os.close(fd)
    try:
        proc = subprocess.run([cc, *CFLAGS, str(SOURCE), "-o", tmp, "-lm"],
                              capture_output=True, text=True, timeout=120)
        if proc.returncode:
            raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"{cc} failed")
        os.replace(tmp, target)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def deform_kernel():
    """The loaded ``didtv_deform_columns`` function, or ``None`` when it cannot be had."""
    lib = _library()
    return None if lib is None else lib.didtv_deform_columns


def pack_kernel():
    """The loaded ``didtv_pack_groups`` function (the sampling's input layout), or ``None``."""
    lib = _library()
    return None if lib is None else lib.didtv_pack_groups


def forget() -> None:
    """Drop the loaded library, so the next call looks again (tests; a changed ``DIDTV_NATIVE``)."""
    _library.cache_clear()


@functools.lru_cache(maxsize=1)
def _library():
    if not enabled() or platform.system() != "Linux":
        return None
    cc = _compiler()
    if cc is None:
        log.info("no C compiler found: deformable sampling uses the PyTorch path")
        return None
    key = hashlib.sha256(
        "\0".join([SOURCE.read_text(), cc, *CFLAGS, platform.machine(), _cpu_flags()]).encode()
    ).hexdigest()[:16]
    # The temporary directory is for a cache that cannot be written or loaded from (OSError); a
    # compiler that fails fails there too, so that is not built twice.
    for directory in (cache_dir(), Path(tempfile.gettempdir()) / f"didtv-native-{os.getuid()}"):
        target = directory / f"deform_sample-{key}.so"
        try:
            if not target.exists():
                _build(cc, target)
            lib = ctypes.CDLL(str(target))
            break
        except OSError as exc:
            log.info("native deformable sampling unavailable in %s: %s", directory, exc)
        except (RuntimeError, subprocess.SubprocessError) as exc:
            log.info("building the native deformable sampling failed: %s", exc)
            return None
    else:
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.didtv_deform_columns.argtypes = [ptr, ptr, ctypes.c_int, ptr, ctypes.c_int, ctypes.c_int,
                                         ctypes.c_float, ctypes.c_float, ptr, ptr, ptr, ctypes.c_int,
                                         *([i64] * 18), ctypes.c_int]
    lib.didtv_deform_columns.restype = ctypes.c_int
    lib.didtv_pack_groups.argtypes = [ptr, ptr, *([i64] * 6), ctypes.c_int]
    lib.didtv_pack_groups.restype = None
    return lib
