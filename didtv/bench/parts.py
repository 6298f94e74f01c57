"""The parts of ``didtv bench``, each run in its own fresh process by :func:`run_part`.

- ``reference``: a 64->64 3x3 convolution (channels-last, the model's precision) on a frame of
  the chosen size: the practical roofline of this device for convolution-heavy networks.
- ``network``: the model alone on windows of real frames (the bundled sample clip scaled to the
  size): frames/s, megapixels/s, achieved FLOP/s (the model's own FLOP count, docs/didnet.md)
  and their ratio to the reference. For that ratio the network part runs the reference
  convolution itself after every batch, for as long as the batch took (``reference_flops_per_s``):
  on a shared machine the speed drifts over minutes, and the separate part alone can differ by
  25-45%. Its peak memory includes the reference's two 64-channel frames (of one tile when the
  frames are tiled).
- ``decode``: FFmpeg decoding to float R'G'B' (didtv.io.decode) alone.
- ``encode``: x265 at the preset's settings (didtv.io.encode) alone.
- ``x265``: the same frames encoded alone at the *default* preset's settings (x265 ``medium``,
  CRF 18, 10-bit 4:2:0): the encoder a CPU conversion is bounded by, whatever ``--preset`` is.
- ``pipeline``: ``didtv.api.convert`` end to end; ``streaming`` is its decode -> model -> encode
  loop.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Callable

from didtv.bench import memory
from didtv.presets import DEFAULT_PRESET


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


class ReferenceConv:
    """The practical roofline: one 64->64 3x3 convolution, channels-last, in ``runner``'s device
    and precision, on a frame of ``size``. ``run(seconds, at_least)`` convolves for about that
    long and returns (convolutions, seconds)."""

    def __init__(self, runner, size: tuple[int, int]) -> None:
        import torch

        from didtv.pipeline.runner import _DTYPES

        w, h = size
        self.runner = runner
        self.conv = torch.nn.Conv2d(64, 64, 3, padding=1).to(runner.device).to(memory_format=torch.channels_last)
        self.x = torch.rand(1, 64, h, w, device=runner.device).contiguous(memory_format=torch.channels_last)
        self.dtype = _DTYPES.get(runner.precision)
        self.flops = 2 * 64 * 64 * 9 * h * w

    def run(self, seconds: float, at_least: int = 1) -> tuple[int, float]:
        import torch

        device = self.runner.device
        with torch.inference_mode(), torch.autocast(device.type, dtype=self.dtype or torch.float32,
                                                    enabled=self.dtype is not None):
            _sync(device)
            reps, t0 = 0, time.perf_counter()
            while reps < at_least or time.perf_counter() - t0 < seconds:
                self.conv(self.x)
                reps += 1
            _sync(device)
            return reps, time.perf_counter() - t0


def _reference(size, frames, model, device, precision, threads, **_) -> dict:
    import torch

    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner

    torch.set_num_threads(threads)
    runner = Runner(load_model(model, pretrained=False), device=device, precision=precision)
    ref = ReferenceConv(runner, size)
    ref.run(0.0)  # warm-up
    reps, seconds = ref.run(2.0, at_least=3)
    return {"flops_per_s": ref.flops * reps / seconds, "seconds_per_conv": seconds / reps,
            "device": str(runner.device), "precision": runner.precision,
            "memory": memory.peak_memory(str(runner.device))}


def _frames_of(source: Path, size, count: int):
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe

    frames = []
    with FrameReader(probe(source), size) as reader:
        for f in reader:
            frames.append(f)
            if len(frames) == count:
                break
    return frames


def _network(size, frames, model, device, precision, threads, tile, batch_size, source, torch_compile,
             **_) -> dict:
    import torch

    from didtv.models.align import native_deform_available
    from didtv.models.registry import load_model
    from didtv.pipeline.runner import Runner
    from didtv.pipeline.window import sliding_windows

    torch.set_num_threads(threads)
    net = load_model(model)
    runner = Runner(net, device=device, precision=precision, tile=tile, batch=batch_size,
                    torch_compile=torch_compile)
    decoded = _frames_of(source, size, frames)
    tensors = [torch.from_numpy(f).to(runner.device) for f in decoded]
    windows = list(sliding_windows(tensors, runner.spec.window))
    w, h = size
    batch = runner.batch_for(h, w)
    t0 = time.perf_counter()
    # Each frame's thumbnails once, as Runner.process computes them (timed with the batch that
    # first reads the frame); infer_batch alone would pool every frame once per window
    cache: dict[int, object] = {}

    def infer(ws):
        if runner.spec.window == 1:
            return runner.infer_batch(ws)
        for f in (f for w in ws for f in w if id(f) not in cache):
            cache[id(f)] = runner.frame_thumbnails(f)
        return runner.infer_batch(ws, thumbs=[[cache[id(f)] for f in w] for w in ws])

    infer(windows[:batch])  # warm-up (allocations, cuDNN choices, torch.compile)
    _sync(runner.device)
    warmup = time.perf_counter() - t0
    flops = getattr(net, "flops", None)
    # A model with a FLOP count gets the reference convolution interleaved: after every batch, as
    # long as the batch took, so that the ratio compares the same minutes of a shared machine
    # (a separate reference part caught one VM 25-45% slower than while the network ran).
    # Tiled frames: the reference on one tile (the size the model computes on), not on a 4K frame
    # (two 64-channel 4K frames would add 4 GB to this part's memory).
    m = runner.spec.multiple_of
    ph, pw = h + (-h) % m, w + (-w) % m  # the model runs on frames padded to this multiple
    tile = runner.tile_for(ph, pw)
    ref = ReferenceConv(runner, (tile, tile) if tile else size) if callable(flops) else None
    if ref is not None:
        ref.run(0.0)  # warm-up
    seconds, ref_reps, ref_seconds = 0.0, 0, 0.0
    for i in range(0, len(windows), batch):
        t0 = time.perf_counter()
        infer(windows[i:i + batch])
        _sync(runner.device)
        took = time.perf_counter() - t0
        seconds += took
        if ref is not None:
            reps, rs = ref.run(took)
            ref_reps, ref_seconds = ref_reps + reps, ref_seconds + rs
    fps = len(windows) / seconds
    result = {"fps": fps, "megapixels_per_s": fps * w * h / 1e6, "frames": len(windows),
              "batch": batch, "tile": tile,
              "device": str(runner.device), "precision": runner.precision,
              "torch_compile": runner.torch_compile, "warmup_s": warmup}
    if runner.device.type == "cpu" and getattr(net, "tsaf", None) is not None:
        # which deformable sampling this process ran: the fused C kernel or PyTorch's path
        result["deform_sampling"] = "native" if native_deform_available() else "torch"
    if ref is not None:
        result["gflops_per_frame"] = flops(ph, pw)["total"] / 1e9
        result["flops_per_s"] = result["gflops_per_frame"] * 1e9 * fps
        result["reference_flops_per_s"] = ref.flops * ref_reps / ref_seconds
    result["memory"] = memory.peak_memory(str(runner.device))
    return result


def _decode(size, frames, source, **_) -> dict:
    from didtv.io.decode import FrameReader
    from didtv.io.probe import probe

    info = probe(source)
    t0 = time.perf_counter()
    n = 0
    with FrameReader(info, size) as reader:
        for _frame in reader:
            n += 1
    seconds = time.perf_counter() - t0
    return {"fps": n / seconds, "frames": n, "memory": memory.peak_memory()}


def _encode(size, frames, source, preset, workdir, name="encode", **_) -> dict:
    from fractions import Fraction

    import numpy as np

    from didtv.io.encode import HDR10Writer
    from didtv.presets import load_preset

    settings = load_preset(preset).encode_for(Fraction(25))
    # Realistic content: decoded frames scaled into the PQ range SDR maps to (white ~0.58).
    pq = [np.ascontiguousarray(f * 0.58) for f in _frames_of(source, size, min(frames, 48))]
    w, h = size
    out = Path(workdir) / f"{name}-only.mkv"
    t0 = time.perf_counter()
    writer = HDR10Writer(out, width=w, height=h, fps=Fraction(25), settings=settings, source=None)
    try:
        for i in range(frames):
            writer.write(pq[i % len(pq)])
    except BaseException:
        writer.abort()
        raise
    writer.close()
    seconds = time.perf_counter() - t0
    return {"fps": frames / seconds, "frames": frames, "preset": str(preset), "x265_preset": settings.preset,
            "crf": None if settings.lossless else settings.crf,
            "default_encoder": is_default_encoder(preset), "memory": memory.peak_memory()}


def is_default_encoder(preset) -> bool:
    """Whether ``preset`` encodes with the default preset's x265 settings: then its ``encode``
    part *is* x265-medium alone and the ``x265`` part need not run."""
    from fractions import Fraction

    from didtv.presets import load_preset

    return load_preset(preset).encode_for(Fraction(25)) == load_preset(DEFAULT_PRESET).encode_for(Fraction(25))


def _x265(**kwargs) -> dict:
    """x265 alone at the default preset's settings (medium), on the same frames as ``encode``."""
    return _encode(**{**kwargs, "preset": DEFAULT_PRESET, "name": "x265"})


