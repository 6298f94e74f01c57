"""``didtv models [--json] [--flops]``: the registered models, their size and cost."""

from __future__ import annotations

import json

import click

from didtv.cli.common import handle_errors

#: Frame used to measure frame-wise models that do not count their own FLOPs.
_PROBE_EDGE = 64


def _gflops_1080p(info, model) -> float:
    """GFLOPs per 1920x1080 output frame.

    DIDNet and Lite count themselves analytically (their ``flops(h, w)``,
    :func:`didtv.models.didnet.flops_breakdown`). Other models are run once under
    ``torch.utils.flop_counter`` on a 64x64 window and scaled by area, which is exact for
    frame-wise maps without fixed costs (elementwise operations are not counted).
    """
    if hasattr(model, "flops"):
        return model.flops(1080, 1920)["total"] / 1e9
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    spec = model.spec
    edge = max(_PROBE_EDGE, spec.multiple_of)
    x = torch.rand(1, spec.window, 3, edge, edge)
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(x)
    return counter.get_total_flops() * (1920 * 1080) / (edge * edge) / 1e9


def collect() -> list[dict]:
    """One record per registered model, in registration order (the ``--json`` schema)."""
    from didtv.models.registry import build, registered

    rows = []
    for info in registered():
        model = build(info.arch, info.config)  # random weights: only the shape matters here
        params = sum(p.numel() for p in model.parameters()) if hasattr(model, "parameters") else 0
        rows.append(
            {
                "name": info.name,
                "kind": "learned" if info.learned else "analytic",
                "architecture": info.arch,
                "parameters": int(params),
                "window": model.spec.window,
                "multiple_of": model.spec.multiple_of,
                "gflops_1080p": round(_gflops_1080p(info, model), 3),
                "weights_present": info.weights_present() if info.learned else None,
                "weights_file": str(info.weights_path) if info.learned else None,
                "description": info.description or model.spec.description,
            }
        )
    return rows


def auto_choices() -> dict:
    """What ``--model auto`` runs on each kind of device, and why (the ``--json`` ``auto`` key)."""
    from didtv.models.registry import auto_choice

    return {kind: dict(zip(("model", "reason"), auto_choice(kind))) for kind in ("cpu", "cuda")}


def table_xi(channels: int = 64) -> list[dict]:
    """The paper's Table XI: feature vs kernel modulation cost for one 1x1 layer."""
    from didtv.models.modulated import modulation_cost_table

    return [
        {
            "width": r.width,
            "height": r.height,
            "channels": r.channels,
            "feature_modulation": r.gfm,
            "kernel_modulation": r.ckm,
            "ratio_percent": r.ratio * 100,
            "dual_modulation": r.dmc,
        }
        for r in modulation_cost_table(channels)
    ]


def _render_models(console, rows: list[dict]) -> None:
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="didtv models", title_justify="left",
                  caption="GFLOPs per 1920x1080 output frame", caption_justify="left")
    for name, kw in (
        ("name", {"style": "bold cyan", "no_wrap": True}),
        ("kind", {"no_wrap": True}),
        ("parameters", {"justify": "right", "no_wrap": True}),
        ("window", {"justify": "right", "no_wrap": True}),
        ("GFLOPs", {"justify": "right", "no_wrap": True}),
        ("weights", {"no_wrap": True}),
        ("description", {"ratio": 1}),
    ):
        table.add_column(name, **kw)
    for r in rows:
        if r["weights_present"] is None:
            weights = "n/a"
        else:
            weights = "[green]yes[/]" if r["weights_present"] else "[yellow]no[/]"
        table.add_row(
            escape(r["name"]),
            r["kind"],
            f"{r['parameters']:,}",
            str(r["window"]),
            f"{r['gflops_1080p']:.2f}",
            weights,
            escape(r["description"]),
        )
    console.print(table)


def _render_table_xi(console, rows: list[dict]) -> None:
    from rich.table import Table

    table = Table(
        title="Table XI: feature modulation (GFM) vs kernel modulation (CKM), one 1x1 64->64 layer",
        title_justify="left",
        caption="GFM = w*h*c*2 per frame; CKM = c*c + 2c; DMC (with gamma) = 2*c*c + 2c, per sample",
        caption_justify="left",
    )
    for name in ("feature shape (w x h x c)", "GFM", "CKM", "ratio", "DMC"):
        table.add_column(name, justify="left" if name.startswith("feature") else "right")
    for r in rows:
        table.add_row(
            f"{r['width']}x{r['height']}x{r['channels']}",
            f"{r['feature_modulation'] / 1e6:.2f}M",
            f"{r['kernel_modulation'] / 1e3:.2f}K",
            f"{r['ratio_percent']:.4f}%",
            f"{r['dual_modulation'] / 1e3:.2f}K",
        )
    console.print(table)


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON instead of a table.")
@click.option("--flops", "show_flops", is_flag=True,
              help="Also print the paper's Table XI: cost of feature vs kernel modulation.")
@handle_errors
def command(as_json: bool, show_flops: bool) -> None:
    """List the models didtv can run: name, kind, parameters, window, GFLOPs, weights.

    Learned models (DIDNet full/tiny/lite) need a weights file in didtv/weights/; analytic ones
    (bt2408, bt2446a) need none. GFLOPs are per 1920x1080 output frame. The last lines say what
    '--model auto' runs on a CPU and on a CUDA GPU.

    \b
    Example:
      didtv models
      didtv models --json
      didtv models --flops
    """
    rows = collect()
    if as_json:
        out: dict = {"models": rows, "auto": auto_choices()}
        if show_flops:
            out["table_xi"] = table_xi()
        click.echo(json.dumps(out, indent=2, sort_keys=True))
        return
    from rich.console import Console

    console = Console()
    _render_models(console, rows)
    for kind, choice in auto_choices().items():
        console.print(f"auto on {kind.upper()}: [bold]{choice['model']}[/] ({choice['reason'].split(': ', 1)[-1]})")
    if show_flops:
        _render_table_xi(console, table_xi())
