"""The PoseDet network: backbones (timm), necks, head outputs, gradients, pretrained weights."""
from __future__ import annotations

import math

import pytest
import torch

from posedet.model import PoseDet, build_model
from posedet.model.backbones import SMALL_BACKBONE, PretrainedWeightsError, TimmBackbone
from posedet.model.head import PoseDetHead, group_count

SMALL = SMALL_BACKBONE


@pytest.fixture(autouse=True)
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    yield
    torch.set_num_threads(n)


@pytest.mark.parametrize("name,channels,strides", [
    ("dla34", [128, 256, 512], [8, 16, 32]),
    ("hrnet_w32", [32, 64, 128, 256], [4, 8, 16, 32]),
    ("hrnet_w48", [48, 96, 192, 384], [4, 8, 16, 32]),
    (SMALL, [16, 24, 288], [8, 16, 32]),
])
def test_backbone_feature_channels(name, channels, strides):
    b = TimmBackbone(name)
    assert b.channels == channels and b.strides == strides


@pytest.mark.parametrize("k", [14, 17])
@pytest.mark.parametrize("refine", [True, False])
@pytest.mark.parametrize("inter", [True, False])
def test_output_shapes_small_backbone(k, refine, inter):
    m = PoseDet(SMALL, k, refine=refine, intermediate_supervision=inter)
    assert m.strides == [8, 16, 32, 64] and m.size_divisor == 64
    x = torch.randn(2, 3, 128, 128)
    for training in (True, False):
        m.train(training)
        with torch.set_grad_enabled(training):
            out = m(x)
        assert out["strides"] == [8, 16, 32, 64]
        sizes = [(128 // s, 128 // s) for s in out["strides"]]
        assert [tuple(t.shape) for t in out["coarse"]] == [(2, 2 * k, *hw) for hw in sizes]
        assert [tuple(t.shape) for t in out["cls"]] == [(2, 1, *hw) for hw in sizes]
        if refine:
            assert [tuple(t.shape) for t in out["refine"]] == [(2, 2 * k, *hw) for hw in sizes]
        else:
            assert out["refine"] is None
        if inter and training:
            assert [tuple(t.shape) for t in out["heatmaps"]] == [(2, k, *hw) for hw in sizes]
        else:
            assert out["heatmaps"] is None
        assert all(torch.isfinite(t).all() for key in ("coarse", "cls") for t in out[key])


@pytest.mark.parametrize("name,strides,channels", [("dla34", [8, 16, 32, 64], 128), ("hrnet_w32", [8, 16, 32], 256)])
def test_real_backbones_forward(name, strides, channels):
    m = PoseDet(name, 17).eval()
    assert m.strides == strides and m.model_signature()["neck_channels"] == channels
    with torch.no_grad():
        out = m(torch.randn(1, 3, 128, 128))
    assert [t.shape[-1] for t in out["coarse"]] == [128 // s for s in strides]
    assert out["heatmaps"] is None and len(out["refine"]) == len(strides)


def test_hrnet_w48_builds():
    m = PoseDet("hrnet_w48", 14)
    assert m.strides == [8, 16, 32] and m.backbone.channels == [48, 96, 192, 384]
    assert m.neck.reduction.in_channels == 48 + 96 + 192 + 384


def test_input_must_be_multiple_of_largest_stride():
    m = PoseDet(SMALL, 17)
    with pytest.raises(ValueError, match="multiple of the largest stride 64"):
        m(torch.randn(1, 3, 96, 128))


def test_head_init_and_group_norm_groups():
    head = PoseDetHead(48, 14, feat_channels=48)
    gns = [mod for mod in head.modules() if isinstance(mod, torch.nn.GroupNorm)]
    assert len(gns) == 3 + 2 + 2 and all(g.num_groups == 24 for g in gns)
    assert group_count(256, 32) == 32 and group_count(64, 32) == 32 and group_count(20, 32) == 20
    assert torch.allclose(head.cls_out.bias, torch.tensor([-math.log(99.0)]))
    assert torch.allclose(head.heatmap[-1].bias, torch.full((14,), -2.19))
    assert abs(head.coarse_out.weight.std().item() - 0.01) < 0.003
    assert head.refine_embed.weight.shape == (48, 48, 1, 14) and head.cls_embed.bias is None


@pytest.mark.parametrize("key", ["coarse", "refine", "cls", "heatmaps"])
def test_gradients_reach_the_backbone_from_every_output(key):
    m = PoseDet(SMALL, 17).train()
    out = m(torch.randn(2, 3, 64, 64))
    loss = sum((t * torch.randn_like(t)).sum() for t in out[key])
    loss.backward()
    stem = m.backbone.body.conv_stem.weight.grad
    assert stem is not None and torch.isfinite(stem).all() and stem.abs().sum() > 0
    head = m.head
    tower = {"coarse": head.coarse_tower, "refine": head.refine_tower, "cls": head.cls_tower,
             "heatmaps": head.heatmap}[key]
    assert tower[0].weight.grad.abs().sum() > 0


def test_embedding_offsets_carry_one_tenth_of_the_gradient():
    """The refine output depends on the coarse offsets only through the embedding's offsets
    0.9·coarse.detach() + 0.1·coarse: d/d coarse = 0.1 · d/d offsets, at every level."""
    m = PoseDet(SMALL, 14, intermediate_supervision=False).train()
    coarse_grads, offset_grads = [], []

    def keep_coarse(_mod, _inp, out):
        out.register_hook(lambda g: coarse_grads.append(g))

    def keep_offsets(_mod, inputs):
        inputs[1].register_hook(lambda g: offset_grads.append(g))

    m.head.coarse_out.register_forward_hook(keep_coarse)
    m.head.refine_embed.register_forward_pre_hook(keep_offsets)
    out = m(torch.randn(1, 3, 64, 64))
    sum((t * torch.randn_like(t)).sum() for t in out["refine"]).backward()
    assert len(coarse_grads) == len(offset_grads) == 4
    # hooks fire in reverse level order for both; pair them by shape
    for gc in coarse_grads:
        go = next(g for g in offset_grads if g.shape == gc.shape)
        assert go.abs().sum() > 0
        assert torch.allclose(gc, 0.1 * go, rtol=1e-5, atol=1e-12)


def test_build_model_and_signature_round_trip():
    cfg = {"backbone": SMALL, "num_keypoints": 14, "skeleton": "crowdpose", "pretrained": False,
           "pretrained_file": None, "refine": False, "intermediate_supervision": True,
           "neck_channels": None, "head_channels": 32}
    m = build_model(cfg)
    sig = m.model_signature()
    assert sig["backbone"] == SMALL and sig["num_keypoints"] == 14 and sig["refine"] is False
    assert sig["neck_channels"] == 64 and sig["head_channels"] == 32 and sig["strides"] == [8, 16, 32, 64]
    again = build_model(cfg)
    assert again.model_signature() == sig
    again.load_state_dict(m.state_dict(), strict=True)
    with pytest.raises(ValueError, match="unknown model key"):
        build_model(dict(cfg, neck_chanels=64))
    with pytest.raises(ValueError, match="unknown backbone"):
        build_model(dict(cfg, backbone="no_such_net"))


def test_pretrained_file_is_loaded(tmp_path):
    import timm

    reference = timm.create_model(SMALL, pretrained=False)
    path = tmp_path / "weights.pth"
    torch.save(reference.state_dict(), path)
    m = PoseDet(SMALL, 17, pretrained_file=str(path))
    assert torch.equal(m.backbone.body.conv_stem.weight, reference.conv_stem.weight)
    assert torch.equal(m.backbone.body.blocks[2][0].conv_pw.weight, reference.blocks[2][0].conv_pw.weight)


def test_missing_or_wrong_weights_raise_a_clear_error(tmp_path, monkeypatch):
    with pytest.raises(RuntimeError, match="pretrained_file") as e:
        PoseDet(SMALL, 17, pretrained_file=str(tmp_path / "missing.pth"))
    assert isinstance(e.value, PretrainedWeightsError) and "missing.pth" in str(e.value)
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other)
    with pytest.raises(PretrainedWeightsError, match="missing or of another shape"):
        TimmBackbone(SMALL, pretrained_file=str(other))
    # no network, empty cache: the hub path fails fast with the same advice
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(PretrainedWeightsError, match="HF_HUB_OFFLINE"):
        TimmBackbone(SMALL, pretrained=True, cache_dir=str(tmp_path / "empty_cache"))
