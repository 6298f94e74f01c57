"""``didtv bench``: how fast each stage is on this machine, and how close the whole is to it.

Each part (:mod:`didtv.bench.parts`: ``reference``, ``network``, ``decode``, ``encode``,
``x265``, ``pipeline``) runs in its own fresh process, so its peak memory is its own
(:mod:`didtv.bench.memory`: ``rss_mb`` is the part's process, ``tree_rss_mb`` the peak of that
process plus its FFmpeg/x265 children, sampled every 50 ms; on a GPU also CUDA's peak
allocation). The source clip is made once (libx264, CRF 18) and not timed.

The summary (:func:`summarise`): the bottleneck (slowest of network / decode / encode alone),
the pipeline's efficiency (streaming fps / that stage's fps), the network's achieved FLOP/s over
the reference convolution's, and the network's and the whole conversion's frame rate as a
fraction of x265 ``medium`` encoding the same frames alone (the encoder that bounds a CPU
conversion). :func:`bench` adds the model's GFLOP per frame at the benched size and at 1080p.

``cpu_isa="avx2"`` and ``cores`` emulate a smaller CPU on a bigger one (:data:`CPU_ISAS`).
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from multiprocessing import get_context
from pathlib import Path
from typing import Callable, Iterator

from didtv.errors import UsageError

SAMPLE = Path(__file__).parent.parent / "samples" / "bikes-sample.mp4"
PARTS = ("reference", "network", "decode", "encode", "x265", "pipeline")

#: ``cpu_isa`` -> the environment each part's process starts with: oneDNN (convolutions,
#: matmuls) and PyTorch's own vectorised kernels capped at that instruction set. x265 needs no
#: cap: 3.5 uses AVX2 at most unless ``asm=avx512`` is given (its "using cpu capabilities" line
#: on an AVX-512 EPYC ends at AVX2). didtv's native kernels (the DCN's sampling, Lite's full-size
#: pass) are built for x86-64-v3 (AVX2, FMA) instead of ``-march=native``.
CPU_ISAS = {"avx2": {"ONEDNN_MAX_CPU_ISA": "AVX2", "ATEN_CPU_CAPABILITY": "avx2",
                     "DIDTV_NATIVE_MARCH": "x86-64-v3"}}
#: Environment variables that change which CPU kernels run; :func:`machine` records those set.
ISA_ENV = ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "DNNL_MAX_CPU_ISA", "DIDTV_NATIVE", "DIDTV_NATIVE_MARCH",
           "OMP_NUM_THREADS")
#: The size the issue's cost targets are counted at (as ``didtv models`` does).
SIZE_1080P = (1920, 1080)


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


def default_parts(preset: str) -> tuple[str, ...]:
    """Every part, less ``x265`` when ``preset``'s ``encode`` part already is x265-medium alone."""
    from didtv.bench.parts import is_default_encoder

    return tuple(p for p in PARTS if p != "x265" or not is_default_encoder(preset))


def _emulation(cpu_isa: str | None, cores: int | None, device: str | None,
               precision: str | None) -> tuple[dict, str | None, str | None]:
    """Check ``cpu_isa``/``cores`` and return (the parts' environment, device, precision)."""
    if cores is not None and not 1 <= cores <= len(os.sched_getaffinity(0)):
        raise UsageError(f"cores must be between 1 and {len(os.sched_getaffinity(0))} (this machine), got {cores}")
    if cpu_isa is None:
        return {}, device, precision
    if cpu_isa not in CPU_ISAS:
        raise UsageError(f"unknown cpu ISA {cpu_isa!r}; allowed: {', '.join(CPU_ISAS)}")
    if device not in (None, "auto", "cpu"):
        raise UsageError(f"--cpu-isa emulates a CPU; it cannot go with --device {device}")
    if precision not in (None, "auto", "fp32"):
        raise UsageError(f"--cpu-isa {cpu_isa} emulates a CPU without native bfloat16/float16: "
                         f"--precision {precision} would not run there", hint="use --precision fp32 (or auto)")
    return dict(CPU_ISAS[cpu_isa]), "cpu", "fp32"


@contextmanager
def _environment(env: dict) -> Iterator[None]:
    """``env`` set for the processes started inside (the parts), restored afterwards."""
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def model_cost(model: str, size: tuple[int, int]) -> dict | None:
    """GFLOP per frame at ``size`` and at 1080p from the model's own ``flops(h, w)`` (as
    ``didtv models`` counts DIDNet), or None for a model that does not count itself."""
    from didtv.models.registry import load_model

    net = load_model(model, pretrained=False) if not str(model).endswith(".safetensors") else load_model(model)
    flops = getattr(net, "flops", None)
    if not callable(flops):
        return None
    return {f"{w}x{h}": flops(h, w)["total"] / 1e9 for w, h in dict.fromkeys([size, SIZE_1080P])}


