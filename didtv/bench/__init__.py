"""``didtv bench``: how fast each stage is on this machine, and how close the whole is to it.

Measured in one run, each part in its own fresh process (so its peak memory is its own):

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
- ``pipeline``: ``didtv.api.convert`` end to end; ``streaming`` is its decode -> model -> encode
  loop, ``efficiency`` = streaming fps / min(network, decode, encode).

Peak memory: ``rss_mb`` is the part's own process (ru_maxrss), ``tree_rss_mb`` the peak of that
process plus its FFmpeg/x265 children, sampled every 50 ms; on a GPU also CUDA's peak allocation. The source clip is made once (libx264, CRF 18) and not timed.
"""

from __future__ import annotations

import os
import resource
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from didtv.errors import UsageError

SAMPLE = Path(__file__).parent / "samples" / "bikes-sample.mp4"
PARTS = ("reference", "network", "decode", "encode", "pipeline")


def parse_size(text: str) -> tuple[int, int]:
    """``"960x540"`` -> (960, 540); both even and >= 16."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise UsageError(f"size must be WIDTHxHEIGHT, e.g. 960x540, got {text!r}") from None
    if w < 16 or h < 16 or w % 2 or h % 2:
        raise UsageError(f"size must be even and at least 16x16, got {w}x{h}")
    return w, h


def make_source(path: Path, size: tuple[int, int], frames: int) -> Path:
    """An 8-bit BT.709 H.264 clip of ``frames`` frames at ``size``: the sample clip, looped and
    scaled (bicubic), encoded at CRF 18."""
    from didtv.io.encode import run_strict
    from didtv.io.ffmpeg import tool_path

    w, h = size
    argv = [tool_path("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
            "-stream_loop", "-1", "-i", str(SAMPLE), "-frames:v", str(frames), "-an",
            "-vf", f"scale={w}:{h}:flags=bicubic:out_color_matrix=bt709:out_range=tv",
            "-c:v", "libx264", "-crf", "18", "-preset", "veryfast", "-pix_fmt", "yuv420p",
            "-color_primaries", "bt709", "-color_trc", "bt709", "-colorspace", "bt709", str(path)]
    run_strict(argv, "making the benchmark clip", path)
    return path


def _tree_rss_kb(pid: int) -> int:
    """Resident memory of ``pid`` and all its descendants now (kB, from /proc; 0 if gone)."""
    total = 0
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
                    break
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            kids = [int(k) for k in f.read().split()]
    except (OSError, ValueError):
        return total
    return total + sum(_tree_rss_kb(k) for k in kids)


class TreeMemory:
    """Samples the RSS of this process plus its FFmpeg/x265 children every ``interval`` s and
    keeps the peak of the sum. (ru_maxrss cannot do this: a child forked from a large Python
    process reports the parent's size as its own peak.)"""

    def __init__(self, interval: float = 0.05) -> None:
        import threading

        self.interval = interval
        self.peak_kb = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_kb = max(self.peak_kb, _tree_rss_kb(os.getpid()))
            self._stop.wait(self.interval)

    def __enter__(self) -> "TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


_TREE: TreeMemory | None = None


def _peak_memory(device: str | None = None) -> dict:
    out = {"rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if _TREE is not None:
        out["tree_rss_mb"] = max(_TREE.peak_kb, _tree_rss_kb(os.getpid())) / 1024
    if device and device.startswith("cuda"):
        import torch

        out["cuda_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


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
            "memory": _peak_memory(str(runner.device))}


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
    runner.infer_batch(windows[:batch])  # warm-up (allocations, cuDNN choices, torch.compile)
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
        runner.infer_batch(windows[i:i + batch])
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
    result["memory"] = _peak_memory(str(runner.device))
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
    return {"fps": n / seconds, "frames": n, "memory": _peak_memory()}


def _encode(size, frames, source, preset, workdir, **_) -> dict:
    from fractions import Fraction

    import numpy as np

    from didtv.io.encode import HDR10Writer
    from didtv.presets import load_preset

    settings = load_preset(preset).encode_for(Fraction(25))
    # Realistic content: decoded frames scaled into the PQ range SDR maps to (white ~0.58).
    pq = [np.ascontiguousarray(f * 0.58) for f in _frames_of(source, size, min(frames, 48))]
    w, h = size
    out = Path(workdir) / "encode-only.mkv"
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
    return {"fps": frames / seconds, "frames": frames, "x265_preset": settings.preset,
            "memory": _peak_memory()}


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
            "stages": stages.as_dict(), "device": result.device, "precision": result.precision,
            "memory": _peak_memory(result.device)}


_RUNNERS: dict[str, Callable[..., dict]] = {
    "reference": _reference, "network": _network, "decode": _decode, "encode": _encode,
    "pipeline": _pipeline,
}


def _run_part(part: str, kwargs: dict) -> dict:
    global _TREE
    with TreeMemory() as _TREE:
        return _RUNNERS[part](**kwargs)


def bench(*, model: str = "tiny", size: tuple[int, int] = (960, 540), frames: int = 24,
          device: str | None = None, precision: str | None = None, tile=None,
          batch_size: int | None = None, preset: str = "hdr10-1000", threads: int | None = None,
          untrained: bool = False, torch_compile: bool = False, parts: tuple[str, ...] = PARTS,
          on_part: Callable[[str, dict], None] | None = None) -> dict:
    """Measure ``parts`` (each in a fresh process) and return them with the summary:
    ``bottleneck`` (the slowest of network/decode/encode), ``efficiency`` and
    ``network_vs_reference`` (achieved FLOP/s over the reference convolution's).

    ``untrained``: time ``model``'s architecture with random weights (for a model with no
    shipped weights, e.g. Full). Its offset predictor starts at zero, so the deformable sampling
    reads neighbouring pixels and is somewhat faster than with trained weights.
    ``torch_compile``: as for :class:`~didtv.pipeline.runner.Runner`; the network part's warm-up
    window (``warmup_s``) pays the compilation, the pipeline part's times include it."""
    from didtv.io.ffmpeg import check_ffmpeg

    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise UsageError(f"unknown benchmark part(s) {', '.join(unknown)}; allowed: {', '.join(PARTS)}")
    if frames < 1:
        raise UsageError(f"frames must be >= 1, got {frames}")
    check_ffmpeg()
    threads = threads or (os.cpu_count() or 1)
    report: dict = {"model": model, "untrained": untrained, "torch_compile": torch_compile, "size": f"{size[0]}x{size[1]}",
                    "frames": frames, "preset": preset, "threads": threads, "machine": machine(),
                    "date": time.strftime("%Y-%m-%d"), "parts": {}}
    with tempfile.TemporaryDirectory(prefix="didtv-bench-") as workdir:
        source = make_source(Path(workdir) / "source.mp4", size, frames)
        if untrained:
            model = str(_random_weights(model, Path(workdir)))
        kwargs = {"size": size, "frames": frames, "model": model, "device": device,
                  "precision": precision, "tile": tile, "batch_size": batch_size, "preset": preset,
                  "threads": threads, "source": source, "workdir": workdir, "torch_compile": torch_compile}
        ctx = get_context("spawn")
        for part in parts:
            with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                report["parts"][part] = pool.submit(_run_part, part, kwargs).result()
            if on_part is not None:
                on_part(part, report["parts"][part])
    report.update(summarise(report["parts"]))
    return report


def _random_weights(model: str, workdir: Path) -> Path:
    """``model``'s architecture with its random initial weights, saved for load_model/convert."""
    import torch

    from didtv.models.registry import get_info, load_model, save_weights

    torch.manual_seed(0)
    net = load_model(model, pretrained=False)
    path = workdir / f"{model}-untrained.safetensors"
    save_weights(net, path, arch=get_info(model).arch)
    return path


def summarise(parts: dict) -> dict:
    """Bottleneck, efficiency and network/reference ratio from whichever parts were measured."""
    out: dict = {}
    alone = {k: parts[k]["fps"] for k in ("network", "decode", "encode") if k in parts}
    if alone:
        out["bottleneck"] = min(alone, key=alone.get)
        if "pipeline" in parts and len(alone) == 3:
            out["efficiency"] = parts["pipeline"]["streaming_fps"] / alone[out["bottleneck"]]
    net = parts.get("network", {})
    if "flops_per_s" in net:
        # the reference measured between the network's own windows; else the separate part
        ref = net.get("reference_flops_per_s") or parts.get("reference", {}).get("flops_per_s")
        if ref:
            out["network_vs_reference"] = net["flops_per_s"] / ref
    return out


def machine() -> dict:
    """CPU model, cores, torch version and GPU name (for docs/benchmarks.md)."""
    import platform

    import torch

    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "python": sys.version.split()[0], "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
