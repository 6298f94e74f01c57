"""Commands that need an optional extra check it first and name it in one line (didtv/extras.py)."""

from __future__ import annotations

import sys

import pytest
from click.testing import CliRunner

from didtv.cli.main import cli
from didtv.extras import COMMAND_EXTRAS, EXTRAS, MissingExtraError, require


def _run(*args):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


@pytest.mark.parametrize("command, args, extra, module", [
    ("eval", ["-m", "bt2408", "--clip", __file__], "eval", "piq"),
    ("data build", [__file__, "-o", "unused"], "train", "OpenEXR"),
    ("preview", [__file__, "-o", "unused"], "preview", "matplotlib"),
])
def test_a_missing_extra_is_one_line_naming_it(monkeypatch, tmp_path, command, args, extra, module):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, module, None)  # as if not installed: find_spec says None
    res = _run(*command.split(), *args)
    assert res.exit_code == 1
    assert res.output.strip().splitlines() == [
        f"didtv: error: didtv {command} needs the optional '{extra}' dependencies (missing: {module}): "
        f"pip install 'didtv[{extra}]'"]
    assert not (tmp_path / "unused").exists()  # the command itself never ran


def test_every_checked_command_exists_and_help_needs_no_extra(monkeypatch):
    for module in (m for names in EXTRAS.values() for m in names):
        monkeypatch.setitem(sys.modules, module, None)
    for path, extra in COMMAND_EXTRAS.items():
        assert extra in EXTRAS
        res = _run(*path.split(), "--help")
        assert res.exit_code == 0 and "Example" in res.output, path


def test_require_passes_when_installed_and_lists_every_missing_module(monkeypatch):
    for extra in EXTRAS:
        require(extra, "x")  # the test environment installs every extra (Makefile)
    monkeypatch.setitem(sys.modules, "piq", None)
    monkeypatch.setitem(sys.modules, "torchvision", None)
    with pytest.raises(MissingExtraError, match=r"missing: piq, torchvision\): pip install 'didtv\[eval\]'"):
        require("eval", "eval")
