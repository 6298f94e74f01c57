"""``didtv presets [--json | --path]``: the shipped presets (``didtv/presets/*.toml``), one line
each, or the folder they are in."""

from __future__ import annotations

import json

import click

from didtv.cli.common import handle_errors

JSON_SCHEMA_VERSION = 1


def collect() -> list[dict]:
    """One record per preset file, sorted by name: :meth:`didtv.presets.Preset.to_json`, or
    ``{"name", "path", "error"}`` for a file that does not load (listed, never fatal)."""
    from didtv.presets import PresetError, load_preset, preset_paths

    rows = []
    for name, path in sorted(preset_paths().items()):
        try:
            rows.append({**load_preset(path).to_json(), "error": None})
        except PresetError as exc:
            rows.append({"name": name, "path": str(path), "error": str(exc)})
    return rows


def _render(rows: list[dict]) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from didtv.presets import DEFAULT_PRESET, load_preset

    table = Table(title="didtv presets", title_justify="left",
                  caption=f"* default ({DEFAULT_PRESET}). Use: didtv convert IN OUT --preset NAME (or a .toml "
                          "file); flags such as --crf override the preset",
                  caption_justify="left")
    for name, kw in (("name", {"style": "bold cyan", "no_wrap": True}), ("description", {"ratio": 2}),
                     ("model", {"no_wrap": True}), ("encoder", {"ratio": 1}), ("mastering", {"ratio": 1})):
        table.add_column(name, **kw)
    for r in rows:
        label = escape(r["name"]) + (" *" if r["name"] == DEFAULT_PRESET else "")
        if r["error"]:
            table.add_row(label, f"[red]cannot load: {escape(r['error'])}[/]", "", "", "")
            continue
        preset = load_preset(r["path"])
        table.add_row(label, escape(r["description"]), escape(r["model"]),
                      escape(preset.summary_encoder()), escape(preset.summary_mastering()))
    Console().print(table)


@click.command("presets")
@click.option("--json", "as_json", is_flag=True,
              help="Print the presets as JSON (schema_version 1: every field of every preset).")
@click.option("--path", "as_path", is_flag=True,
              help="Print the folder the shipped presets are in (copy one from there to make your own).")
@handle_errors
def command(as_json: bool, as_path: bool) -> None:
    """List the conversion presets: name, description, model, encoder and mastering display.

    Presets are TOML files shipped inside the package (--path prints where;
    docs/user-guide.md#presets lists every key); pass a name, or the path of your own copy,
    to 'didtv convert --preset'.

    \b
    Examples:
      didtv presets
      didtv presets --json
      cp "$(didtv presets --path)/streaming.toml" mine.toml
      didtv convert holiday.mp4 holiday-hdr.mkv --preset mine.toml
    """
    if as_path:
        from didtv.presets import PRESET_DIRS

        if as_json:
            raise click.UsageError("--path and --json exclude each other")
        click.echo(str(PRESET_DIRS[0]))
        return
    rows = collect()
    if as_json:
        click.echo(json.dumps({"schema_version": JSON_SCHEMA_VERSION, "presets": rows}, indent=2,
                              sort_keys=True))
        return
    _render(rows)
