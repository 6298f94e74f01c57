"""The ``didtv`` command: a click group. Each command lives in its own module of this package.

The CLI is thin: it parses flags, calls the library, renders progress and tables with rich, and
turns :class:`didtv.errors.DidtvError` into one line (plus a hint) and a non-zero exit code.
"""

from __future__ import annotations

import os

import click

from didtv import __version__
from didtv.cli.common import handle_errors  # noqa: F401  (re-exported for command modules)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="didtv")
def cli() -> None:
    """didtv: turn 8-bit SDR video into HDR10 (10-bit BT.2020 PQ HEVC with HDR10 metadata).

    \b
    Example:
      didtv convert holiday.mp4 holiday-hdr.mkv --model bt2408
      didtv probe holiday-hdr.mkv
    """
    os.environ.setdefault("COLOUR_SCIENCE__FILTER_USAGE_WARNINGS", "True")


def _add_commands() -> None:
    # Imported here so `didtv --help` stays fast and each command module stays independent.
    from didtv.cli import convert, demo, models, probe

    for module in (convert, demo, models, probe):
        cli.add_command(module.command)


_add_commands()


def main() -> None:
    cli(prog_name="didtv")


if __name__ == "__main__":  # pragma: no cover
    main()
