"""didtv.io.probe on tiny real clips made with the system FFmpeg (tests/clips.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from fractions import Fraction

import numpy as np
import pytest

from clips import HDR10_CLL, requires_ffmpeg
from didtv.errors import ProbeError
from didtv.io.ffmpeg import tool_path
from didtv.io.probe import HdrFormat, VideoInfo, count_frames, probe

pytestmark = requires_ffmpeg


@pytest.mark.parametrize("suffix", [".mp4", ".mkv"])
@pytest.mark.parametrize("kind, hdr, bit_depth, transfer", [
    ("sdr", HdrFormat.SDR, 8, "bt709"),
    ("sdr10", HdrFormat.SDR, 10, "bt709"),
    ("hdr10", HdrFormat.HDR10, 10, "smpte2084"),
    ("pq10", HdrFormat.PQ10, 10, "smpte2084"),
    ("hlg", HdrFormat.HLG, 10, "arib-std-b67"),
])
def test_classification(clip_factory, suffix, kind, hdr, bit_depth, transfer):
    info = probe(clip_factory(f"{kind}{suffix}", kind=kind, frames=3))
    assert isinstance(info, VideoInfo)
    assert info.hdr is hdr
    assert info.is_hdr == (hdr is not HdrFormat.SDR)
    assert info.bit_depth == bit_depth
    assert info.transfer == transfer
    assert info.color_range == "tv"
    assert (info.width, info.height) == (info.display_width, info.display_height) == (64, 48)
    assert info.codec == ("h264" if kind == "sdr" else "hevc")
    assert info.pix_fmt == ("yuv420p" if kind == "sdr" else "yuv420p10le")
    if kind != "sdr":
        assert info.profile == "Main 10"
        assert (info.primaries, info.matrix) == (("bt709", "bt709") if kind == "sdr10" else ("bt2020", "bt2020nc"))
    assert info.rotation == 0 and not info.interlaced and not info.variable_fps
    assert info.hdr10plus is False and info.dolby_vision is None
    if hdr is not HdrFormat.HDR10:
        assert info.mastering_display is None and info.content_light is None
    assert info.container == ("matroska,webm" if suffix == ".mkv" else "mov,mp4,m4a,3gp,3g2,mj2")
    json.dumps(info.to_json(), allow_nan=False)


def test_hdr10_static_metadata_numbers(clip_factory):
    info = probe(clip_factory("hdr10.mkv", kind="hdr10", frames=3))
    md = info.mastering_display
    assert md is not None
    # x265 master-display G(13250,34500)B(7500,3000)R(34000,16000)WP(15635,16450)L(10000000,1)
    assert md.red == pytest.approx((0.680, 0.320), abs=1e-9)
    assert md.green == pytest.approx((0.265, 0.690), abs=1e-9)
    assert md.blue == pytest.approx((0.150, 0.060), abs=1e-9)
    assert md.white == pytest.approx((0.3127, 0.3290), abs=1e-9)
    assert md.max_luminance == pytest.approx(1000.0)
    assert md.min_luminance == pytest.approx(0.0001)
    assert (info.content_light.max_cll, info.content_light.max_fall) == HDR10_CLL
    hdr = info.to_json()["hdr"]
    assert hdr["format"] == "HDR10" and hdr["is_hdr"] is True
    assert hdr["content_light"] == {"max_cll": 1000, "max_fall": 400}
    assert hdr["mastering_display"]["max_luminance"] == pytest.approx(1000.0)


@pytest.mark.parametrize("suffix", [".mp4", ".mkv", ".mov"])
@pytest.mark.parametrize("fps", ["25", "30000/1001", "24000/1001"])
def test_fps_is_exact_fraction(clip_factory, suffix, fps):
    info = probe(clip_factory(f"c{suffix}", fps=fps, frames=12))
    assert isinstance(info.fps, Fraction)
    assert info.fps == Fraction(fps)
    assert info.avg_fps == Fraction(fps)
    assert info.variable_fps is False  # 30000/1001 in Matroska's 1 ms base is 33/34 ms: still CFR
    video = info.to_json()["video"]
    assert video["fps"] == f"{Fraction(fps).numerator}/{Fraction(fps).denominator}"
    assert video["fps_float"] == pytest.approx(float(Fraction(fps)))


def _decode_gray(path, width, height) -> np.ndarray:
    out = subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path),
                          "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "gray", "-"],
                         capture_output=True, check=True).stdout
    assert len(out) == width * height, "ffmpeg's decode size differs from display_width x display_height"
    return np.frombuffer(out, np.uint8).reshape(height, width).astype(int)


@pytest.mark.parametrize("suffix", [".mp4", ".mov"])
@pytest.mark.parametrize("rotate", [90, 180, 270])
def test_rotation_is_what_ffmpeg_applies(clip_factory, suffix, rotate):
    plain = probe(clip_factory(f"plain{suffix}", frames=2))
    rotated = probe(clip_factory(f"rot{suffix}", frames=2, rotate=rotate))
    assert plain.rotation == 0
    assert rotated.rotation == rotate
    assert (rotated.width, rotated.height) == (64, 48)
    expect = (48, 64) if rotate in (90, 270) else (64, 48)
    assert (rotated.display_width, rotated.display_height) == expect
    # rotation = clockwise turn of ffmpeg's auto-rotated decode: check the pixels.
    a = _decode_gray(plain.path, 64, 48)
    r = _decode_gray(rotated.path, rotated.display_width, rotated.display_height)
    assert np.array_equal(r, np.rot90(a, k=-rotate // 90))


def test_streams_listed_with_languages(sdr_clip):
    info = probe(sdr_clip)
    assert info.frame_count == 12
    assert [(s.kind, s.codec, s.language, s.channels) for s in info.audio] == [("audio", "aac", "eng", 2)]
    assert [(s.kind, s.codec, s.language, s.bitmap) for s in info.subtitles] == [
        ("subtitle", "mov_text", "fra", False)]
    assert info.other == ()
    assert {s.index for s in info.audio + info.subtitles} == {1, 2} and info.index == 0
    assert info.duration == pytest.approx(12 / 25, abs=0.03)


def test_streams_in_matroska(clip_factory):
    info = probe(clip_factory("s.mkv", frames=4, audio=True, subtitles=True))
    assert [(s.codec, s.language) for s in info.audio] == [("aac", "eng")]
    assert [(s.codec, s.language) for s in info.subtitles] == [("subrip", "fra")]
    assert info.frame_count is None  # Matroska has no nb_frames: count_frames() is the truth


@pytest.mark.parametrize("name, kind, frames", [("a.mkv", "sdr", 12), ("b.mp4", "hdr10", 7),
                                                ("c.mkv", "hlg", 1)])
def test_count_frames_exact(clip_factory, name, kind, frames):
    path = clip_factory(name, kind=kind, frames=frames, audio=True)
    assert count_frames(path) == frames


def test_vfr_from_timestamps(clip_factory, tmp_path):
    if shutil.which("mkvmerge") is None:
        pytest.skip("mkvmerge not installed (apt-get install mkvtoolnix)")
    cfr = clip_factory("cfr.mkv", frames=30)
    assert probe(cfr).variable_fps is False
    # 15 frames at 25 fps, then 15 at 10 fps: ffprobe still prints one constant rate.
    ts = [i * 40 for i in range(15)] + [560 + (i + 1) * 100 for i in range(15)]
    (tmp_path / "ts.txt").write_text("# timestamp format v2\n" + "".join(f"{t}\n" for t in ts))
    vfr = tmp_path / "vfr.mkv"
    subprocess.run([shutil.which("mkvmerge"), "-q", "-o", str(vfr), "--timestamps",
                    f"0:{tmp_path / 'ts.txt'}", str(cfr)], check=True, capture_output=True)
    info = probe(vfr)
    assert info.fps == info.avg_fps  # the header rates agree ...
    assert info.variable_fps is True  # ... only the timestamps tell
    assert probe(vfr, check_timestamps=False).variable_fps is False
    assert count_frames(vfr) == 30


def test_still_image_probes_without_duration(tmp_path):
    png = tmp_path / "still.png"
    subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=64x48", "-frames:v", "1", str(png)], check=True)
    info = probe(png)
    assert info.still_image is True and info.duration is None
    assert (info.width, info.height, info.codec) == (64, 48, "png")
    assert count_frames(png) == 1


def _one_line_probe_error(path) -> str:
    with pytest.raises(ProbeError) as exc:
        probe(path)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(str(path))
    return msg


def test_not_videos_raise_probe_error(tmp_path):
    text = tmp_path / "notes.txt"
    text.write_text("hello, this is not a video\n")
    assert "not a readable video" in _one_line_probe_error(text)
    # A longer .txt is opened by FFmpeg's tty demuxer as an "ansi" video: still refused.
    long_text = tmp_path / "long.txt"
    long_text.write_text("".join(f"line {i} of some ordinary text for testing\n" for i in range(400)))
    assert "text file" in _one_line_probe_error(long_text)
    fake = tmp_path / "fake.mp4"
    fake.write_text("not an mp4 at all")
    assert "not a readable video" in _one_line_probe_error(fake)
    empty = tmp_path / "empty.mp4"
    empty.touch()
    assert "empty" in _one_line_probe_error(empty)
    assert "no such file" in _one_line_probe_error(tmp_path / "missing.mkv")
    assert "directory" in _one_line_probe_error(tmp_path)
    with pytest.raises(ProbeError):
        count_frames(empty)


def test_audio_only_raises_no_video_stream(tmp_path):
    audio = tmp_path / "tone.m4a"
    subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=duration=0.3", "-c:a", "aac", str(audio)], check=True)
    assert "no video stream" in _one_line_probe_error(audio)
    # Cover art is a video stream with the attached_pic disposition: still audio only.
    png = tmp_path / "cover.png"
    subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "testsrc2=size=32x32", "-frames:v", "1", str(png)], check=True)
    covered = tmp_path / "covered.m4a"
    subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-f", "lavfi", "-i",
                    "sine=duration=0.3", "-i", str(png), "-map", "0", "-map", "1", "-c:a", "aac",
                    "-c:v", "png", "-disposition:v:0", "attached_pic", str(covered)], check=True)
    assert "no video stream" in _one_line_probe_error(covered)


def test_to_json_is_stable_and_serialisable(sdr_clip):
    data = probe(sdr_clip).to_json()
    text = json.dumps(data, allow_nan=False)
    assert json.loads(text) == data
    assert data["schema_version"] == 1
    assert data["video"]["fps"] == "25/1" and data["hdr"]["format"] == "SDR"
    assert data["audio"][0]["language"] == "eng" and data["subtitles"][0]["language"] == "fra"


def test_bit_depth_of_agrees_with_ffmpeg_pix_fmts():
    """bit_depth_of (name-based, pure) against the BIT_DEPTHS column of `ffmpeg -pix_fmts`."""
    from didtv.io.probe import bit_depth_of

    out = subprocess.run([tool_path("ffmpeg"), "-hide_banner", "-pix_fmts"], capture_output=True,
                         text=True, check=True).stdout
    rows = out.split("-----", 1)[1].splitlines()[1:]
    checked = 0
    for row in rows:
        parts = row.split()
        if len(parts) < 5:
            continue
        name, depth = parts[1], max(int(d) for d in parts[4].split("-"))
        if depth < 8 or name.startswith("bayer_"):  # hardware surfaces, <8-bit packed, raw Bayer
            continue
        assert bit_depth_of(name) == depth, name
        checked += 1
    assert checked > 100


def test_container_level_hdr10_metadata(clip_factory):
    """Matroska MasteringMetadata / MaxCLL (written by mkvpropedit) turn a PQ10 clip into HDR10;
    the container's values win over the bitstream's (they are what a converter writes last)."""
    if shutil.which("mkvpropedit") is None:
        pytest.skip("mkvpropedit not installed (apt-get install mkvtoolnix)")
    path = clip_factory("pq.mkv", kind="pq10", frames=2)
    assert probe(path).hdr is HdrFormat.PQ10
    subprocess.run([shutil.which("mkvpropedit"), "-q", str(path), "--edit", "track:v1",
                    "--set", "max-content-light=800", "--set", "max-frame-light=200",
                    "--set", "max-luminance=4000", "--set", "min-luminance=0.005",
                    "--set", "chromaticity-coordinates-red-x=0.708", "--set", "chromaticity-coordinates-red-y=0.292",
                    "--set", "chromaticity-coordinates-green-x=0.17", "--set", "chromaticity-coordinates-green-y=0.797",
                    "--set", "chromaticity-coordinates-blue-x=0.131", "--set", "chromaticity-coordinates-blue-y=0.046",
                    "--set", "white-coordinates-x=0.3127", "--set", "white-coordinates-y=0.329"],
                   check=True, capture_output=True)
    info = probe(path)
    assert info.hdr is HdrFormat.HDR10
    assert (info.content_light.max_cll, info.content_light.max_fall) == (800, 200)
    md = info.mastering_display
    assert md.red == pytest.approx((0.708, 0.292), abs=1e-6)  # Matroska stores float32
    assert md.max_luminance == pytest.approx(4000.0) and md.min_luminance == pytest.approx(0.005, rel=1e-5)


def test_patches_clip_is_lossless_with_exact_bt709_codes(tmp_path):
    """Guards tests/clips.make_patches_clip, which other tests use as colour ground truth."""
    from clips import bt709_limited_codes, make_patches_clip, patch_box

    assert bt709_limited_codes((255, 0, 0)) == (63, 102, 240)  # 16+219*0.2126, 128-224*0.2126/1.8556, 240
    assert bt709_limited_codes((255, 255, 255)) == (235, 128, 128)
    colors = [(255, 255, 255), (0, 0, 0), (200, 30, 40), (20, 180, 60), (30, 40, 210)]
    for suffix in (".mkv", ".mp4"):
        path, codes = make_patches_clip(tmp_path / f"p{suffix}", colors, size=(64, 48), frames=2)
        assert codes == [bt709_limited_codes(c) for c in colors]
        info = probe(path)
        assert (info.matrix, info.transfer, info.primaries, info.color_range) == ("bt709",) * 3 + ("tv",)
        assert count_frames(path) == 2
        raw = subprocess.run([tool_path("ffmpeg"), "-nostdin", "-loglevel", "error", "-i", str(path),
                              "-f", "rawvideo", "-pix_fmt", "yuv420p", "-"], capture_output=True, check=True).stdout
        frames = np.frombuffer(raw, np.uint8).reshape(2, -1)
        for frame in frames:
            y = frame[:64 * 48].reshape(48, 64)
            cb = frame[64 * 48:64 * 48 + 32 * 24].reshape(24, 32)
            cr = frame[64 * 48 + 32 * 24:].reshape(24, 32)
            for k in range(12):  # 4x3 blocks of 16x16 cycle through the colours
                rows, cols = patch_box(k, (64, 48))
                crow, ccol = slice(rows.start // 2, rows.stop // 2), slice(cols.start // 2, cols.stop // 2)
                want = codes[k % len(codes)]
                assert (y[rows, cols] == want[0]).all() and (cb[crow, ccol] == want[1]).all()
                assert (cr[crow, ccol] == want[2]).all()
