"""Bad and unusual input for ``didtv.api.convert``, each with a clear one-line outcome.

Real FFmpeg on tiny generated clips, CPU only, ``bt2408`` + x265 ``ultrafast``. What each case
does is documented in docs/batch.md ("Bad input"). Every failure must leave no output and no
hidden temporary file behind.
"""

from __future__ import annotations

import os
import pickle
import re
import resource
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from clips import make_clip, make_patches_clip, requires_ffmpeg
from didtv.api import convert
from didtv.errors import DidtvError, FFmpegError, ModelError, OutputError, ProbeError, UnsupportedInputError
from didtv.io.decode import decode_argv, tool_safe_path
from didtv.io.ffmpeg import ffprobe_json, tool_path
from didtv.io.probe import HdrFormat, count_frames, probe
from didtv.presets import load_preset

pytestmark = requires_ffmpeg

FAST = load_preset().with_overrides(model="bt2408", x265_preset="ultrafast")
ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------------------------------------
# Clip makers for the cases tests/clips.py does not cover

def _ffmpeg(*args: str, input: bytes | None = None) -> None:
    subprocess.run([tool_path("ffmpeg"), "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
                   check=True, capture_output=True, input=input)


def make_gop_clip(path: Path, *, size=(128, 96), frames=50) -> Path:
    """H.264 with a keyframe every 10 frames: big enough that its middle is picture data."""
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={size[0]}x{size[1]}:rate=25,trim=end_frame={frames}",
            "-c:v", "libx264", "-preset", "ultrafast", "-g", "10", "-pix_fmt", "yuv420p", str(path))
    return path


def corrupt_middle(src: Path, dst: Path, n: int = 300) -> Path:
    data = bytearray(src.read_bytes())
    mid = len(data) // 2
    for i in range(mid, mid + n):
        data[i] = (data[i] * 7 + 13) & 0xFF
    dst.write_bytes(bytes(data))
    return dst


def truncate(src: Path, dst: Path, fraction: float = 0.6) -> Path:
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * fraction)])
    return dst


def make_odd_clip(path: Path, size=(65, 49), frames=3) -> Path:
    """Odd-sized 4:2:0 (FFV1 allows it; x264 does not)."""
    w, h = size
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size={w + 1}x{h + 1}:rate=25,trim=end_frame={frames}",
            "-vf", f"format=rgb24,crop={w}:{h}:0:0", "-c:v", "ffv1", "-pix_fmt", "yuv420p", str(path))
    return path


def make_interlaced_clip(path: Path, frames=6) -> Path:
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=size=64x48:rate=25,trim=end_frame={frames}",
            "-vf", "setfield=tff", "-c:v", "libx264", "-preset", "ultrafast", "-flags", "+ildct+ilme",
            "-x264-params", "log-level=error", "-pix_fmt", "yuv420p", str(path))
    return path


def make_vfr_clip(tmp_path: Path) -> tuple[Path, list[int]]:
    """15 frames 40 ms apart, then 15 frames 100 ms apart (ffprobe's rates still read 10/1)."""
    cfr = make_clip(tmp_path / "cfr.mkv", frames=30, audio=True)
    ts = [i * 40 for i in range(15)] + [560 + (i + 1) * 100 for i in range(15)]
    (tmp_path / "ts.txt").write_text("# timestamp format v2\n" + "".join(f"{t}\n" for t in ts))
    vfr = tmp_path / "vfr.mkv"
    subprocess.run([tool_path("mkvmerge"), "-q", "-o", str(vfr), "--timestamps", f"0:{tmp_path / 'ts.txt'}",
                    str(cfr)], check=True, capture_output=True)
    cfr.unlink()
    (tmp_path / "ts.txt").unlink()
    return vfr, ts


def _video_pts_ms(path: Path) -> list[float]:
    data = ffprobe_json(str(path), "-select_streams", "V:0", "-show_entries", "packet=pts_time")
    return sorted(round(float(p["pts_time"]) * 1000, 3) for p in data["packets"])


def _decode_rgb(path: Path, w: int, h: int) -> np.ndarray:
    """(frames, 3 [G, B, R planes], h, w) float, BT.2020 PQ decoded as stored."""
    out = subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path), "-vf",
                          "zscale=min=2020_ncl:rin=limited:m=2020_ncl:r=full,format=gbrpf32le",
                          "-f", "rawvideo", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(out, "<f4").reshape(-1, 3, h, w)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if "didtv-partial" in p.name)


