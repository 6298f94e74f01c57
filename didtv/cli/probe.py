"""``didtv probe FILE [--json]``: what didtv sees in a video (size, rate, colour tags, HDR)."""

from __future__ import annotations

import json

import click

from didtv.cli.common import handle_errors


def _fps(fps, avg, variable: bool) -> str:
    text = f"{fps.numerator}/{fps.denominator} ({float(fps):.3f} fps)"
    if avg is not None and avg != fps:
        text += f", average {avg.numerator}/{avg.denominator} ({float(avg):.3f})"
    if variable:
        text += "  [bold yellow]variable[/]"
    return text


def _or_dash(value) -> str:
    return "-" if value is None or value == "" else str(value)


def _info_table(info):
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(info.path), show_header=False, title_justify="left", box=None,
                  pad_edge=False)
    table.add_column("field", style="bold cyan", no_wrap=True)
    table.add_column("value")

    def row(name: str, value, markup: bool = False) -> None:
        table.add_row(name, value if markup else escape(_or_dash(value)))

    row("container", info.container)
    row("duration", None if info.duration is None else f"{info.duration:.3f} s")
    if info.still_image:
        row("still image", "yes (no duration; the frame rate is FFmpeg's default)")
    row("video stream", f"#{info.index}")
    row("codec", info.codec if info.profile is None else f"{info.codec} ({info.profile})")
    size = f"{info.width}x{info.height}"
    if (info.display_width, info.display_height) != (info.width, info.height):
        size += f" stored, {info.display_width}x{info.display_height} displayed"
    row("size", size)
    row("frame rate", _fps(info.fps, info.avg_fps, info.variable_fps), markup=True)
    row("frames", "unknown (run a full count)" if info.frame_count is None else info.frame_count)
    row("bit depth", info.bit_depth)
    row("pixel format", info.pix_fmt)
    row("range", {"tv": "tv (limited)", "pc": "pc (full)"}.get(info.color_range or "", info.color_range))
    row("matrix", info.matrix)
    row("transfer", info.transfer)
    row("primaries", info.primaries)
    row("chroma location", info.chroma_location)
    row("field order", info.field_order)
    row("rotation", f"{info.rotation} degrees clockwise" if info.rotation else "none")
    style = "bold magenta" if info.is_hdr else "green"
    table.add_row("HDR format", f"[{style}]{escape(info.hdr.value)}[/]")
    md = info.mastering_display
    if md is not None:
        def xy(p):
            return f"({p[0]:.4f}, {p[1]:.4f})"

        row("mastering display",
            f"R{xy(md.red)} G{xy(md.green)} B{xy(md.blue)} WP{xy(md.white)}, "
            f"{md.max_luminance:g} / {md.min_luminance:g} cd/m2")
    else:
        row("mastering display", None)
    cl = info.content_light
    row("MaxCLL / MaxFALL", None if cl is None else f"{cl.max_cll} / {cl.max_fall} cd/m2")
    row("HDR10+", "yes (SMPTE 2094-40 dynamic metadata)" if info.hdr10plus else "no")
    dv = info.dolby_vision
    if dv is None:
        row("Dolby Vision", "no")
    else:
        parts = [f"profile {_or_dash(dv.get('profile'))}", f"level {_or_dash(dv.get('level'))}",
                 f"compatibility id {_or_dash(dv.get('compatibility_id'))}"]
        layers = [name for key, name in (("rpu_present", "RPU"), ("el_present", "EL"), ("bl_present", "BL"))
                  if dv.get(key)]
        if layers:
            parts.append("+".join(layers))
        row("Dolby Vision", ", ".join(parts))
    return table


def _streams_table(info):
    from rich.markup import escape
    from rich.table import Table

    streams = info.audio + info.subtitles + info.other
    if not streams:
        return None
    table = Table(title="other streams", title_justify="left")
    for name in ("#", "kind", "codec", "language", "title", "details"):
        table.add_column(name)
    for s in streams:
        details = ""
        if s.kind == "audio" and s.channels:
            details = f"{s.channels} channel{'s' if s.channels != 1 else ''}"
        elif s.kind == "subtitle":
            details = "bitmap" if s.bitmap else "text"
        table.add_row(str(s.index), s.kind, escape(s.codec), escape(_or_dash(s.language)),
                      escape(_or_dash(s.title)), details)
    return table


@click.command("probe")
@click.argument("file", type=click.Path(dir_okay=False, path_type=str))
@click.option("--json", "as_json", is_flag=True,
              help="Print the probe result as JSON (schema_version 1, see docs/probe.md) and nothing else.")
@handle_errors
def command(file: str, as_json: bool) -> None:
    """Show what didtv sees in FILE: size, exact frame rate, colour tags and HDR format.

    HDR format is one of SDR, HDR10, PQ10, HLG, HDR10+ or Dolby Vision, with the mastering
    display and MaxCLL/MaxFALL when present.

    \b
    Examples:
      didtv probe holiday.mp4
      didtv probe --json holiday-hdr.mkv > info.json
    """
    from didtv.io.probe import probe

    info = probe(file)
    if as_json:
        click.echo(json.dumps(info.to_json(), indent=2))
        return
    render_info(info)


def render_info(info) -> None:
    """Print the probe tables (video/HDR, then other streams) to the terminal."""
    from rich.console import Console

    console = Console()
    console.print(_info_table(info))
    streams = _streams_table(info)
    if streams is not None:
        console.print()
        console.print(streams)
