import shutil

import numpy as np
import pytest
import torch

from didtv.models.registry import load_model
from didtv.pipeline.runner import Runner, ShotCondition, is_cut, replicate_margin, stack_windows, thumbnail


def test_stacked_windows_are_padded_by_replication_and_report_their_size():
    x = torch.arange(2 * 3 * 5 * 7, dtype=torch.float32).reshape(1, 2, 3, 5, 7)
    y, h, w = stack_windows([list(x[0])], 8)
    assert y.shape == (1, 2, 3, 8, 8) and (h, w) == (5, 7)
    assert torch.equal(y[..., :5, :7], x)
    assert replicate_margin(y, h, w) is y
    assert torch.equal(y[..., 7, :7], x[..., 4, :])  # bottom rows repeat the last row
    assert torch.equal(y[..., 7, 7], x[..., 4, 6])  # the corner repeats the last pixel


def test_the_runner_pads_after_editing_the_window(monkeypatch):
    """The margin repeats the *guarded* edge: the window is edited before it is padded."""
    import didtv.pipeline.runner as runner_module

    seen = {}

    from didtv.models.spec import ModelSpec

    class Probe(torch.nn.Module):
        spec = ModelSpec(name="probe", window=3, multiple_of=8)

        def forward(self, x):
            seen["x"] = x.clone()
            return x[:, 1]

    def mark(x, **_):  # stands in for the motion guard: edits every neighbour in place
        x[:, 0] += 1
        x[:, 2] += 1
        return x

    monkeypatch.setattr(runner_module, "motion_guard", mark)
    runner = Runner(Probe(), device="cpu", precision="fp32", motion_guard=True)
    torch.manual_seed(0)
    frames = [0.5 + 0.01 * torch.rand(3, 5, 7) for _ in range(3)]  # one shot: clamp_to_shot keeps them
    runner.infer_batch([frames])
    x = seen["x"]
    expected = torch.nn.functional.pad(torch.stack(frames) + torch.tensor([1.0, 0, 1]).view(3, 1, 1, 1),
                                       (0, 1, 0, 3), mode="replicate")
    assert x.shape == (1, 3, 3, 8, 8)
    assert torch.equal(x[0], expected)


def test_cut_detection():
    a = np.full((3, 32, 32), 0.2, np.float32)
    b = a + 0.02  # small change: same shot
    c = np.full((3, 32, 32), 0.8, np.float32)  # new scene
    ta, tb, tc = thumbnail(a), thumbnail(b), thumbnail(c)
    assert is_cut(None, ta)
    assert not is_cut(ta, tb)
    assert is_cut(tb, tc)


def test_shot_condition_is_a_running_mean_reset_at_cuts():
    shot = ShotCondition()
    dark, bright = thumbnail(np.zeros((3, 8, 8), np.float32)), thumbnail(np.ones((3, 8, 8), np.float32))
    assert torch.equal(shot.update(torch.tensor([[1.0]]), dark), torch.tensor([[1.0]]))
    assert torch.equal(shot.update(torch.tensor([[3.0]]), dark), torch.tensor([[2.0]]))
    assert torch.equal(shot.update(torch.tensor([[10.0]]), bright), torch.tensor([[10.0]]))  # cut
    assert shot.shots == 2


def test_shot_condition_mean_does_not_drift_with_the_shot_length():
    """The running mean is the exact mean rounded once (a float32 running sum drifts by ulps of
    the sum, which grow with the shot, and a bfloat16 one by 1/256 of it)."""
    rng = np.random.default_rng(0)
    values = 0.3 + 1e-3 * rng.standard_normal((3000, 1, 4))
    shot, frame = ShotCondition(), thumbnail(np.zeros((3, 8, 8), np.float32))
    for k in range(len(values)):
        got = shot.update(torch.tensor(values[k], dtype=torch.float32), frame)
        want = torch.tensor(values[: k + 1].astype(np.float32).astype(np.float64).mean(0)).float()
        assert got.dtype == torch.float32
        assert torch.equal(got, want), k


def test_process_feeds_didnet_the_shot_mean_condition():
    torch.manual_seed(0)
    net = load_model("tiny", pretrained=False)
    seen, conds = [], []
    real_cond, real_forward = net.condition_vector, net.forward

    def condition_vector(x):
        c = real_cond(x)
        conds.append(c.clone())
        return c

    def forward(x, cond=None):
        seen.append(cond.clone())
        return real_forward(x, cond)

    net.condition_vector, net.forward = condition_vector, forward
    rng = np.random.default_rng(0)
    shot_a = [np.clip(0.3 + rng.normal(0, 0.05, (3, 16, 16)), 0, 1).astype(np.float32) for _ in range(4)]
    shot_b = [np.clip(0.9 + rng.normal(0, 0.05, (3, 16, 16)), 0, 1).astype(np.float32) for _ in range(3)]
    outs = list(Runner(net, device="cpu").process(shot_a + shot_b))
    assert len(outs) == 7 and outs[0].shape == (3, 16, 16)
    for k in range(4):  # running mean over the first shot
        torch.testing.assert_close(seen[k], torch.stack(conds[: k + 1]).mean(0))
    for k in range(4, 7):  # a new mean starts at the cut
        torch.testing.assert_close(seen[k], torch.stack(conds[4 : k + 1]).mean(0))
    assert not torch.equal(conds[0], conds[1])  # the per-window condition does vary