def _one_line_failure(exc_type, src, dst, preset=FAST, **kwargs) -> str:
    with pytest.raises(exc_type) as info:
        convert(src, dst, preset=preset, **kwargs)
    msg = str(info.value)
    assert "\n" not in msg and msg.strip()
    assert not Path(dst).exists()
    assert _leftovers(Path(dst).parent) == []
    return msg


# ---------------------------------------------------------------------------------------------
# Not a video

def test_text_image_and_audio_are_refused(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a video\n")
    assert "not a readable video" in _one_line_failure(ProbeError, text, tmp_path / "t.mkv")
    png = tmp_path / "still.png"
    _ffmpeg("-f", "lavfi", "-i", "testsrc2=size=64x48", "-frames:v", "1", str(png))
    assert "still image" in _one_line_failure(UnsupportedInputError, png, tmp_path / "p.mkv")
    audio = tmp_path / "tone.m4a"
    _ffmpeg("-f", "lavfi", "-i", "sine=duration=0.3", "-c:a", "aac", str(audio))
    assert "no video stream (audio only)" in _one_line_failure(ProbeError, audio, tmp_path / "a.mkv")


def test_zero_byte_file(tmp_path):
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert "empty file" in _one_line_failure(ProbeError, empty, tmp_path / "o.mkv")


# ---------------------------------------------------------------------------------------------
# Damaged video: never a shorter (or concealed) video as success

@pytest.fixture(scope="module")
def gop_clips(tmp_path_factory):
    d = tmp_path_factory.mktemp("gop")
    mp4 = make_gop_clip(d / "good.mp4")
    mkv = d / "good.mkv"
    _ffmpeg("-i", str(mp4), "-c", "copy", str(mkv))
    faststart = d / "faststart.mp4"
    _ffmpeg("-i", str(mp4), "-c", "copy", "-movflags", "+faststart", str(faststart))
    return {"mp4": mp4, "mkv": mkv, "faststart": faststart}


@pytest.mark.parametrize("kind", ["mp4", "mkv"])
def test_corrupt_stream_in_the_middle_fails(tmp_path, gop_clips, kind):
    # FFmpeg 5.1 without -xerror: the MP4 decodes to all 50 frames (concealed), the MKV to the
    # 44 packets the demuxer still finds (= count_frames): both exit 0. Neither may pass.
    bad = corrupt_middle(gop_clips[kind], tmp_path / f"bad.{kind}")
    msg = _one_line_failure(FFmpegError, bad, tmp_path / "o.mkv")
    assert "damaged video" in msg and "decoding failed at frame" in msg


def test_truncated_matroska_fails(tmp_path, gop_clips):
    # Exit status 0 and 29 frames (= its packet count): only "File ended prematurely" tells.
    cut = truncate(gop_clips["mkv"], tmp_path / "cut.mkv")
    assert count_frames(cut) < 50
    msg = _one_line_failure(FFmpegError, cut, tmp_path / "o.mkv")
    assert "damaged video" in msg and "File ended prematurely" in msg


def test_truncated_mp4_fails(tmp_path, gop_clips):
    # Index at the end (FFmpeg's default): the cut file has no index at all.
    cut = truncate(gop_clips["mp4"], tmp_path / "cut.mp4")
    assert "not a readable video" in _one_line_failure(ProbeError, cut, tmp_path / "o.mkv")
    # Index at the front (faststart): it lists 50 frames, 30 are left.
    cut_fs = truncate(gop_clips["faststart"], tmp_path / "cut-fs.mp4")
    msg = _one_line_failure(FFmpegError, cut_fs, tmp_path / "o.mkv")
    assert re.search(r"truncated: its index lists 50 frames, only \d+ are present", msg)


# ---------------------------------------------------------------------------------------------
# HDR / 10-bit

@pytest.mark.parametrize("kind, name", [("hdr10", "HDR10"), ("pq10", "PQ10"), ("hlg", "HLG")])
def test_hdr_input_refused_unless_forced(tmp_path, kind, name):
    src = make_clip(tmp_path / f"{kind}.mkv", kind=kind, frames=3)
    msg = _one_line_failure(UnsupportedInputError, src, tmp_path / "o.mkv")
    assert f"already {name}" in msg
    if kind == "hlg":  # --force converts anyway (one case is enough)
        res = convert(src, tmp_path / "o.mkv", preset=FAST, force=True)
        assert res.frames == 3 and probe(res.output).hdr == HdrFormat.HDR10


def test_ten_bit_sdr_is_accepted(tmp_path):
    res = convert(make_clip(tmp_path / "s10.mkv", kind="sdr10", frames=3), tmp_path / "o.mkv", preset=FAST)
    assert res.frames == 3 and probe(res.output).bit_depth == 10


# ---------------------------------------------------------------------------------------------
# Accepted with care: interlaced, odd sizes, rotation, variable frame rate, small frames

def test_interlaced_is_deinterlaced_with_bwdif(tmp_path):
    src = make_interlaced_clip(tmp_path / "il.mp4", frames=6)
    info = probe(src)
    assert info.interlaced and info.field_order == "tt"
    assert "bwdif=mode=send_frame" in " ".join(decode_argv(info))
    res = convert(src, tmp_path / "o.mkv", preset=FAST)
    assert res.frames == 6 == count_frames(res.output)  # one progressive frame per frame
    assert probe(res.output).fps == info.fps
    assert any("deinterlaced with bwdif" in w for w in res.warnings)


def test_odd_size_is_padded_to_even_with_repeated_edges(tmp_path):
    src = make_odd_clip(tmp_path / "odd.mkv", size=(65, 49))
    assert (probe(src).width, probe(src).height) == (65, 49)
    res = convert(src, tmp_path / "o.mkv", preset=FAST.with_overrides(lossless=True))
    assert (res.width, res.height) == (66, 50)
    out = probe(res.output)
    assert (out.width, out.height) == (66, 50)
    assert any("padded to 66x50" in w for w in res.warnings)
    rgb = _decode_rgb(res.output, 66, 50)
    # The added column / row repeat their neighbours (up to 4:2:0 chroma interpolation).
    assert np.abs(rgb[..., :, 65] - rgb[..., :, 64]).max() < 0.03
    assert np.abs(rgb[..., 49, :] - rgb[..., 48, :]).max() < 0.03


def test_rotated_input_comes_out_upright(tmp_path):
    # One white 16x16 block top-left in a black 96x64 picture, tagged "turn 90 degrees clockwise".
    colours = [(255, 255, 255)] + [(0, 0, 0)] * 23
    plain, _ = make_patches_clip(tmp_path / "plain.mp4", colours, size=(96, 64), frames=2)
    rotated = tmp_path / "rotated.mp4"
    _ffmpeg("-i", str(plain), "-c", "copy", "-metadata:s:v:0", "rotate=270", str(rotated))  # ccw tag
    info = probe(rotated)
    assert info.rotation == 90 and (info.display_width, info.display_height) == (64, 96)
    res = convert(rotated, tmp_path / "o.mkv", preset=FAST)
    out = probe(res.output)
    assert (out.width, out.height) == (64, 96) and out.rotation == 0
    light = _decode_rgb(res.output, 64, 96)[0].max(axis=0)  # (96, 64)
    # Turned clockwise, the top-left block is now top-right.
    top_right, top_left = light[2:14, 50:62].mean(), light[2:14, 2:14].mean()
    bottom_left = light[82:94, 2:14].mean()
    assert top_right > 0.4 and top_left < 0.1 and bottom_left < 0.1


def test_variable_frame_rate_keeps_source_timing(tmp_path):
    # MP4 output: the re-timed MKV (mkvmerge) and then the remux, both checked at once.
    src, ts = make_vfr_clip(tmp_path)
    assert probe(src).variable_fps
    res = convert(src, tmp_path / "o.mp4", preset=FAST)
    assert res.frames == 30 and any("variable frame rate" in w for w in res.warnings)
    got = _video_pts_ms(res.output)
    first = got[0]
    assert [round(t - first) for t in got] == ts  # every frame at its source time (1 ms)
    assert len(probe(res.output).audio) == 1


def test_constant_rate_is_not_retimed(tmp_path):
    src = make_clip(tmp_path / "ntsc.mp4", frames=8, fps="30000/1001")
    res = convert(src, tmp_path / "o.mkv", preset=FAST)
    assert not any("variable frame rate" in w for w in res.warnings)
    gaps = np.diff(_video_pts_ms(res.output))
    assert np.abs(gaps - 1001 / 30).max() <= 1.0  # Matroska's 1 ms steps: 33 or 34 ms


@pytest.mark.parametrize("size", [(8, 8), (2, 2), (64, 8)])
def test_frames_smaller_than_x265_minimum_are_refused(tmp_path, size):
    src = make_clip(tmp_path / "tiny.mkv", size=size, frames=2, codec="ffv1")
    msg = _one_line_failure(UnsupportedInputError, src, tmp_path / "o.mkv")
    assert f"is {size[0]}x{size[1]}: too small" in msg and "16x16" in msg


@pytest.mark.parametrize("size", [(16, 16), (48, 64)])
def test_small_and_narrow_frames_work(tmp_path, size):
    # 48 wide: Debian's x265 3.5 aborts with AVX2 on 10-bit pictures 34-48 wide; didtv turns
    # its assembly off below 64 pixels.
    src = make_clip(tmp_path / "small.mkv", size=size, frames=4, codec="ffv1")
    res = convert(src, tmp_path / "o.mkv", preset=FAST)
    assert (res.width, res.height) == size and count_frames(res.output) == 4


# ---------------------------------------------------------------------------------------------
# Output problems

def test_output_folder_missing_or_a_file(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    with pytest.raises(OutputError, match="does not exist"):
        convert(src, tmp_path / "nope" / "o.mkv", preset=FAST)
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="does not exist"):
        convert(src, tmp_path / "file" / "o.mkv", preset=FAST)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs Linux /proc")
def test_output_folder_not_writable(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    # /proc refuses new files even to root (for whom access() always says yes).
    with pytest.raises(OutputError, match="not writable") as exc:
        convert(src, "/proc/didtv-test-output.mkv", preset=FAST)
    assert "\n" not in str(exc.value)
    if os.geteuid() != 0:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="not writable"):
                convert(src, ro / "o.mkv", preset=FAST)
        finally:
            ro.chmod(0o755)


def test_file_size_limit_is_one_line_and_leaves_nothing(tmp_path):
    # RLIMIT_FSIZE (soft limit, restored after): FFmpeg inherits it and dies of SIGXFSZ; Python
    # itself ignores SIGXFSZ (its own writes would get EFBIG).
    src = make_clip(tmp_path / "in.mp4", size=(320, 240), frames=20)
    out = tmp_path / "out"
    out.mkdir()
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))
    try:
        with pytest.raises(OutputError) as exc:
            convert(src, out / "o.mkv", preset=FAST)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert str(exc.value) == f"cannot write {out / 'o.mkv'}: file size limit exceeded (SIGXFSZ; ulimit -f)"
    assert list(out.iterdir()) == []


