"""The native kernel's cache loads nothing anyone else could have written (didtv/models/native/cache.py).

Each test plants a library of its own (it exports ``didtv_planted``) where the real kernel would be
found, and checks which of the two gets loaded. Every test uses a build key of its own (an extra
``-D`` flag), so the dynamic loader, which hands back an already loaded library by its path, never
answers one test with another's library.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import subprocess
import tempfile
import uuid

import pytest

from didtv.models import native

HAS_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None
pytestmark = pytest.mark.skipif(not HAS_CC, reason="no C compiler (cc/gcc): the native kernel cannot be built")
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="chown to another user needs root")
OTHER_UID = 4242

PLANTED_C = """
int didtv_planted(void) { return 42; }
int didtv_deform_columns(void) { return 0; }
void didtv_pack_groups(void) {}
int didtv_lite_expand(void) { return 0; }
int didtv_lite_unshuffle_conv(void) { return 0; }
"""


@pytest.fixture(scope="module")
def planted_bytes(tmp_path_factory):
    d = tmp_path_factory.mktemp("planted")
    (d / "planted.c").write_text(PLANTED_C)
    subprocess.run([native._compiler(), "-shared", "-fPIC", str(d / "planted.c"), "-o", str(d / "planted.so")],
                   check=True, timeout=60)
    return (d / "planted.so").read_bytes()


@pytest.fixture
def kernel(monkeypatch, tmp_path):
    """``(cache directory, library file name)`` for a build key no other test uses; the private
    build directories go to ``tmp_path / "tmp"`` (checked to be left empty)."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(native, "CFLAGS", native.CFLAGS + (f"-DDIDTV_TEST_BUILD=0x{uuid.uuid4().hex[:12]}",))
    private = tmp_path / "tmp"
    private.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(private))
    native.forget()
    name = f"deform_sample-{native.build_key(native._compiler(), native.CFLAGS)}.so"
    yield native.cache_dir(), name
    native.forget()
    assert not list(private.iterdir())  # each private build directory removed once loaded


def _plant(directory, name, data, *, record=None):
    """Write ``data`` as library ``name`` with a sidecar that matches it (or holds ``record``):
    what anyone able to write ``directory`` could do."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / name).write_bytes(data)
    key = name.removeprefix("deform_sample-").removesuffix(".so")
    (directory / f"{name}.sha256").write_text(record or f"{hashlib.sha256(data).hexdigest()} {key}\n")


def _planted_loaded() -> bool:
    lib = native._library()
    assert lib is not None
    return hasattr(lib, "didtv_planted")


def _is_verified_build(directory, name) -> bool:
    data = (directory / name).read_bytes()
    return (directory / f"{name}.sha256").read_text().split()[0] == hashlib.sha256(data).hexdigest()


def test_the_cache_is_created_private_and_its_library_recorded(kernel):
    directory, name = kernel
    assert native.deform_kernel() is not None
    for d in (directory, directory.parent, directory.parent.parent):  # .../cache/didtv/native
        st = d.stat()
        assert (st.st_mode & 0o777, st.st_uid) == (0o700, os.geteuid()), d
    assert sorted(p.name for p in directory.iterdir()) == [name, f"{name}.sha256"]
    assert (directory / name).stat().st_mode & 0o777 == 0o600
    assert _is_verified_build(directory, name)


def test_a_planted_library_with_its_hash_in_a_private_cache_is_what_loads(kernel, planted_bytes):
    """The control for the tests below: the plant works, so when they see the real kernel, it is
    the check that refused the plant."""
    directory, name = kernel
    directory.mkdir(parents=True, mode=0o700)
    _plant(directory, name, planted_bytes)
    assert _planted_loaded()


def test_a_tampered_library_is_rebuilt(kernel, planted_bytes):
    directory, name = kernel
    assert native.deform_kernel() is not None
    real = (directory / name).read_bytes()
    (directory / name).write_bytes(planted_bytes)  # the recorded hash is still the real build's
    native.forget()
    assert not _planted_loaded()
    assert (directory / name).read_bytes() != planted_bytes and _is_verified_build(directory, name)
    assert len((directory / name).read_bytes()) == len(real)


@pytest.mark.parametrize("tamper", [
    pytest.param("other-owner", marks=needs_root), "group-writable", "symlink", "no-sidecar", "wrong-key"])
def test_a_library_that_fails_a_check_is_replaced(kernel, planted_bytes, tmp_path, tamper):
    directory, name = kernel
    directory.mkdir(parents=True, mode=0o700)
    lib = directory / name
    if tamper == "symlink":
        (tmp_path / "elsewhere.so").write_bytes(planted_bytes)
        _plant(directory, name, planted_bytes)
        lib.unlink()
        lib.symlink_to(tmp_path / "elsewhere.so")
    elif tamper == "wrong-key":  # a real-looking record of another build
        _plant(directory, name, planted_bytes, record=f"{hashlib.sha256(planted_bytes).hexdigest()} {'0' * 32}\n")
    else:
        _plant(directory, name, planted_bytes)
    if tamper == "other-owner":
        os.chown(lib, OTHER_UID, -1)
    elif tamper == "group-writable":
        lib.chmod(0o620)
    elif tamper == "no-sidecar":
        (directory / f"{name}.sha256").unlink()
    assert not _planted_loaded()
    assert not lib.is_symlink() and _is_verified_build(directory, name)


@pytest.mark.parametrize("unsafe", [pytest.param("other-owner", marks=needs_root), "group-writable",
                                    "world-writable", "symlink"])
def test_an_unsafe_cache_directory_is_refused_and_left_alone(kernel, planted_bytes, tmp_path, caplog, unsafe):
    directory, name = kernel
    target = tmp_path / "elsewhere" if unsafe == "symlink" else directory
    target.mkdir(parents=True, mode=0o700)
    _plant(target, name, planted_bytes)
    if unsafe == "other-owner":
        for p in (target, *target.iterdir()):
            os.chown(p, OTHER_UID, -1)
    elif unsafe == "symlink":
        directory.parent.mkdir(parents=True)
        directory.symlink_to(target)
    else:
        target.chmod(0o770 if unsafe == "group-writable" else 0o777)
    before = {p.name: p.read_bytes() for p in target.iterdir()}
    with caplog.at_level(logging.INFO, logger="didtv.models.native"):
        assert not _planted_loaded()  # built privately instead
    assert {p.name: p.read_bytes() for p in target.iterdir()} == before  # nothing written there
    assert "native kernel cache" in caplog.text


def test_a_cache_that_cannot_be_created_means_a_private_build_each_time(kernel, tmp_path):
    directory, name = kernel
    blocker = tmp_path / "cache"
    blocker.write_text("a file where the cache folder would go")
    assert native.deform_kernel() is not None
    predictable = os.path.join(tempfile.gettempdir(), f"didtv-native-{os.getuid()}")
    assert not os.path.exists(predictable)
    assert not directory.exists()
