"""benchmarks/gpu_check.sh and the CPU-side logic a CUDA run relies on: device selection, fp16
only on CUDA, batching by pixels. (The GPU runs themselves are the script's; docs/benchmarks.md,
"GPU check".)"""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch
from click.testing import CliRunner

from didtv.cli.bench import command as bench_command
from didtv.cli.main import cli
from didtv.errors import UsageError
from didtv.models.registry import load_model, registered
from didtv.pipeline import runner as runner_mod
from didtv.pipeline.runner import Runner, pick_device, resolve_precision

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"
CPU, CUDA = torch.device("cpu"), torch.device("cuda")


def _script(tmp_path, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OUT": str(tmp_path), **env})


def test_the_script_parses():
    proc = subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def test_dry_run_lists_the_gpu_tests_then_every_model_size_and_precision(tmp_path):
    proc = _script(tmp_path, DRY_RUN="1")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "timeout 150 .venv/bin/python -m pytest -q -m gpu -p no:cacheprovider tests"
    infos = {info.name: info for info in registered()}
    models = [m for m in ("tiny", "full", "lite") if m in infos]
    expected = []
    for precision in ("fp16", "bf16"):
        for size, frames, limit in (("1920x1080", 16, 75), ("3840x2160", 8, 100)):
            for m in models:
                untrained = "" if infos[m].weights_present() else " --untrained"
                expected.append(f"timeout {limit} .venv/bin/didtv bench --model {m}{untrained} --size {size} "
                                f"--frames {frames} --device cuda --precision {precision} --part network "
                                f"--json > {tmp_path}/{m}-{size}-{precision}.json")
    assert lines[1:1 + len(expected)] == expected
    assert lines[1 + len(expected):] == (
        [f"timeout 150 .venv/bin/didtv bench --model tiny --size 1920x1080 --frames 24 --device cuda "
         f"--precision fp16 --json > {tmp_path}/tiny-1920x1080-fp16-all-parts.json"] if "tiny" in models else [])
    assert not list(tmp_path.iterdir())  # a dry run writes nothing
    # every command it prints is one `didtv bench` takes (options and values checked by click)
    for line in lines[1:]:
        args = re.match(r"timeout \d+ \.venv/bin/didtv (.*) --json > ", line).group(1).split()
        assert args[0] == "bench"
        assert bench_command.make_context("bench", args[1:] + ["--json"]).params["device"] == "cuda"


def test_dry_run_saves_under_runs_gpu_check_without_out(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "OUT"}
    proc = subprocess.run(["bash", str(SCRIPT)], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**env, "DRY_RUN": "1"})
    assert proc.returncode == 0 and "> runs/gpu-check/tiny-1920x1080-fp16.json" in proc.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the refusal on a machine without CUDA")
def test_without_cuda_the_script_stops_with_one_line(tmp_path):
    proc = _script(tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.strip() == ("gpu_check: no CUDA GPU visible to torch: nothing to check here "
                                   "(DRY_RUN=1 prints the commands)")


def test_device_selection(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert pick_device(None) == CUDA and pick_device("auto") == CUDA
    assert pick_device("cpu") == CPU and pick_device("cuda:1") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert pick_device(None) == CPU and pick_device("auto") == CPU


def test_fp16_autocast_is_for_cuda_only(monkeypatch):
    spec = load_model("tiny", pretrained=False).spec
    assert resolve_precision("auto", CUDA, spec) == "fp16"
    assert resolve_precision("fp16", CUDA, spec) == "fp16"
    assert runner_mod._DTYPES["fp16"] is torch.float16  # the dtype the runner autocasts to
    for native in (False, True):  # auto on a CPU is never fp16, with or without native bf16
        monkeypatch.setattr(runner_mod, "cpu_has_native_bf16", lambda: native)
        assert resolve_precision("auto", CPU, spec) == ("bf16" if native else "fp32")
        with pytest.raises(UsageError, match="--precision fp16 needs a CUDA GPU") as err:
            resolve_precision("fp16", CPU, spec)
        assert "\n" not in str(err.value)


def test_fp16_on_cpu_is_refused_by_bench_with_one_clear_line():
    res = CliRunner().invoke(cli, ["bench", "--model", "tiny", "--untrained", "--size", "32x32", "--frames", "1",
                                   "--device", "cpu", "--precision", "fp16", "--part", "network"])
    assert res.exit_code != 0
    assert res.output.splitlines()[0].endswith("--precision fp16 needs a CUDA GPU"), res.output
    assert "Traceback" not in res.output


def test_batches_are_sized_by_pixels_on_cuda_only():
    """Runner.batch_for: on CUDA as many windows as fit in 8 Mpixel (1 to 8), on a CPU one, an
    explicit batch size always."""
    batch_for = Runner.batch_for
    cuda = SimpleNamespace(batch=None, device=CUDA)
    assert batch_for(cuda, 1088, 1920) == 3        # 3 x 2.09 Mpixel <= 8 M < 4 x
    assert batch_for(cuda, 544, 960) == 8          # 15 would fit: capped at 8
    assert batch_for(cuda, 2160, 3840) == 1        # one 8.3 Mpixel frame: still 1
    assert batch_for(cuda, 1440, 2560) == 2
    assert batch_for(SimpleNamespace(batch=None, device=CPU), 48, 64) == 1
    assert batch_for(SimpleNamespace(batch=5, device=CUDA), 2160, 3840) == 5
    runner = Runner(load_model("bt2408"), device="cpu")  # the real object agrees
    assert runner.batch_for(544, 960) == 1