def _pipeline(size, frames, model, device, precision, threads, tile, batch_size, source, preset,
              workdir, torch_compile, **_) -> dict:
    import torch

    from didtv.api import convert

    torch.set_num_threads(threads)
    out = Path(workdir) / "pipeline.mkv"
    t0 = time.perf_counter()
    result = convert(source, out, preset=preset, model=model, overwrite=True, device=device,
                     precision=precision, tile=tile, batch_size=batch_size, torch_compile=torch_compile)
    seconds = time.perf_counter() - t0
    stages = result.stages
    return {"fps": result.frames / seconds, "frames": result.frames,
            "streaming_fps": result.frames / stages.wall if stages.wall else 0.0,
            "stages": stages.as_dict(), "preset": str(preset), "device": result.device,
            "precision": result.precision, "memory": memory.peak_memory(result.device)}


RUNNERS: dict[str, Callable[..., dict]] = {
    "reference": _reference, "network": _network, "decode": _decode, "encode": _encode,
    "x265": _x265, "pipeline": _pipeline,
}


def run_part(part: str, kwargs: dict) -> dict:
    """Run ``part`` in this (fresh) process, its peak memory sampled; with ``kwargs["cores"]``
    this process and its FFmpeg/x265 children are first pinned to that many CPUs."""
    cores = kwargs.get("cores")
    if cores:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:cores])
    with memory.TreeMemory():
        result = RUNNERS[part](**kwargs)
    result["cpus"] = len(os.sched_getaffinity(0))
    if "torch" in sys.modules:  # the kernels PyTorch dispatched to (ATEN_CPU_CAPABILITY caps it)
        import torch

        result["cpu_capability"] = torch.backends.cpu.get_cpu_capability()
    return result