def _mount_tmpfs(path: Path, size: str) -> bool:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        return False
    path.mkdir()
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_disk_full_is_one_line_and_leaves_nothing(tmp_path):
    # FFmpeg 5.1 exits 0 after "Error writing trailer ...: No space left on device".
    small = tmp_path / "small"
    if not _mount_tmpfs(small, "64k"):
        pytest.skip("needs root and mount to make a small tmpfs (RLIMIT_FSIZE test covers the rest)")
    try:
        src = make_clip(tmp_path / "in.mp4", size=(320, 240), frames=10)
        msg = _one_line_failure(OutputError, src, small / "o.mkv", preset=FAST.with_overrides(lossless=True))
        assert "no space left on device" in msg
        assert list(small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], capture_output=True)


# ---------------------------------------------------------------------------------------------
# Tools missing or incomplete: refused before any work, saying what to install

def _fake_ffmpeg(path: Path, encoders: str, filters: str) -> Path:
    path.write_text(f"#!{sys.executable}\nimport sys\n"
                    f"print({encoders!r} if '-encoders' in sys.argv else {filters!r})\n")
    path.chmod(0o755)
    return path


def test_ffmpeg_missing_or_lacking_features(tmp_path, monkeypatch):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    monkeypatch.setenv("DIDTV_FFMPEG", str(tmp_path / "no-such-ffmpeg"))
    with pytest.raises(FFmpegError, match="ffmpeg not found") as exc:
        convert(src, tmp_path / "o.mkv", preset=FAST)
    assert "apt-get install ffmpeg" in exc.value.hint
    fake = _fake_ffmpeg(tmp_path / "ffmpeg-no-x265", " V....D libx264              H.264\n",
                        " ... zscale            V->V       Apply resizing\n")
    monkeypatch.setenv("DIDTV_FFMPEG", str(fake))
    with pytest.raises(FFmpegError, match="lacks libx265") as exc:
        convert(src, tmp_path / "o.mkv", preset=FAST)
    assert "apt-get install ffmpeg" in exc.value.hint and "zscale" not in str(exc.value)
    fake2 = _fake_ffmpeg(tmp_path / "ffmpeg-bare", " V....D libx265  H.265\n", " ... scale  V->V  x\n")
    monkeypatch.setenv("DIDTV_FFMPEG", str(fake2))
    with pytest.raises(FFmpegError, match="lacks zscale"):
        convert(src, tmp_path / "o.mkv", preset=FAST)
    monkeypatch.delenv("DIDTV_FFMPEG")
    monkeypatch.setenv("DIDTV_MKVPROPEDIT", str(tmp_path / "none"))
    with pytest.raises(FFmpegError, match="mkvpropedit not found") as exc:
        convert(src, tmp_path / "o.mkv", preset=FAST)
    assert "mkvtoolnix" in exc.value.hint
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith("ffmpeg")) == ["in.mp4"]