def bench(*, model: str = "tiny", size: tuple[int, int] = (960, 540), frames: int = 24,
          device: str | None = None, precision: str | None = None, tile=None,
          batch_size: int | None = None, preset: str = "hdr10-1000", threads: int | None = None,
          untrained: bool = False, torch_compile: bool = False, parts: tuple[str, ...] | None = None,
          cpu_isa: str | None = None, cores: int | None = None,
          on_part: Callable[[str, dict], None] | None = None) -> dict:
    """Measure ``parts`` (each in a fresh process; default :func:`default_parts`) and return
    them with :func:`summarise`'s summary and ``gflops_per_frame`` (:func:`model_cost`).

    ``untrained``: time ``model``'s architecture with random weights (for a model with no
    shipped weights, e.g. Full). Its offset predictor starts at zero, so the deformable sampling
    reads neighbouring pixels and is somewhat faster than with trained weights.
    ``torch_compile``: as for :class:`~didtv.pipeline.runner.Runner`; the network part's warm-up
    window (``warmup_s``) pays the compilation, the pipeline part's times include it.
    ``cpu_isa`` ("avx2"): the parts' PyTorch/oneDNN kernels capped at that ISA, on the CPU in
    float32 (:data:`CPU_ISAS`); ``cores``: each part pinned to that many CPUs (FFmpeg and x265
    included), ``threads`` defaulting to it. Both are noted in the ``machine`` block."""
    from didtv.bench.parts import run_part
    from didtv.io.ffmpeg import check_ffmpeg

    parts = default_parts(preset) if parts is None else parts
    unknown = [p for p in parts if p not in PARTS]
    if unknown:
        raise UsageError(f"unknown benchmark part(s) {', '.join(unknown)}; allowed: {', '.join(PARTS)}")
    if frames < 1:
        raise UsageError(f"frames must be >= 1, got {frames}")
    env, device, precision = _emulation(cpu_isa, cores, device, precision)
    check_ffmpeg()
    threads = threads or cores or len(os.sched_getaffinity(0))
    info = machine()
    if cpu_isa or cores:
        info["emulated"] = {"cpu_isa": cpu_isa, "cores": cores, "env": env,
                            **({"precision": "fp32"} if cpu_isa else {})}
    report: dict = {"model": model, "untrained": untrained, "torch_compile": torch_compile, "size": f"{size[0]}x{size[1]}",
                    "frames": frames, "preset": preset, "threads": threads, "machine": info,
                    "date": time.strftime("%Y-%m-%d"), "gflops_per_frame": model_cost(model, size), "parts": {}}
    with tempfile.TemporaryDirectory(prefix="didtv-bench-") as workdir:
        source = make_source(Path(workdir) / "source.mp4", size, frames)
        if untrained:
            model = str(_random_weights(model, Path(workdir)))
        kwargs = {"size": size, "frames": frames, "model": model, "device": device,
                  "precision": precision, "tile": tile, "batch_size": batch_size, "preset": preset,
                  "threads": threads, "source": source, "workdir": workdir, "torch_compile": torch_compile,
                  "cores": cores}
        ctx = get_context("spawn")
        with _environment(env):
            for part in parts:
                with ProcessPoolExecutor(max_workers=1, mp_context=ctx) as pool:
                    report["parts"][part] = pool.submit(run_part, part, kwargs).result()
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
    """From whichever parts were measured: ``bottleneck`` and ``efficiency``;
    ``network_vs_reference`` (achieved FLOP/s over the reference convolution's);
    ``x265_medium_fps`` (the ``x265`` part, else an ``encode`` part at the default preset's
    settings; ``x265_medium_part`` says which) and the network's, the whole conversion's and its
    streaming loop's fps over it (``network_vs_x265``, ``convert_vs_x265``,
    ``streaming_vs_x265``); ``pipeline_peak_mb``, the conversion's process tree at its peak."""
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
    x265 = "x265" if "x265" in parts else "encode" if parts.get("encode", {}).get("default_encoder") else None
    if x265:
        fps = out["x265_medium_fps"] = parts[x265]["fps"]
        out["x265_medium_part"] = x265
        if "network" in parts:
            out["network_vs_x265"] = net["fps"] / fps
        if "pipeline" in parts:
            out["convert_vs_x265"] = parts["pipeline"]["fps"] / fps
            out["streaming_vs_x265"] = parts["pipeline"]["streaming_fps"] / fps
    if "pipeline" in parts:
        mem = parts["pipeline"].get("memory", {})
        out["pipeline_peak_mb"] = mem.get("tree_rss_mb", mem.get("rss_mb"))
    return out


def machine() -> dict:
    """CPU model, cores, torch version, GPU name and the ISA-capping environment set (:data:`ISA_ENV`)."""
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
    info = {"cpu": cpu, "cores": os.cpu_count(), "cpus_usable": len(os.sched_getaffinity(0)), "torch": torch.__version__,
            "python": sys.version.split()[0], "cpu_capability": torch.backends.cpu.get_cpu_capability()}
    env = {k: os.environ[k] for k in ISA_ENV if k in os.environ}
    if env:
        info["env"] = env
    if torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(0)
    return info
