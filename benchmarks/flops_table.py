"""Print the paper's Table XI (feature vs kernel modulation cost) and DIDNet's own cost.

Usage: ``.venv/bin/python benchmarks/flops_table.py`` (no GPU, no weights; pure arithmetic plus
building the two networks to count their parameters).
"""

from __future__ import annotations

from didtv.models.didnet import FULL_CONFIG, TINY_CONFIG, describe, flops_breakdown
from didtv.models.modulated import format_modulation_table, modulation_cost_table


def main() -> None:
    print("Table XI: one 1x1 64->64 layer; GFM = w*h*c*2 per frame, CKM = c*c + 2c per sample,")
    print("DMC (with gamma) = 2*c*c + 2c per sample")
    print(format_modulation_table(modulation_cost_table(64)))
    print()
    print(f"{'model':<6} {'params':>9} {'FLOPs/px':>10} {'GFLOPs/1080p':>13}   breakdown (GFLOPs/1080p)")
    for config in (FULL_CONFIG, TINY_CONFIG):
        info = describe(config)
        parts = flops_breakdown(config)
        detail = ", ".join(f"{k} {v / 1e9:.1f}" for k, v in parts.items() if k != "total")
        print(f"{config['name']:<6} {info['parameters']:>9,} {info['flops_per_pixel']:>10,.0f} "
              f"{info['gflops_1080p']:>13.1f}   {detail}")


if __name__ == "__main__":
    main()
