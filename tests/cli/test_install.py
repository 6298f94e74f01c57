"""The package as a user gets it: sdist -> wheel -> a fresh venv -> convert, outside the checkout.

The fresh venv holds only the wheel. torch and the other core dependencies come from this test
environment's site-packages through a ``.pth`` path line (nothing is downloaded; a path line
does not run that folder's own ``.pth`` files, so the checkout's editable install stays out),
and a second ``.pth`` makes the optional extras' modules unimportable: the converter must not
need them. Fails when the presets (or the sample, or the weights) are missing from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

import pytest

from clips import requires_ffmpeg
from didtv.extras import EXTRAS

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 600


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    res = subprocess.run([str(a) for a in argv], capture_output=True, text=True, timeout=TIMEOUT, **kwargs)
    assert res.returncode == 0, f"{' '.join(map(str, argv))} failed:\n{res.stdout}\n{res.stderr}"
    return res


def _base_python() -> str:
    """The interpreter this environment's venv was made from (a venv cannot nest)."""
    base = getattr(sys, "_base_executable", None)
    return base if base and os.path.exists(base) else sys.executable


@pytest.mark.slow
@requires_ffmpeg
def test_wheel_from_the_sdist_converts_outside_the_checkout(tmp_path):
    pytest.importorskip("setuptools")
    dist, venv, work = tmp_path / "dist", tmp_path / "venv", tmp_path / "elsewhere"
    work.mkdir()
    _run([sys.executable, "-c", "import sys; from setuptools import build_meta as b; b.build_sdist(sys.argv[1])",
          dist], cwd=ROOT)
    (sdist,) = dist.glob("didtv-*.tar.gz")
    _run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", dist, sdist], cwd=tmp_path)
    (wheel,) = dist.glob("didtv-*.whl")
    _run([_base_python(), "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    _run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps", "--no-index", wheel])

    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip())
    (site / "_reuse_test_env.pth").write_text(sysconfig.get_paths()["purelib"] + "\n", encoding="utf-8")
    blocked = sorted(name for names in EXTRAS.values() for name in names)
    (site / "_no_extras.pth").write_text(f"import sys; sys.modules.update(dict.fromkeys({blocked!r}))\n",
                                         encoding="utf-8")

    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    env["PYTHONNOUSERSITE"] = "1"
    didtv = venv / "bin" / "didtv"
    where = _run([python, "-c", "import didtv; print(didtv.__file__)"], cwd=work, env=env).stdout.strip()
    assert Path(where).is_relative_to(site), where  # the wheel's copy, not the checkout
    folder = Path(_run([didtv, "presets", "--path"], cwd=work, env=env).stdout.strip())
    assert folder.is_relative_to(site) and (folder / "hdr10-1000.toml").is_file()

    sample = site / "didtv" / "samples" / "bikes-sample.mp4"
    _run([didtv, "convert", sample, "out.mkv", "--model", "bt2408"], cwd=work, env=env)
    probe = json.loads(_run([didtv, "probe", "out.mkv", "--json"], cwd=work, env=env).stdout)
    assert probe["hdr"]["format"] == "HDR10" and probe["video"]["bit_depth"] == 10
    # A command that needs an extra says which, in one line.
    res = subprocess.run([didtv, "eval", "-m", "bt2408", "--clip", "out.mkv"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=TIMEOUT)
    assert res.returncode == 1 and res.stderr.strip().splitlines() == [
        "didtv: error: didtv eval needs the optional 'eval' dependencies (missing: piq, torchvision): "
        "pip install 'didtv[eval]'"]


def _distributions_providing(module: str) -> set[str]:
    """Names of the installed distributions with a top-level ``module`` (a package or a file,
    extension modules included, which importlib.metadata.packages_distributions misses on 3.11)."""
    import inspect
    from importlib.metadata import distributions

    found = set()
    for dist in distributions():
        for file in dist.files or ():
            top = file.parts[0] if len(file.parts) > 1 else inspect.getmodulename(file.parts[0])
            if top == module:
                found.add(dist.metadata["Name"].lower())
                break
    return found


def test_the_converter_needs_no_extra():
    """pyproject: the core dependencies hold none of the extras' distributions, and each extra
    lists the distributions of the modules :data:`didtv.extras.EXTRAS` checks for."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]

    def names(requirements):
        return {re.match(r"[A-Za-z0-9._-]+", r).group().lower() for r in requirements}

    core, optional = names(project["dependencies"]), project["optional-dependencies"]
    for extra, modules in EXTRAS.items():
        declared = names(optional[extra])
        assert not declared & core, extra
        for module in modules:
            provided = _distributions_providing(module)
            assert provided & declared, f"{module} comes from {provided or 'nothing installed'}, " \
                                        f"not from the '{extra}' extra's {sorted(declared)}"
