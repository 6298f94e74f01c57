"""Tiny's deformable convolution on this CPU: didtv's native C kernel against
``torchvision.ops.deform_conv2d`` and OpenVINO's DeformableConvolution-8.

    .venv/bin/python benchmarks/dcn_kernels.py [--rounds 3]

One DCN as TSAF runs it in Tiny (21 -> 32 channels, 7 offset groups, 3x3, padding 1) on one
960x544 float32 frame, offsets of a few pixels and masks in (0, 1) already activated (the three
paths take the same inputs). After a warm-up the paths run interleaved, ``--rounds`` times, so
each sees the same background load; prints min / median seconds and each path's largest
difference from the native kernel. OpenVINO is optional (``pip install openvino``; skipped when
it is not importable); its model is compiled once, outside the timing (printed).
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch
from torchvision.ops import deform_conv2d as tv_deform_conv2d

from didtv.models.align import deform_conv2d_native

H, W, GROUPS, C_IN, C_OUT = 544, 960, 7, 21, 32


def _openvino(x, off, mask, w, b):
    """A ``() -> tensor`` running the same DCN in OpenVINO, or ``None`` without OpenVINO."""
    try:
        import openvino as ov
        import openvino.opset8 as ops
    except ImportError as exc:
        print(f"openvino not importable ({exc}): skipped")
        return None
    params = [ops.parameter(list(t.shape), np.float32) for t in (x, off, mask)]
    # bilinear_interpolation_pad=True is torchvision's (and didtv's) rule at the frame's border
    conv = ops.deformable_convolution(params[0], params[1], ops.constant(w.numpy()), [1, 1], [1, 1], [1, 1],
                                      [1, 1], mask=params[2], deformable_group=GROUPS,
                                      bilinear_interpolation_pad=True)
    y = ops.add(conv, ops.constant(b.numpy().reshape(1, -1, 1, 1)))
    t0 = time.perf_counter()
    request = ov.Core().compile_model(ov.Model([y], params), "CPU").create_infer_request()
    print(f"openvino {ov.__version__}: model compiled in {time.perf_counter() - t0:.2f} s")
    arrays = [t.numpy() for t in (x, off, mask)]
    return lambda: torch.from_numpy(request.infer(arrays)[0].copy())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(1, C_IN, H, W, generator=g)
    off = 4 * torch.tanh(torch.randn(1, 2 * GROUPS * 9, H, W, generator=g))
    mask = torch.rand(1, GROUPS * 9, H, W, generator=g)
    w = torch.randn(C_OUT, C_IN, 3, 3, generator=g) * 0.1
    b = torch.randn(C_OUT, generator=g)
    paths = {
        "native C kernel (didtv)": lambda: deform_conv2d_native(x, off, mask, w, b, padding=1),
        "torchvision.ops.deform_conv2d": lambda: tv_deform_conv2d(x, off, w, b, padding=1, mask=mask),
    }
    ov_path = _openvino(x, off, mask, w, b)
    if ov_path is not None:
        paths["OpenVINO DeformableConvolution-8"] = ov_path
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    with torch.no_grad():
        outs = {name: fn() for name, fn in paths.items()}  # warm-up (and the results)
        times = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, fn in paths.items():
                t0 = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - t0)
    ref = outs["native C kernel (didtv)"]
    for name, ts in times.items():
        print(f"{name:34s} min {min(ts):.3f} s  median {statistics.median(ts):.3f} s  "
              f"max |diff| vs native {(outs[name] - ref).abs().max():.1e}")


if __name__ == "__main__":
    main()