# ---------------------------------------------------------------------------------------------
# Weights: unreadable, tampered, pickled: refused before any work, never unpickled

def _weights_cases(tmp_path: Path) -> dict[str, Path]:
    import torch
    from safetensors.torch import save_file

    cases = {}
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(os.urandom(256))
    cases["garbage"] = garbage
    marker = tmp_path / "UNPICKLED"

    class Evil:  # unpickling it would create the marker file
        def __reduce__(self):
            return (open, (str(marker), "w"))

    pickled = tmp_path / "pickled.safetensors"
    pickled.write_bytes(pickle.dumps({"weights": Evil()}))
    cases["pickle"] = pickled
    good_meta = {"didtv.format": "1", "didtv.arch": "bt2408", "didtv.config": "{}"}
    tampered = tmp_path / "tampered.safetensors"
    save_file({"w": torch.zeros(4)}, str(tampered), metadata=good_meta)
    data = bytearray(tampered.read_bytes())
    data[0] ^= 0xFF  # header length byte: the JSON header no longer parses
    tampered.write_bytes(bytes(data))
    cases["tampered"] = tampered
    truncated = tmp_path / "truncated.safetensors"
    save_file({"w": torch.zeros(1000)}, str(truncated), metadata=good_meta)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    cases["truncated"] = truncated
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(4)}, str(foreign), metadata={**good_meta, "didtv.arch": "os:system"})
    cases["foreign arch"] = foreign
    unfit = tmp_path / "unfit.safetensors"
    save_file({"w": torch.zeros(4)}, str(unfit), metadata=good_meta)  # bt2408 has no tensors
    cases["wrong tensors"] = unfit
    return cases


