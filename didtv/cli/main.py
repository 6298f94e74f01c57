"""The ``didtv`` command: a click group. Each command lives in its own module of this package.

The CLI is thin: it parses flags, calls the library, renders progress and tables with rich, and
turns :class:`didtv.errors.DidtvError` into one line (plus a hint) and a non-zero exit code.
"""

from __future__ import annotations

import functools
import logging
import os

import click

from didtv import __version__
from didtv.cli.common import handle_errors  # also re-exported for command modules
from didtv.extras import COMMAND_EXTRAS, require


class _EchoHandler(logging.Handler):
    """Writes log records with ``click.echo(err=True)``, looking ``sys.stderr`` up at each call,
    so lines land above a live rich progress bar (which redirects stderr) and inside CliRunner."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            click.echo(f"didtv: {self.format(record)}", err=True)
        except Exception:  # pragma: no cover  (logging must never break the command)
            self.handleError(record)


def configure_logging(verbose: bool) -> None:
    """Show the library's DEBUG records (every FFmpeg / mkvtoolnix command line) when
    ``verbose``; otherwise only warnings. Idempotent: safe to call on every invocation."""
    logger = logging.getLogger("didtv")
    for handler in [h for h in logger.handlers if isinstance(h, _EchoHandler)]:
        logger.removeHandler(handler)
    handler = _EchoHandler(logging.DEBUG if verbose else logging.WARNING)
    handler.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG if verbose else logging.WARNING)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="didtv")
@click.option("--verbose", "-v", is_flag=True, help="Show every FFmpeg/mkvtoolnix command run (for any command).")
def cli(verbose: bool) -> None:
    """didtv: turn 8-bit SDR video into HDR10 (10-bit BT.2020 PQ HEVC with HDR10 metadata).

    \b
    Example:
      didtv convert holiday.mp4 holiday-hdr.mkv --model bt2408
      didtv probe holiday-hdr.mkv
      didtv presets
      didtv preview holiday.mp4 -o preview/
    """
    os.environ.setdefault("COLOUR_SCIENCE__FILTER_USAGE_WARNINGS", "True")
    configure_logging(verbose)


def _add_commands() -> None:
    # Imported here so `didtv --help` stays fast and each command module stays independent.
    from didtv.cli import bench, convert, demo, models, presets, preview, probe

    for module in (bench, convert, demo, models, presets, preview, probe):
        cli.add_command(module.command)
    from didtv.cli import train

    for command in (train.data_group, train.train_command, train.eval_command):
        cli.add_command(command)
    for path, extra in COMMAND_EXTRAS.items():
        _needs_extra(path, extra)


def _needs_extra(path: str, extra: str) -> None:
    """Make the command ``path`` ("data build") check its optional dependencies first."""
    command = cli
    for name in path.split():
        command = command.commands[name]
    run = command.callback

    @functools.wraps(run)
    def checked(*args, **kwargs):
        require(extra, path)
        return run(*args, **kwargs)

    command.callback = handle_errors(checked)


_add_commands()


def main() -> None:
    cli(prog_name="didtv")


if __name__ == "__main__":  # pragma: no cover
    main()