def _levels(*levels: float) -> torch.Tensor:
    """A window of flat frames at these levels, with a little texture: (1, t, 3, 8, 8)."""
    torch.manual_seed(0)
    t = len(levels)
    return (torch.tensor(levels).view(1, t, 1, 1, 1) + 0.01 * torch.rand(1, t, 3, 8, 8)).clamp(0, 1)


def test_clamp_to_shot_replicates_the_centre_shot_at_cuts():
    from didtv.pipeline.runner import clamp_to_shot

    x = _levels(0.1, 0.1, 0.1, 0.9, 0.9, 0.9, 0.9)  # the centre opens shot B
    y = clamp_to_shot(x)
    assert all(torch.equal(y[0, k], x[0, 3]) for k in range(3))
    assert torch.equal(y[:, 3:], x[:, 3:])
    x = _levels(0.2, 0.8, 0.8, 0.8, 0.8, 0.3, 0.3)  # cuts on both sides
    y = clamp_to_shot(x)
    assert torch.equal(y[0, 0], x[0, 1]) and torch.equal(y[0, 5], x[0, 4]) and torch.equal(y[0, 6], x[0, 4])
    assert torch.equal(y[:, 1:5], x[:, 1:5])


def test_clamp_to_shot_keeps_gradual_change_and_batches_apart():
    from didtv.pipeline.runner import clamp_to_shot

    fade = _levels(0.10, 0.13, 0.16, 0.19, 0.22, 0.25, 0.28)  # 0.03 per frame: one shot
    assert torch.equal(clamp_to_shot(fade), fade)
    cut = _levels(0.1, 0.1, 0.1, 0.1, 0.9, 0.9, 0.9)
    y = clamp_to_shot(torch.cat([fade, cut]))
    assert torch.equal(y[0], fade[0]) and torch.equal(y[1, 4], cut[0, 3])


def test_first_frame_after_a_cut_sees_only_its_own_shot():
    """The pipeline's window at a cut equals the window that stops there (edge replication)."""
    torch.manual_seed(0)
    net = load_model("tiny", pretrained=False)
    rng = np.random.default_rng(0)
    a = [np.clip(0.2 + rng.normal(0, 0.05, (3, 16, 16)), 0, 1).astype(np.float32) for _ in range(3)]
    b = [np.clip(0.8 + rng.normal(0, 0.05, (3, 16, 16)), 0, 1).astype(np.float32) for _ in range(4)]
    runner = Runner(net, device="cpu", motion_guard=False)
    np.testing.assert_array_equal(runner.infer(a + b), runner.infer([b[0]] * 3 + b))


def _clip(n=8, size=(16, 24)):
    rng = np.random.default_rng(1)
    return [np.clip(0.4 + rng.normal(0, 0.1, (3, *size)), 0, 1).astype(np.float32) for _ in range(n)]


@pytest.mark.skipif(shutil.which("c++") is None and shutil.which("g++") is None,
                    reason="torch.compile (inductor) needs a C++ compiler on the CPU")
def test_compiled_runner_gives_the_eager_output():
    """A real inductor compilation of DIDNet (about 30 s on 2 cores with a cold cache)."""
    torch.manual_seed(0)
    net = load_model("tiny", pretrained=False)
    frames = _clip()
    eager = list(Runner(net, device="cpu", precision="fp32").process(frames))
    runner = Runner(net, device="cpu", precision="fp32", torch_compile=True)
    assert runner.torch_compile
    compiled = list(runner.process(frames))
    for a, b in zip(eager, compiled):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-5)


def test_torch_compile_is_for_learned_models_only():
    assert not Runner(load_model("bt2408"), device="cpu", torch_compile=True).torch_compile


def test_a_failing_compilation_is_a_one_line_model_error():
    from didtv.errors import ModelError

    def broken_backend(gm, example_inputs):
        raise RuntimeError("no C++ compiler\nsecond line")

    torch.manual_seed(0)
    runner = Runner(load_model("tiny", pretrained=False), device="cpu", precision="fp32", torch_compile=True)
    runner._compiled = torch.compile(runner.model, backend=broken_backend, dynamic=False)
    with pytest.raises(ModelError, match="torch.compile failed .*run without --compile") as err:
        list(runner.process(_clip(3)))
    assert "\n" not in str(err.value)
