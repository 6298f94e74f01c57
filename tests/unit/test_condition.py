"""3D/2D condition networks (didtv/models/condition.py)."""

from __future__ import annotations

import pytest
import torch

from didtv.models.condition import ConditionNet2D, ConditionNet3D


@pytest.fixture(params=[ConditionNet3D, ConditionNet2D], ids=["3d", "2d"])
def net(request):
    torch.manual_seed(0)
    return request.param(channels=8, cond_size=12, input_size=64).eval()


@pytest.mark.parametrize("size", [(8, 8), (36, 20), (3, 70)])
def test_output_shape_does_not_depend_on_frame_size(net, size):
    out = net(torch.rand(2, 7, 3, *size))
    assert out.shape == (2, 12)
    assert torch.isfinite(out).all()


def test_cost_is_constant_and_matches_flop_counter(net):
    from torch.utils.flop_counter import FlopCounterMode

    for size in ((16, 16), (48, 80)):
        with FlopCounterMode(display=False) as counter, torch.no_grad():
            net(torch.rand(1, 7, 3, *size))
        assert counter.get_total_flops() == net.flops(7)


def test_3d_net_sees_every_frame_2d_net_only_the_centre():
    torch.manual_seed(0)
    frames = torch.rand(1, 7, 3, 16, 16)
    changed = frames.clone()
    changed[:, 0] = 1.0 - changed[:, 0]
    net3 = ConditionNet3D(channels=8, cond_size=12, input_size=64)
    net2 = ConditionNet2D(channels=8, cond_size=12, input_size=64)
    with torch.no_grad():
        assert not torch.allclose(net3(frames), net3(changed))
        assert torch.equal(net2(frames), net2(changed))


def test_overall_brightness_reaches_the_condition(net):
    """InstanceNorm alone would hide a global exposure change; the statistics skip keeps it."""
    frames = torch.rand(1, 7, 3, 16, 16)
    with torch.no_grad():
        assert not torch.allclose(net(frames), net(0.5 * frames), atol=1e-4)


def test_gradients_reach_every_parameter(net):
    net.train()
    net(torch.rand(2, 7, 3, 20, 20)).square().sum().backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_too_small_thumbnail_is_rejected():
    with pytest.raises(ValueError, match="input_size"):
        ConditionNet3D(input_size=16, blocks=6)
