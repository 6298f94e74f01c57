"""DIDNet as a whole (didtv/models/didnet.py) and its registry entries."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F

from didtv.errors import ModelError
from didtv.models import registry
from didtv.models.didnet import (
    FULL_CONFIG,
    TINY_CONFIG,
    DIDNet,
    clamp01,
    count_parameters,
    flops_breakdown,
    gflops_1080p,
    sdr_to_pq_bt2408,
)

PAPER_PARAMS = 527_000  # Table VII: 0.527M


def _frames(b=2, h=16, w=24, seed=0):
    return torch.rand(b, 7, 3, h, w, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return DIDNet(**TINY_CONFIG).eval()


# -- configurations, size, cost -----------------------------------------------------------------


def test_full_parameter_count_is_close_to_the_paper():
    n = count_parameters(FULL_CONFIG)
    assert abs(n - PAPER_PARAMS) / PAPER_PARAMS < 0.05, n


def test_tiny_costs_at_most_40_percent_of_full():
    assert gflops_1080p(TINY_CONFIG) <= 0.4 * gflops_1080p(FULL_CONFIG)
    assert count_parameters(TINY_CONFIG) < count_parameters(FULL_CONFIG)


def test_registry_configs_are_the_module_configs():
    assert dict(registry.get_info("full").config) == FULL_CONFIG
    assert dict(registry.get_info("tiny").config) == TINY_CONFIG
    assert registry.get_info("full").weights == "didnet-full.safetensors"
    assert registry.get_info("tiny").weights == "didnet-tiny.safetensors"
    assert registry.get_info("tiny").learned


def test_a_model_without_weights_says_why(tmp_path, monkeypatch):
    # Full is registered (it trains, and a weights file put in didtv/weights/ is used) but its
    # weights are not shipped: asking for it says so, in one line with a way out
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ModelError) as full:
        registry.load_model("full")
    assert "not shipped" in str(full.value) and "\n" not in str(full.value)
    assert "--model lite, tiny or bt2408" in full.value.hint
    with pytest.raises(ModelError, match="no trained weights yet"):
        registry.load_model("tiny")


def test_the_package_ships_lite_and_tiny_weights_and_not_full():
    assert registry.get_info("lite").weights_present() and registry.get_info("tiny").weights_present()
    assert not (registry.WEIGHTS_DIR / "didnet-full.safetensors").exists()


def test_config_is_json_and_rebuilds_the_same_network(tiny):
    assert json.loads(json.dumps(tiny.config)) == tiny.config
    again = DIDNet(**tiny.config)
    assert again.config == tiny.config
    assert {k: v.shape for k, v in again.state_dict().items()} == {k: v.shape for k, v in tiny.state_dict().items()}


def test_spec(tiny):
    spec = tiny.spec
    assert (spec.name, spec.window, spec.multiple_of, spec.supports_half, spec.learned) == ("tiny", 7, 8, True, True)
    assert spec.tile == 512 and spec.tile % spec.multiple_of == 0
    assert DIDNet(**{**TINY_CONFIG, "offset_depth": 2}).spec.multiple_of == 4


@pytest.mark.parametrize("config", [TINY_CONFIG, {**FULL_CONFIG, "modulation": "feature", "dmc_kernel": 3}],
                         ids=["tiny", "full-feature-3x3"])
def test_analytic_flops_match_flop_counter(config):
    """Everything torch.utils.flop_counter sees is counted the same way; on top of it the
    analytic count adds deformable sampling (9 FLOPs per sampled value) and the modulation."""
    from torch.utils.flop_counter import FlopCounterMode

    torch.manual_seed(0)
    model = DIDNet(**config)
    h, w = 16, 24
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(_frames(1, h, w))
    dcn = model.tsaf.dcn
    sampling = dcn.in_channels * dcn.taps * h * w * 9
    modulation = sum(layer.flops(h, w) - 2 * layer.out_channels * layer.in_channels * layer.kernel_size**2 * h * w
                     for layer in model.dmc)
    # the native DCN (CPU inference) adds its bias inside the weight matmul, as one more column of
    # ones: the counter sees 2 FLOPs per output value there that the model's count leaves out
    from didtv.models.align import native_deform_available

    bias_row = 2 * dcn.out_channels * h * w if native_deform_available() and dcn.bias is not None else 0
    assert counter.get_total_flops() - bias_row == flops_breakdown(model, h, w)["total"] - sampling - modulation


# -- forward ------------------------------------------------------------------------------------


@pytest.mark.parametrize("config", [FULL_CONFIG, TINY_CONFIG], ids=["full", "tiny"])
def test_shapes_and_range(config):
    torch.manual_seed(0)
    model = DIDNet(**config).eval()
    with torch.no_grad():
        hdr, sdr = model(_frames(2, 16, 24))
    assert hdr.shape == sdr.shape == (2, 3, 16, 24)
    assert hdr.dtype == sdr.dtype == torch.float32
    assert 0 <= hdr.min() and hdr.max() <= 1 and 0 <= sdr.min() and sdr.max() <= 1


def test_starts_close_to_the_analytic_mapping(tiny):
    frames = _frames()
    with torch.no_grad():
        hdr, sdr = tiny(frames)
    assert (hdr - sdr_to_pq_bt2408(frames[:, 3])).abs().max() < 0.05
    assert (sdr - frames[:, 3]).abs().max() < 0.1


@pytest.mark.parametrize(
    "change",
    [{"use_ffe": False}, {"condition": "2d"}, {"modulation": "feature"}, {"aux_head": False}, {"dmc_kernel": 3}],
    ids=lambda c: "-".join(f"{k}={v}" for k, v in c.items()),
)
def test_ablation_switches(change):
    torch.manual_seed(0)
    model = DIDNet(**{**TINY_CONFIG, **change}).eval()
    with torch.no_grad():
        hdr, sdr = model(_frames(1, 8, 16))
    assert hdr.shape == (1, 3, 8, 16)
    assert (sdr is None) == (change.get("aux_head") is False)
    assert model.config[next(iter(change))] == next(iter(change.values()))


def test_kernel_and_feature_modulation_give_the_same_network():
    torch.manual_seed(0)
    kernel = DIDNet(**TINY_CONFIG).eval()
    feature = DIDNet(**{**TINY_CONFIG, "modulation": "feature"}).eval()
    feature.load_state_dict(kernel.state_dict())
    frames = _frames()
    with torch.no_grad():
        torch.testing.assert_close(kernel(frames)[0], feature(frames)[0], rtol=0, atol=1e-5)


def test_a_given_condition_replaces_the_computed_one(tiny):
    frames = _frames()
    with torch.no_grad():
        cond = tiny.condition_vector(frames)
        assert cond.shape == (2, TINY_CONFIG["cond_size"])
        torch.testing.assert_close(tiny(frames, cond)[0], tiny(frames)[0], rtol=0, atol=0)
        # one shared (e.g. shot-averaged) condition for the whole batch
        shared = cond.mean(0, keepdim=True).expand(2, -1)
        assert tiny(frames, shared)[0].shape == (2, 3, 16, 24)


@pytest.mark.parametrize(
    "shape, match",
    [((2, 3, 16, 16), "b, 7, 3"), ((1, 5, 3, 16, 16), "b, 7, 3"), ((1, 7, 1, 16, 16), "b, 7, 3"),
     ((1, 7, 3, 12, 16), "multiples of 8"), ((1, 7, 3, 16, 20), "multiples of 8")],
)
def test_wrong_shapes_raise_value_error(tiny, shape, match):
    with pytest.raises(ValueError, match=match):
        tiny(torch.rand(*shape))


def test_wrong_condition_shape_raises(tiny):
    with pytest.raises(ValueError, match="cond"):
        tiny(_frames(), torch.zeros(2, 5))


def test_float32_and_bfloat16_autocast(tiny):
    frames = _frames(1, 8, 16)
    with torch.no_grad():
        ref, _ = tiny(frames)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            hdr, sdr = tiny(frames)
    assert hdr.dtype == torch.float32 and sdr.dtype == torch.float32  # PQ needs > 8 bits
    assert torch.isfinite(hdr).all() and torch.isfinite(sdr).all()
    assert (hdr - ref).abs().max() < 2e-2


# -- training signals ---------------------------------------------------------------------------


def test_gradients_reach_every_parameter():
    """One backward on a random batch reaches every parameter except the offset U-Net's trunk:
    its output layer is zero-initialised (offsets start at 0), so at step 0 it passes no
    gradient backwards -- but it receives one itself, and after one optimiser step everything
    trains."""
    torch.manual_seed(0)
    model = DIDNet(**TINY_CONFIG).train()
    frames, target_hdr, target_sdr = _frames(), torch.rand(2, 3, 16, 24), torch.rand(2, 3, 16, 24)

    def step():
        model.zero_grad()
        hdr, sdr = model(frames)
        (0.8 * F.l1_loss(hdr, target_hdr) + 0.2 * F.l1_loss(sdr, target_sdr)).backward()
        return {n: (p.grad is not None and bool(p.grad.abs().sum() > 0)) for n, p in model.named_parameters()}

    first = step()
    trunk = {n for n in first if n.startswith("tsaf.offsets.") and not n.startswith("tsaf.offsets.out.")}
    assert first["tsaf.offsets.out.weight"] and first["tsaf.offsets.out.bias"]
    assert all(first[n] for n in first if n not in trunk), [n for n in first if not first[n] and n not in trunk]
    with torch.no_grad():
        for p in model.parameters():
            if p.grad is not None:
                p -= 0.05 * p.grad
    second = step()
    assert all(second.values()), [n for n, ok in second.items() if not ok]


def test_clamp01_bounds_forward_and_passes_gradient():
    y = torch.tensor([-0.5, 0.3, 1.7], requires_grad=True)
    out = clamp01(y)
    assert out.tolist() == pytest.approx([0.0, 0.3, 1.0])
    out.sum().backward()
    assert y.grad.tolist() == [1.0, 1.0, 1.0]


def test_sdr_to_pq_reference_values():
    """BT.2408: SDR white -> 203 cd/m2 -> PQ 0.5807; 100 cd/m2 -> PQ 0.5081 (colour-science)."""
    white = sdr_to_pq_bt2408(torch.ones(1, 3, 1, 1, dtype=torch.float64))
    assert white.flatten().tolist() == pytest.approx([0.5807] * 3, abs=1e-4)
    v = (100 / 203) ** (1 / 2.4)
    grey = sdr_to_pq_bt2408(torch.full((1, 3, 1, 1), v, dtype=torch.float64))
    assert grey.flatten().tolist() == pytest.approx([0.5081] * 3, abs=1e-4)
    assert sdr_to_pq_bt2408(torch.zeros(1, 3, 1, 1)).max() < 1e-6


def test_sdr_to_pq_agrees_with_the_bt2408_model():
    """Same mapping, float32, different order of operations (written-out matrix vs matmul): up to
    5e-6 apart on an Intel Xeon (AVX-512), 1e-6 on an AMD EPYC; 2e-5 PQ is 0.02 ten-bit codes."""
    from didtv.models.analytic import BT2408

    frames = _frames(2, 8, 8)
    torch.testing.assert_close(sdr_to_pq_bt2408(frames[:, 3]), BT2408()(frames[:, 3:4]), rtol=0, atol=2e-5)


# -- weights files --------------------------------------------------------------------------------


def test_save_and_load_roundtrip(tiny, tmp_path):
    path = registry.save_weights(tiny, tmp_path / "tiny.safetensors", arch="didnet")
    loaded = registry.load_model(path)
    assert isinstance(loaded, DIDNet) and not loaded.training
    assert loaded.config == tiny.config and loaded.spec == tiny.spec
    frames = _frames()
    with torch.no_grad():
        for a, b in zip(tiny(frames), loaded(frames)):
            assert torch.equal(a, b)


def test_registered_name_loads_weights_from_the_weights_dir(tiny, tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    registry.save_weights(tiny, tmp_path / "didnet-tiny.safetensors", arch="didnet")
    loaded = registry.load_model("tiny")
    frames = _frames()
    with torch.no_grad():
        assert torch.equal(loaded(frames)[0], tiny(frames)[0])


def test_missing_weights_raise_model_error(tmp_path, monkeypatch):
    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(ModelError, match="no trained weights"):
        registry.load_model("tiny")
    model = registry.load_model("tiny", pretrained=False)
    assert isinstance(model, DIDNet) and model.spec.name == "tiny"


def test_damaged_file_raises_model_error_naming_it(tmp_path):
    bad = tmp_path / "damaged.safetensors"
    bad.write_bytes(b"this is not a safetensors file")
    with pytest.raises(ModelError, match="damaged.safetensors"):
        registry.load_model(bad)


def test_incompatible_file_raises_model_error_naming_it(tiny, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    good = registry.save_weights(tiny, tmp_path / "tiny.safetensors", arch="didnet")
    with safe_open(str(good), framework="pt") as f:
        meta, state = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    # metadata claims the full network, tensors are the tiny one's
    wrong = tmp_path / "claims-full.safetensors"
    save_file(state, str(wrong), metadata={**meta, "didtv.config": json.dumps(FULL_CONFIG)})
    with pytest.raises(ModelError, match="claims-full.safetensors"):
        registry.load_model(wrong)
    # a tensor removed
    state.pop(next(iter(state)))
    cut = tmp_path / "cut.safetensors"
    save_file(state, str(cut), metadata=meta)
    with pytest.raises(ModelError, match="cut.safetensors"):
        registry.load_model(cut)


def test_unknown_base_is_refused():
    with pytest.raises(ValueError, match="base"):
        DIDNet(**{**TINY_CONFIG, "base": "reinhard"})


def test_a_weights_file_older_than_a_hyperparameter_matches_its_default(tiny, tmp_path, monkeypatch):
    """Files written before ``base`` existed have no such key in their config: the registry
    treats the missing key as its default, so such a file still loads under its name."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    monkeypatch.setattr(registry, "WEIGHTS_DIR", tmp_path)
    path = registry.save_weights(tiny, tmp_path / "didnet-tiny.safetensors", arch="didnet")
    with safe_open(str(path), framework="pt") as f:
        meta, state = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    old = {k: v for k, v in json.loads(meta["didtv.config"]).items() if k != "base"}
    save_file(state, str(path), metadata={**meta, "didtv.config": json.dumps(old)})
    if TINY_CONFIG["base"] == "bt2408":
        assert registry.load_model("tiny").config["base"] == "bt2408"
    else:
        with pytest.raises(ModelError, match="was built as"):
            registry.load_model("tiny")


def test_the_global_path_stays_float32_under_bfloat16_autocast(tiny):
    """The condition and the DMC modulation are one value per shot that scales every pixel: in
    bfloat16 ``1 + alpha`` moves in steps of 1/256 (docs/training.md, "Precision and flicker")."""
    frames = _frames()
    with torch.no_grad():
        cond32 = tiny.condition_vector(frames)
        mods32 = tiny.modulation_vectors(cond32)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            cond = tiny.condition_vector(frames)
            mods = tiny.modulation_vectors(cond)
            hdr, _ = tiny(frames)
    assert cond.dtype == torch.float32 and torch.equal(cond, cond32)
    for got, want in zip(mods, mods32):
        for g, w in zip(got, want):
            assert g.dtype == torch.float32 and torch.equal(g, w)
    assert hdr.dtype == torch.float32
