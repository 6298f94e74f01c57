"""A private, verified store for the native kernels' shared objects.

Loading a shared object runs its code, so a library is only ever loaded from a directory that
nobody but this user (and root) can write, and only when its bytes match the hash recorded when
it was built:

* the directory is created mode 0700 and, before anything in it is read, opened without
  following a symlink and checked: owned by the effective user, not writable by group or others.
  A directory that fails is refused (:class:`UnsafeCacheError`), never repaired or shared;
* every file is then opened relative to that directory's descriptor (``openat``, no symlinks),
  so renaming a folder above it cannot swap what is read, and must be a regular file owned by
  the user and not writable by group or others;
* a library ``NAME`` is written with a sidecar ``NAME.sha256`` (mode 0600) holding its SHA-256
  and its build key; :func:`verified` hashes the library and compares before it hands out a path,
  and removes a library that does not match, so the caller builds it again;
* the path handed to ``dlopen`` goes through ``/proc/self/fd/<directory descriptor>``, the
  directory that was checked, not through its name. (``dlopen`` hands back a library already
  loaded under the same path string; names carry the build key, so that is the same build.)

Linux only (``/proc/self/fd``), as the kernels are.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import stat
from pathlib import Path

_OPEN_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_NOT_OURS_TO_WRITE = stat.S_IWGRP | stat.S_IWOTH


class UnsafeCacheError(OSError):
    """A cache directory (or file) that someone other than this user could have written."""


def _check_owner_and_mode(st: os.stat_result, what: str) -> None:
    if st.st_uid != os.geteuid():
        raise UnsafeCacheError(f"{what} is owned by uid {st.st_uid}, not {os.geteuid()}")
    if st.st_mode & _NOT_OURS_TO_WRITE:
        raise UnsafeCacheError(f"{what} is writable by group or others (mode {stat.S_IMODE(st.st_mode):o})")


def open_private_dir(path: Path) -> int:
    """A descriptor of directory ``path``, created mode 0700 if missing (parents too), after
    checking that it is this user's and nobody else can write it. Raises
    :class:`UnsafeCacheError` when it is not, ``OSError`` when it cannot be created or opened
    (including when ``path`` itself is a symlink). The caller closes the descriptor."""
    path = Path(os.path.abspath(path))
    missing = [p for p in (path, *path.parents) if not os.path.lexists(p)]
    for new in reversed(missing):  # os.makedirs would give only the leaf its mode
        try:
            os.mkdir(new, 0o700)
        except FileExistsError:
            pass
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        _check_owner_and_mode(os.fstat(fd), f"directory {path}")
    except OSError:
        os.close(fd)
        raise
    return fd


def read_checked(dir_fd: int, name: str) -> bytes:
    fd = os.open(name, _OPEN_FILE, dir_fd=dir_fd)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise UnsafeCacheError(f"{name} is not a regular file")
        _check_owner_and_mode(st, name)
        with os.fdopen(os.dup(fd), "rb") as f:
            return f.read()
    finally:
        os.close(fd)


def _sidecar(name: str) -> str:
    return name + ".sha256"


def _record(data: bytes, key: str) -> bytes:
    return f"{hashlib.sha256(data).hexdigest()} {key}\n".encode()


def verified(dir_fd: int, name: str, key: str) -> str | None:
    """The path to ``dlopen`` library ``name`` of directory ``dir_fd`` by, or ``None`` when it is
    missing or fails a check (owner, mode, not a regular file, no sidecar, hash or key differs);
    a library that is there but fails is removed, with its sidecar, so it is built again."""
    try:
        data = read_checked(dir_fd, name)
    except FileNotFoundError:
        return None
    except OSError:  # a symlink (ELOOP), someone else's file, a directory...
        _remove(dir_fd, name, _sidecar(name))
        return None
    try:
        recorded = read_checked(dir_fd, _sidecar(name))
    except OSError:
        recorded = b""
    if not hmac.compare_digest(recorded, _record(data, key)):
        _remove(dir_fd, name, _sidecar(name))
        return None
    return f"/proc/self/fd/{dir_fd}/{name}"


def store(dir_fd: int, name: str, key: str, data: bytes) -> None:
    """Write library ``name`` (mode 0600) and its sidecar into directory ``dir_fd``, each by
    rename from a new file, so a concurrent reader sees an old or a new file, never half of one.
    (A reader between the two renames may see a new library with an old sidecar: the check
    fails and it builds again.)"""
    _write_atomically(dir_fd, name, data)
    _write_atomically(dir_fd, _sidecar(name), _record(data, key))


def _write_atomically(dir_fd: int, name: str, data: bytes) -> None:
    tmp = f".{name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600, dir_fd=dir_fd)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.rename(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        _remove(dir_fd, tmp)
        raise


def _remove(dir_fd: int, *names: str) -> None:
    for name in names:
        try:
            os.unlink(name, dir_fd=dir_fd)
        except OSError:  # gone already, or a directory: store() cannot replace that either
            pass
