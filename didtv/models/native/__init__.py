"""Native CPU kernels, built on first use with the system C compiler and loaded with ctypes.

Two kernels, in one library: the deformable convolution's bilinear sampling (``deform_sample.c``),
which replaces ``grid_sample`` + mask multiply + dtype cast of
:func:`didtv.models.align.deform_conv2d_torch` for CPU inference (docs/benchmarks.md, "Fused
deformable sampling"), and DIDNet Lite's full-size pass (``lite_expand.c``:
:meth:`didtv.models.lite.DIDLite.expand` in one pass per pixel). It needs no Python or torch
headers, so building it takes about a second with ``cc -O3 -march=native``; the shared object is
cached under ``$XDG_CACHE_HOME/didtv/native`` (default ``~/.cache``), named by a hash of the
source, the compiler (resolved path and version), the flags and this CPU's feature flags (a cache
shared between machines never hands an AVX-512 build to a CPU without it). The cache is private
and checked before anything is loaded from it (:mod:`didtv.models.native.cache`: mode 0700,
owner, the library's SHA-256 against the one recorded at build time); where it is unsafe or
cannot be written, each process builds its own copy in a fresh private temporary directory
(never a predictable shared folder) and removes it once loaded.

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

from didtv.models.native import cache

log = logging.getLogger(__name__)

SOURCE = Path(__file__).with_name("deform_sample.c")
SOURCES = (SOURCE, Path(__file__).with_name("lite_expand.c"))
# -mprefer-vector-width=512: GCC's -march=native stops at 256-bit vectors on AVX-512 CPUs; the
# per-pixel loops run 5-10% faster with 512 (AMX Xeon, 2026-12-02). Ignored without AVX-512.
CFLAGS = ("-O3", "-march=native", "-mprefer-vector-width=512", "-fno-math-errno", "-fno-trapping-math",
          "-fPIC", "-shared", "-fopenmp")


def cflags() -> tuple[str, ...]:
    """CFLAGS, with ``-march=$DIDTV_NATIVE_MARCH`` instead of ``-march=native`` when that is set
    (``didtv bench --cpu-isa avx2`` sets ``x86-64-v3``: an AVX2 CPU's build on a bigger one)."""
    march = os.environ.get("DIDTV_NATIVE_MARCH", "").strip()
    if not march:
        return CFLAGS
    return tuple(f"-march={march}" if f == "-march=native" else f for f in CFLAGS if f != "-mprefer-vector-width=512")


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
    root = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(root):  # the XDG spec: a relative path is invalid and ignored
        root = str(Path.home() / ".cache")
    return Path(root) / "didtv" / "native"


def _compiler_identity(cc: str) -> str:
    """The compiler's resolved path and version line: an upgraded compiler builds anew."""
    try:
        proc = subprocess.run([cc, "--version"], capture_output=True, text=True, timeout=30)
        version = proc.stdout.partition("\n")[0]
    except (OSError, subprocess.SubprocessError):
        version = ""
    return f"{os.path.realpath(cc)} {version}"


def _build(cc: str, flags: tuple[str, ...], dir_fd: int, directory: str) -> bytes:
    """Compile into ``directory`` (a private directory, also open as ``dir_fd``) and return the
    library's bytes, read back through the checked directory."""
    name = "compiler-output.so"
    proc = subprocess.run([cc, *flags, *map(str, SOURCES), "-o", os.path.join(directory, name), "-lm"],
                          capture_output=True, text=True, timeout=120)
    if proc.returncode:
        raise RuntimeError(proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else f"{cc} failed")
    return cache.read_checked(dir_fd, name)


def deform_kernel():
    """The loaded ``didtv_deform_columns`` function, or ``None`` when it cannot be had."""
    lib = _library()
    return None if lib is None else lib.didtv_deform_columns


def pack_kernel():
    """The loaded ``didtv_pack_groups`` function (the sampling's input layout), or ``None``."""
    lib = _library()
    return None if lib is None else lib.didtv_pack_groups


def lite_expand_kernel():
    """The loaded ``didtv_lite_expand`` function (DIDNet Lite's full-size pass), or ``None``."""
    lib = _library()
    return None if lib is None else lib.didtv_lite_expand


def lite_input_kernel():
    """The loaded ``didtv_lite_unshuffle_conv`` function (DIDNet Lite's input layer), or ``None``."""
    lib = _library()
    return None if lib is None else lib.didtv_lite_unshuffle_conv


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
    try:
        lib = _load_or_build(cc, cflags())
    except OSError as exc:
        log.info("native deformable sampling unavailable: %s", exc)
        return None
    except (RuntimeError, subprocess.SubprocessError) as exc:
        log.info("building the native deformable sampling failed: %s", exc)
        return None
    i64, ptr = ctypes.c_int64, ctypes.c_void_p
    lib.didtv_deform_columns.argtypes = [ptr, ptr, ctypes.c_int, ptr, ctypes.c_int, ctypes.c_int,
                                         ctypes.c_float, ctypes.c_float, ptr, ptr, ptr, ctypes.c_int,
                                         *([i64] * 18), ctypes.c_int]
    lib.didtv_deform_columns.restype = ctypes.c_int
    lib.didtv_pack_groups.argtypes = [ptr, ptr, *([i64] * 6), ctypes.c_int]
    lib.didtv_pack_groups.restype = None
    lib.didtv_lite_expand.argtypes = [ptr, ptr, ptr, ptr, ptr, ptr, ptr, ctypes.c_int, ptr, ctypes.c_float,
                                      ptr, i64, i64, i64, ctypes.c_int, ctypes.c_int]
    lib.didtv_lite_expand.restype = ctypes.c_int
    lib.didtv_lite_unshuffle_conv.argtypes = [ptr, ptr, i64, i64, i64, i64, ctypes.c_int, ptr, ptr, i64,
                                              ctypes.c_float, ptr, ctypes.c_int]
    lib.didtv_lite_unshuffle_conv.restype = ctypes.c_int
    return lib


def build_key(cc: str, flags: tuple[str, ...]) -> str:
    """What a build depends on, hashed: the source, the compiler (resolved path and version), the
    flags and this CPU (``-march=native``). The library's file name (``deform_sample-KEY.so``)."""
    return hashlib.sha256(
        "\0".join([*(src.read_text() for src in SOURCES), _compiler_identity(cc), *flags, platform.machine(), _cpu_flags()]).encode()
    ).hexdigest()[:32]


def _load_or_build(cc: str, flags: tuple[str, ...]) -> ctypes.CDLL:
    """The library for ``build_key(cc, flags)``: from the user's cache when it is safe and holds a verified copy,
    else built in a fresh private directory (removed once loaded) and stored in the cache for the
    next process. A cache that is not safe (:mod:`.cache`) is refused with a warning; one that
    cannot be created or written is skipped; either way this process builds its own."""
    key = build_key(cc, flags)
    name = f"deform_sample-{key}.so"
    directory = cache_dir()
    cache_fd = None
    try:
        cache_fd = cache.open_private_dir(directory)
    except cache.UnsafeCacheError as exc:
        log.warning("not using the native kernel cache (%s); building a private copy. Remove the "
                    "directory or make it yours with mode 0700 to cache the build again", exc)
    except OSError as exc:
        log.info("native kernel cache %s unavailable (%s); building a private copy", directory, exc)
    try:
        if cache_fd is not None:
            path = cache.verified(cache_fd, name, key)
            if path is not None:
                try:
                    return ctypes.CDLL(path)
                except OSError as exc:  # e.g. a cache on a noexec mount
                    log.info("cannot load the native kernel from %s: %s", directory, exc)
        with tempfile.TemporaryDirectory(prefix="didtv-native-") as private:
            private_fd = cache.open_private_dir(Path(private))
            try:
                data = _build(cc, flags, private_fd, private)
                cache.store(private_fd, name, key, data)
                path = cache.verified(private_fd, name, key)
                if path is None:  # cannot happen short of root interfering
                    raise cache.UnsafeCacheError(f"the library just built in {private} failed its check")
                lib = ctypes.CDLL(path)
            finally:
                os.close(private_fd)
        if cache_fd is not None:
            try:
                cache.store(cache_fd, name, key, data)
            except OSError as exc:
                log.info("could not cache the native kernel in %s: %s", directory, exc)
        return lib
    finally:
        if cache_fd is not None:
            os.close(cache_fd)
