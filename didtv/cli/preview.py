"""``didtv preview IN -o DIR``: PNG pictures to judge a conversion on an ordinary screen."""

from __future__ import annotations

import click

from didtv.cli.common import handle_errors


@click.command("preview")
@click.argument("src", type=click.Path(dir_okay=False, path_type=str))
@click.option("--output", "-o", "out_dir", required=True, type=click.Path(file_okay=False, path_type=str),
              help="Folder for the PNGs and preview.json (created if missing; same-named files are replaced).")
@click.option("--model", "-m", default=None, help="Model name (see 'didtv models') or a .safetensors file. Default: the preset's.")
@click.option("--preset", "-p", default=None, help="Preset name or .toml file (tone targets, downscale). Default: hdr10-1000.")
@click.option("--frames", "-f", default=None, metavar="N,M,...",
              help="Frame numbers (from 0) to preview. Default: 3 spread over the clip.")
@click.option("--reference", "-r", default=None, type=click.Path(dir_okay=False, path_type=str),
              help="An HDR10/PQ video of the same frames: adds error maps, PSNR and ΔE_ITP.")
@click.option("--device", default=None, help="torch device: auto (default), cpu, cuda ...")
@click.option("--force", is_flag=True, help="Preview even if the input is already HDR.")
@click.option("--verbose", "-v", is_flag=True, help="Show every FFmpeg command line as it starts.")
@handle_errors
def command(src, out_dir, model, preset, frames, reference, device, force, verbose):
    """Write PNGs of chosen frames of SRC that a person can judge on an SDR screen: the SDR
    input, the HDR output tone-mapped for SDR viewing (not PQ shown as sRGB, which looks dim),
    a false-colour luminance map in cd/m2 and a luminance histogram of input vs output.
    With --reference, also the reference, a ΔE_ITP error map and the metrics in preview.json.

    \b
    Examples:
      didtv preview holiday.mp4 -o preview/
      didtv preview holiday.mp4 -o preview/ --model bt2446a --frames 0,120,240
      didtv preview sdr.mp4 -o cmp/ --reference graded-hdr10.mkv
    The viewing tone map, the bands and the metrics: docs/user-guide.md
    """
    from didtv.preview import parse_frames, preview

    if verbose:
        from didtv.cli.main import configure_logging

        configure_logging(True)
    chosen = parse_frames(frames) if frames is not None else None

    def report(frame) -> None:
        line = f"frame {frame.index}: peak {frame.output['max_luminance']:.0f} cd/m2, " \
               f"mean {frame.output['mean_luminance']:.1f} cd/m2"
        if frame.metrics:
            psnr = frame.metrics["psnr_pq"]
            line += (", PSNR " + ("identical" if psnr is None else f"{psnr:.2f} dB")
                     + f", ΔE_ITP {frame.metrics['delta_e_itp_mean']:.2f}")
        click.echo(line)

    result = preview(src, out_dir, model=model, preset=preset, frames=chosen, reference=reference,
                     device=device, force=force, on_frame=report)
    click.echo(f"wrote {len(result.frames)} frame(s) of pictures ({result.width}x{result.height}, "
               f"model {result.model}) and {result.json_path}")
    if result.metrics:
        psnr = result.metrics["psnr_pq_mean"]
        click.echo("mean: PSNR " + ("identical" if psnr is None else f"{psnr:.2f} dB")
                   + f", ΔE_ITP {result.metrics['delta_e_itp_mean']:.2f}")
