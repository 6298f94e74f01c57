"""``convert --chunks``: chunked, resumable conversion of one file (didtv.chunks).

Real FFmpeg / x265 (lossless, so the decoded output shows the model's frames exactly) on tiny
clips, chunk lengths of a fraction of a second so that every clip makes several chunks.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from clips import make_clip, requires_ffmpeg
from didtv.api import convert
from didtv.chunks import work_dir
from didtv.chunks.work import Work
from didtv.errors import FFmpegError, OutputError
from didtv.io.ffmpeg import ffprobe_json, tool_path
from didtv.io.probe import count_frames
from didtv.presets import load_preset

pytestmark = requires_ffmpeg

LOSSLESS = load_preset().with_overrides(model="bt2408", x265_preset="ultrafast", lossless=True)
ROOT = Path(__file__).resolve().parents[2]


def _ffmpeg(*args: str) -> None:
    subprocess.run([tool_path("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True, capture_output=True)


def worker_writing(folder: Path, partial: str = ".partial") -> int | None:
    """The PID of the process (a worker process, a Ray worker) whose FFmpeg child writes a chunk in ``folder``."""
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            cmd = Path(entry.path, "cmdline").read_bytes().decode(errors="replace")
            if "ffmpeg" not in cmd or str(folder) not in cmd or partial not in cmd:
                continue
            status = Path(entry.path, "status").read_text()
        except OSError:
            continue
        ppid = int(next(ln.split()[1] for ln in status.splitlines() if ln.startswith("PPid:")))
        if ppid != os.getpid():  # not this process's own ffmpeg
            return ppid
    return None


def kill_a_worker_writing(folder: Path) -> tuple[threading.Thread, list[int]]:
    """A thread that SIGKILLs the first worker seen writing a chunk in ``folder``, 0.3 s into it
    (within 60 s); the list gets its PID."""
    killed: list[int] = []

    def killer() -> None:
        deadline = time.monotonic() + 60
        while not killed and time.monotonic() < deadline:
            pid = worker_writing(folder)
            if pid is not None:
                time.sleep(0.3)  # in the middle of its chunk
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            time.sleep(0.05)

    thread = threading.Thread(target=killer, daemon=True)
    thread.start()
    return thread, killed


def make_damaged_clip(folder: Path) -> Path:
    """50 frames of H.264 (a keyframe every 10) with 300 bytes in the middle scrambled: decoding
    fails part-way (the 'damaged video' line)."""
    good = folder / "good.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25,trim=end_frame=50", "-c:v", "libx264",
            "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", str(good))
    data = bytearray(good.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + 300):
        data[i] = (data[i] * 7 + 13) & 0xFF
    bad = folder / "bad.mp4"
    bad.write_bytes(bytes(data))
    return bad


def make_cut_clip(path: Path, shots=(12, 10, 14), size=(64, 48)) -> Path:
    """Three different pictures one after the other (two hard cuts), H.264 with B-frames and a
    keyframe every 10 frames, and an AAC sine as long as the video."""
    w, h = size
    sources = ["testsrc2", "smptebars", "testsrc"]
    graph = ";".join(f"{sources[k]}=size={w}x{h}:rate=25,trim=end_frame={n},setpts=PTS-STARTPTS[v{k}]"
                     for k, n in enumerate(shots))
    graph += ";" + "".join(f"[v{k}]" for k in range(len(shots))) + f"concat=n={len(shots)}"
    _ffmpeg("-f", "lavfi", "-i", graph, "-f", "lavfi", "-i",
            f"sine=frequency=440:sample_rate=48000:duration={sum(shots) / 25}",
            "-map", "0:v", "-map", "1:a", "-c:v", "libx264", "-preset", "ultrafast", "-bf", "2", "-g", "10",
            "-pix_fmt", "yuv420p", "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709",
            "-c:a", "aac", str(path))
    return path


def decoded(path: Path) -> np.ndarray:
    """Every frame as 10-bit 4:2:0 codes, (frames, codes)."""
    out = subprocess.run([tool_path("ffmpeg"), "-nostdin", "-v", "error", "-i", str(path), "-fps_mode", "passthrough", "-f", "rawvideo",
                          "-pix_fmt", "yuv420p10le", "-"], check=True, capture_output=True).stdout
    codes = np.frombuffer(out, dtype="<u2").astype(np.int32)
    return codes.reshape(count_frames(path), -1)


def video_times(path: Path) -> list[float]:
    data = ffprobe_json(str(path), "-select_streams", "v:0", "-show_entries", "packet=pts_time")
    return sorted(float(p["pts_time"]) for p in data["packets"])


def stream_kinds(path: Path) -> list[str]:
    return [s["codec_type"] for s in ffprobe_json(str(path), "-show_entries", "stream=codec_type")["streams"]]


def hidden_leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


@pytest.mark.parametrize("kind", ["cuts", "no-cuts"])
def test_chunked_equals_one_pass(tmp_path, kind):
    if kind == "cuts":  # two cuts, MP4 in and out
        src, suffix = make_cut_clip(tmp_path / "cuts.mp4"), ".mp4"
    else:  # one shot, MKV with audio and subtitles, a rate whose frame times round to the ms
        src, suffix = make_clip(tmp_path / "plain.mkv", frames=30, fps="30000/1001", audio=True,
                                subtitles=True), ".mkv"
    one = convert(src, tmp_path / f"one{suffix}", preset=LOSSLESS, chunks="off")
    seen = []
    ch = convert(src, tmp_path / f"chunked{suffix}", preset=LOSSLESS, chunks=0.2, on_progress=seen.append)
    assert seen[-1].chunks_total >= 5 and seen[-1].chunks_done == seen[-1].chunks_total
    assert seen[-1].frames_done == one.frames and seen[-1].eta == 0
    a, b = decoded(one.output), decoded(ch.output)
    assert a.shape == b.shape and a.shape[0] == one.frames
    assert np.abs(a - b).max() <= 1
    assert video_times(one.output) == video_times(ch.output)
    assert stream_kinds(one.output) == stream_kinds(ch.output)
    assert set(stream_kinds(ch.output)) >= ({"video", "audio"} if kind == "cuts" else {"video", "audio", "subtitle"})
    assert ch.light == one.light  # MaxCLL / MaxFALL over all chunks
    assert not work_dir(ch.output).exists()
    assert hidden_leftovers(tmp_path) == []


@pytest.mark.slow
def test_shot_condition_carried_over_chunk_boundaries(tmp_path):
    """A learned model with a shot-averaged condition (an untrained Lite, weights shaken so the
    condition matters): boundaries inside a shot still give the one-pass frames (without the
    carried state the frames after each boundary differ by hundreds of codes)."""
    import torch

    from didtv.models.registry import build, save_weights

    torch.manual_seed(0)
    net = build("didlite", {})
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
    weights = save_weights(net, tmp_path / "shaken.safetensors", arch="didlite")
    preset = LOSSLESS.with_overrides(model=str(weights))
    src = make_clip(tmp_path / "shot.mp4", frames=16)
    one = convert(src, tmp_path / "one.mkv", preset=preset, chunks="off", device="cpu")
    ch = convert(src, tmp_path / "ch.mkv", preset=preset, chunks=0.2, device="cpu")
    assert np.abs(decoded(one.output) - decoded(ch.output)).max() <= 1


def _start_cli(src: Path, dst: Path, *extra: str) -> subprocess.Popen:
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.Popen([sys.executable, "-m", "didtv.cli.main", "convert", str(src), str(dst),
                             "--model", "bt2408", "--lossless", "--x265-preset", "ultrafast", "-q", *extra],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def test_killed_conversion_resumes(tmp_path):
    src = make_clip(tmp_path / "long.mp4", frames=150, audio=True)
    dst = tmp_path / "out.mkv"
    work = work_dir(dst)
    proc = _start_cli(src, dst, "--chunks", "0.2")
    _wait_for_a_chunk(proc, work)
    assert proc.poll() is None  # still converting: killed in the middle
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert not dst.exists()
    kept = len(list(work.glob("chunk-*.json")))
    assert 1 <= kept < 30
    seen = []
    resumed = convert(src, dst, preset=LOSSLESS, chunks=0.2, on_progress=seen.append)
    assert seen[0].frames_resumed >= 5 * kept - 5 and seen[0].chunks_done >= kept - 1
    assert not work.exists()
    one = convert(src, tmp_path / "one.mkv", preset=LOSSLESS, chunks="off")
    assert np.array_equal(decoded(resumed.output), decoded(one.output))
    assert video_times(resumed.output) == video_times(one.output)


def _wait_for_a_chunk(proc: subprocess.Popen, work: Path) -> None:
    deadline = time.monotonic() + 120
    while not (work.is_dir() and any(work.glob("chunk-*.json"))):
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "no chunk finished in 120 s"
        time.sleep(0.02)


def test_cli_ctrl_c_keeps_the_chunks_an_error_does_not(tmp_path):
    src = make_clip(tmp_path / "long.mp4", frames=150)
    dst = tmp_path / "out.mkv"
    proc = _start_cli(src, dst, "--chunks", "0.2")
    _wait_for_a_chunk(proc, work_dir(dst))
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "finished chunks kept in" in err, err
    assert work_dir(dst).is_dir() and not dst.exists()
    proc = _start_cli(src, dst, "--chunks", "0.2")
    assert proc.wait(timeout=120) == 0 and dst.is_file() and not work_dir(dst).exists()
    # a damaged input (a different file under the same output name): the CLI removes the chunks
    bad = tmp_path / "bad.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=128x96:rate=25,trim=end_frame=50", "-c:v", "libx264",
            "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", str(bad))
    data = bytearray(bad.read_bytes())
    data[len(data) // 2:len(data) // 2 + 300] = bytes(300)
    bad.write_bytes(bytes(data))
    proc = _start_cli(bad, tmp_path / "bad.mkv", "--chunks", "0.4")
    _, err = proc.communicate(timeout=120)
    assert proc.returncode != 0 and "chunk " in err and not work_dir(tmp_path / "bad.mkv").exists(), err


def test_keep_work_and_the_lock(tmp_path):
    src = make_clip(tmp_path / "v.mp4", frames=12)
    dst = tmp_path / "out.mkv"
    convert(src, dst, preset=LOSSLESS, chunks=0.2, keep_work=True)
    chunks = sorted(p.name for p in work_dir(dst).glob("chunk-*.mkv"))
    assert len(chunks) == 3 and (work_dir(dst) / "plan.json").is_file()
    # A second run over the kept chunks converts nothing again (the chunks verify) ...
    seen = []
    convert(src, dst, preset=LOSSLESS, chunks=0.2, overwrite=True, on_progress=seen.append)
    assert seen[0].frames_resumed == 12 and not work_dir(dst).exists()
    # ... and a conversion whose folder another process holds is refused, its folder left alone
    with Work(tmp_path / "busy.mkv"):
        with pytest.raises(OutputError, match="another didtv is converting"):
            convert(src, tmp_path / "busy.mkv", preset=LOSSLESS, chunks=0.2)
        assert work_dir(tmp_path / "busy.mkv").is_dir()


def test_chunk_decode_failure_names_the_chunk(tmp_path):
    bad = make_damaged_clip(tmp_path)
    dst = tmp_path / "out.mkv"
    with pytest.raises(FFmpegError) as info:
        convert(bad, dst, preset=LOSSLESS, chunks=0.4)
    msg = str(info.value)
    assert "\n" not in msg and "chunk " in msg and "/5 (00:00:0" in msg and "damaged video" in msg, msg
    assert not dst.exists() and not work_dir(dst).exists()
    assert hidden_leftovers(tmp_path) == []
