"""Presets: the shipped files, the strict schema, overrides, tone targets reaching models, and
the downscale geometry (no FFmpeg needed)."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest
from clips import requires_ffmpeg

from didtv.io.decode import fit_height
from didtv.presets import (DEFAULT_PRESET, PresetError, ToneTargets, load_preset, load_preset_model,
                           preset_from_dict, preset_paths)

SHIPPED = ("archival", "hdr10-1000", "hdr10-4000", "preview", "streaming")


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mine.toml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_presets_load_with_a_short_description(name):
    preset = load_preset(name)
    assert preset.name == name
    assert 0 < len(preset.description) <= 70 and "\n" not in preset.description
    assert preset.tone.diffuse_white == 203.0
    assert preset.tone.diffuse_white <= preset.tone.peak <= preset.encode.mastering.max_luminance


def test_every_shipped_preset_is_listed_and_default_exists():
    assert set(SHIPPED) <= set(preset_paths())
    assert load_preset(None).name == DEFAULT_PRESET == "hdr10-1000"


def test_preset_decisions():
    p4000 = load_preset("hdr10-4000").encode.mastering
    assert (p4000.max_luminance, p4000.min_luminance) == (4000.0, 0.005)
    assert p4000.red == (0.680, 0.320)  # P3-D65, see the file for why
    assert "L(40000000,50)" in p4000.x265()

    preview = load_preset("preview")
    assert preview.max_height == 540 and preview.encode.preset == "ultrafast"

    archival = load_preset("archival")
    assert archival.encode.lossless and "lossless=1" in archival.encode.x265_param_string()

    streaming = load_preset("streaming")
    params = streaming.encode_for(Fraction(30000, 1001)).x265_param_string().split(":")
    assert {"vbv-maxrate=20000", "vbv-bufsize=40000", "open-gop=0", "keyint=60"} <= set(params)
    assert streaming.encode.crf == 20


def test_encode_for_keyint_follows_the_frame_rate():
    streaming = load_preset("streaming")
    assert "keyint=50" in streaming.encode_for(25).x265_params
    assert "keyint=48" in streaming.encode_for(Fraction(24000, 1001)).x265_params
    assert load_preset("hdr10-1000").encode_for(25) == load_preset("hdr10-1000").encode  # no keyint


@pytest.mark.parametrize(
    "text, needles",
    [
        ('colour = "red"\n', ["unknown key colour", "allowed: description, model", "[encoder]"]),
        ("[encoder]\nspeed = 3\n", ["unknown key encoder.speed", "encoder.crf", "encoder.x265_preset"]),
        ("[grading]\nx = 1\n", ["unknown table [grading]", "tone, encoder, mastering, output"]),
        ('[encoder]\ncrf = "18"\n', ["encoder.crf", "wrong type", "a number"]),
        ("[encoder]\nlossless = 1\n", ["encoder.lossless", "true or false"]),
        ("[encoder]\ncrf = true\n", ["encoder.crf", "a number"]),
        ("[encoder]\ncrf = 60\n", ["encoder.crf = 60", "0 to 51"]),
        ('[encoder]\nx265_preset = "warp9"\n', ["encoder.x265_preset = 'warp9'", "ultrafast", "placebo"]),
        ('[mastering]\nprimaries = "rec2100"\n', ["mastering.primaries", "p3-d65, bt2020, bt709"]),
        ("[mastering]\nmax_luminance = 20000\n", ["mastering.max_luminance", "<= 10000"]),
        ("[tone]\npeak = 2000\n", ["tone.peak = 2000", "mastering.max_luminance (1000)"]),
        ("[tone]\ndiffuse_white = 0\n", ["tone.diffuse_white", "1 to 10000"]),
        ("[tone]\nwhite = 203\n", ["unknown key tone.white", "tone.diffuse_white, tone.peak"]),
        ("[encoder]\nvbv_maxrate = 10000\n", ["vbv_maxrate and encoder.vbv_bufsize go together"]),
        ("[encoder]\nvbv_maxrate = 1.5\nvbv_bufsize = 3\n", ["encoder.vbv_maxrate", "an integer"]),
        ("[encoder]\nlossless = true\nvbv_maxrate = 1\nvbv_bufsize = 2\n", ["lossless", "one of them"]),
        ("[encoder]\nkeyint_seconds = 0\n", ["encoder.keyint_seconds", "more than 0"]),
        ('[encoder]\nx265_params = ["hdr10=0"]\n', ["'hdr10'", "didtv controls"]),
        ('[encoder]\nx265_params = ["aq-mode"]\n', ["x265_params item", "key=value"]),
        ('[encoder]\nx265_params = "aq-mode=3"\n', ["encoder.x265_params", "a list of strings"]),
        ("[output]\nmax_height = 8\n", ["output.max_height = 8", "integer >= 16"]),
        ('model = "nosuch"\n', ["model = 'nosuch'", "auto", "bt2408", "tiny", ".safetensors"]),
        ("description = [\n", ["not valid TOML"]),
    ],
)
def test_bad_preset_names_the_key_and_allowed_values(tmp_path, text, needles):
    with pytest.raises(PresetError) as err:
        load_preset(_write(tmp_path, text))
    message = str(err.value)
    assert str(tmp_path / "mine.toml") in message
    for needle in needles:
        assert needle in message, (needle, message)
    assert err.value.exit_code == 2


def test_unknown_preset_name_lists_the_choices():
    with pytest.raises(PresetError) as err:
        load_preset("nosuchpreset")
    assert "unknown preset" in str(err.value) and "streaming" in err.value.hint


def test_minimal_preset_takes_defaults(tmp_path):
    p = load_preset(_write(tmp_path, 'description = "x"\n[mastering]\nmax_luminance = 600\n'))
    assert p.model == "auto" and p.encode.crf == 18 and p.encode.preset == "medium"
    assert p.tone == ToneTargets(203.0, 600.0)  # peak defaults to the mastering peak
    assert p.max_height is None and p.keyint_seconds is None and p.encode.x265_params == ()


def test_custom_x265_params_are_appended(tmp_path):
    p = load_preset(_write(tmp_path, '[encoder]\nx265_params = ["aq-mode=3", "psy-rd=2.0"]\n'))
    assert p.encode.x265_param_string().endswith(":aq-mode=3:psy-rd=2.0")


def test_overrides_replace_single_fields():
    base = load_preset("streaming")
    p = base.with_overrides(model="bt2446a", crf=16, x265_preset="slow", max_height=360)
    assert (p.model, p.encode.crf, p.encode.preset, p.max_height) == ("bt2446a", 16, "slow", 360)
    assert p.encode.x265_params == base.encode.x265_params and p.tone == base.tone
    assert base.with_overrides() == base
    with pytest.raises(PresetError, match="x265 preset"):
        base.with_overrides(x265_preset="warp9")
    with pytest.raises(PresetError, match="max_height"):
        base.with_overrides(max_height=4)


def test_to_json_is_complete_and_stable():
    doc = load_preset("streaming").to_json()
    assert list(doc) == ["name", "path", "description", "model", "tone", "encoder", "mastering", "output"]
    assert doc["encoder"] == {"x265_preset": "medium", "crf": 20.0, "lossless": False, "keyint_seconds": 2.0,
                              "x265_params": ["vbv-maxrate=20000", "vbv-bufsize=40000", "open-gop=0"]}
    assert doc["mastering"]["primaries"] == "p3-d65" and doc["output"] == {"max_height": None}
    assert load_preset("archival").to_json()["encoder"]["crf"] is None


def test_summaries():
    assert load_preset("hdr10-4000").summary_mastering() == "P3-D65 4000/0.005 cd/m2"
    assert load_preset("preview").summary_encoder() == "x265 ultrafast CRF 23, max 540p"
    s = load_preset("streaming").summary_encoder()
    assert "20 Mbit/s" in s and "keyint 2 s" in s and "closed GOP" in s


# --- tone targets reach analytic models only --------------------------------------------------

def test_diffuse_white_reaches_bt2408(tmp_path):
    torch = pytest.importorskip("torch")
    p = load_preset(_write(tmp_path, "[tone]\ndiffuse_white = 300\npeak = 1000\n"))
    name, model = load_preset_model(p, "bt2408")
    assert name == "bt2408" and model.white == 300.0 and not model.training
    white = torch.ones(1, 1, 3, 2, 2)
    from didtv.color.transfer import pq_eotf

    assert float(pq_eotf(model(white))[0, 1, 0, 0]) == pytest.approx(300.0, rel=1e-4)
    _, default = load_preset_model(load_preset(), "bt2408")
    assert default.white == 203.0


def test_models_without_tone_keywords_are_untouched():
    pytest.importorskip("torch")
    p = load_preset("hdr10-4000")
    name, model = load_preset_model(p, "bt2446a")
    assert name == "bt2446a" and model.config == {}
    name, model = load_preset_model(p.with_overrides(model="auto"))  # on the CPU: Lite
    assert name == "lite" and model.spec.name == "lite"
    name, model = load_preset_model(p.with_overrides(model="auto"), device="cpu")
    assert name == "lite"


def test_tone_keywords_mapping():
    t = ToneTargets(250.0, 4000.0)
    assert t.model_keywords({"white", "x"}) == {"white": 250.0}
    assert t.model_keywords({"white", "peak"}) == {"white": 250.0, "peak": 4000.0}
    assert t.model_keywords(set()) == {}


def test_preset_from_dict_without_a_file():
    p = preset_from_dict({"encoder": {"crf": 22}}, name="inline")
    assert p.name == "inline" and p.encode.crf == 22 and p.path is None


# --- downscale geometry -----------------------------------------------------------------------

@pytest.mark.parametrize(
    "size, max_height, expected",
    [
        ((1920, 1080), 540, (960, 540)),
        ((3840, 2160), 540, (960, 540)),
        ((1280, 720), 540, (960, 540)),
        ((640, 272), 540, (640, 272)),     # not taller: unchanged
        ((640, 272), 200, (470, 200)),     # 470.6 -> nearest even
        ((1080, 1920), 540, (304, 540)),   # portrait
        ((720, 576), 541, (676, 540)),     # odd limit -> even height
        ((1921, 1081), None, (1921, 1081)),
        ((64, 48), 32, (42, 32)),
    ],
)
def test_fit_height(size, max_height, expected):
    assert fit_height(*size, max_height) == expected
    w, h = fit_height(*size, max_height)
    if (w, h) != size:
        assert w % 2 == 0 and h % 2 == 0


@requires_ffmpeg
def test_decode_argv_resizes_in_the_same_zscale(tmp_path):
    from didtv.io.decode import decode_argv
    from didtv.io.probe import parse_probe

    raw = {
        "format": {"format_name": "mov,mp4", "duration": "1.0"},
        "streams": [{"index": 0, "codec_type": "video", "codec_name": "h264", "width": 1920,
                     "height": 1080, "pix_fmt": "yuv420p", "r_frame_rate": "25/1",
                     "avg_frame_rate": "25/1", "color_space": "bt709", "color_range": "tv"}],
    }
    info = parse_probe(str(tmp_path / "x.mp4"), raw, {})
    argv = decode_argv(info, (960, 540))  # looks ffmpeg up (tool_path): hence requires_ffmpeg
    plain = decode_argv(info)
    vf = argv[argv.index("-vf") + 1]
    assert vf.startswith("zscale=w=960:h=540:f=spline36:min=709:") and vf.count("zscale") == 1
    assert "w=" not in plain[plain.index("-vf") + 1]
    assert decode_argv(info, (1920, 1080)) == plain  # the same size: no resize
