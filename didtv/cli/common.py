"""Shared by every command module: turning DidtvError into one line and an exit code."""

from __future__ import annotations

import functools
import sys

import click

from didtv.errors import DidtvError


def handle_errors(func):
    """Decorator for command callbacks: DidtvError -> one-line message, its exit code."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except DidtvError as exc:
            msg = f"didtv: error: {exc}"
            if exc.hint:
                msg += f"\n  hint: {exc.hint}"
            click.echo(msg, err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("didtv: interrupted", err=True)
            sys.exit(130)

    return wrapper