def test_bad_weights_are_refused_before_any_work(tmp_path):
    src = make_clip(tmp_path / "in.mp4", frames=2)
    wdir = tmp_path / "w"
    wdir.mkdir()
    out = tmp_path / "out"
    out.mkdir()
    for name, path in _weights_cases(wdir).items():
        with pytest.raises(ModelError) as exc:
            convert(src, out / "o.mkv", preset=FAST, model=str(path))
        assert "\n" not in str(exc.value), name
        assert list(out.iterdir()) == [], name
    assert not (wdir / "UNPICKLED").exists()  # never unpickled


def test_bad_weights_via_cli_exit_5(tmp_path):
    from click.testing import CliRunner

    from didtv.cli.main import cli

    src = make_clip(tmp_path / "in.mp4", frames=2)
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x00" * 64)
    res = CliRunner().invoke(cli, ["convert", str(src), str(tmp_path / "o.mkv"), "--model", str(bad)])
    assert res.exit_code == ModelError.exit_code
    assert res.output.startswith("didtv: error: weights file") and not (tmp_path / "o.mkv").exists()


# ---------------------------------------------------------------------------------------------
# Safety: names, no shell, no pickle

@pytest.mark.parametrize("name", ["-x.mp4", "pipe:1 it's \"q\" ü.mp4"])
def test_awkward_relative_names(tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / name, frames=2)
    out = "-" + name.replace(".mp4", ".mkv").lstrip("-")
    res = convert(name, out, preset=FAST)
    assert res.frames == 2 and probe(tool_safe_path(out)).hdr == HdrFormat.HDR10


def test_decode_argv_never_takes_a_name_for_an_option(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    make_clip(tmp_path / "-x.mp4", frames=1)
    info = probe(tool_safe_path("-x.mp4"))
    argv = decode_argv(info)
    assert argv[argv.index("-i") + 1] == "./-x.mp4"
    assert "-x.mp4" not in argv
    assert tool_safe_path("/abs/-y.mkv") == "/abs/-y.mkv" and tool_safe_path("concat:a|b") == "./concat:a|b"


def test_no_shell_and_no_pickle_in_the_library():
    bad = re.compile(r"shell\s*=\s*True|os\.system\(|os\.popen\(|(?<![.\w])eval\(|pickle\.loads?\(|"
                     r"torch\.load\((?![^)]*weights_only\s*=\s*True)")
    hits = []
    for path in (ROOT / "didtv").rglob("*.py"):
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if bad.search(line) and not line.lstrip().startswith("#"):
                hits.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert hits == []


def test_unexpected_errors_are_didtv_errors():
    # Everything above is a DidtvError subclass: the CLI prints one line, never a traceback.
    for exc in (FFmpegError, ModelError, OutputError, ProbeError, UnsupportedInputError):
        assert issubclass(exc, DidtvError)
