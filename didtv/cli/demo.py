"""``didtv demo``: convert the bundled sample clip with the default model and show the result."""

from __future__ import annotations

from pathlib import Path

import click

from didtv.cli.common import handle_errors

SAMPLE = Path(__file__).resolve().parent.parent / "samples" / "bikes-sample.mp4"


@click.command("demo")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path),
              default=Path("out/demo-hdr10.mkv"), show_default=True, help="Where to write the HDR10 file.")
@click.option("--model", "-m", default=None, help="Model to use (default: the best available).")
@handle_errors
def command(output: Path, model: str | None) -> None:
    """Convert the bundled sample clip (didtv/samples/) to HDR10 and print its probe summary.

    \b
    Example:
      didtv demo -o /tmp/demo.mkv
    """
    from didtv.api import convert
    from didtv.cli.convert import _progress_renderer
    from didtv.cli.probe import render_info
    from didtv.io.probe import probe

    output.parent.mkdir(parents=True, exist_ok=True)
    ctx, callback = _progress_renderer(False)
    with ctx:
        result = convert(SAMPLE, output, model=model, overwrite=True, on_progress=callback)
    click.echo(f"wrote {result.output.resolve()} ({result.frames} frames, model {result.model} ({result.model_reason}), "
               f"MaxCLL {result.light.max_cll} cd/m2, MaxFALL {result.light.max_fall} cd/m2)")
    render_info(probe(output))
