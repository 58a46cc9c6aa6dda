"""Operator costs of the AI Hub reference models, from their architectures: bench/data/model_ops.json.

    flock /tmp/projdeploy-heavy.lock .venv/bin/python bench/model_costs.py [--only resnet18,vit] [--out ...]

Each model id of bench/data/aihub_perf.csv that ``transformers`` can build is instantiated with random
weights from a config that reproduces the published architecture (the config below, at the input
resolution AI Hub states in info.yaml), exported to ONNX with ``torch.onnx.export`` (TorchScript exporter,
opset 17, constant folding) and costed by ``projdeploy.check.opcost.onnx_model_ops``: the same code that
costs a user's ONNX artifact in ``projdeploy check``. No FLOP count is copied from anywhere. The parameter
count of the built model is stored next to the count AI Hub states, so a mismatched architecture shows.

Ops are stored as ``[class, op_type, flops, weight_elems, act_elems, count]`` (identical ops merged).
Deterministic: the costs depend only on the configs (weights are random but never read).
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _img(h, w=None, c=3):
    import torch

    return {"pixel_values": torch.zeros(1, c, h, w or h)}


def _ids(n):
    import torch

    return {"input_ids": torch.zeros(1, n, dtype=torch.int64), "attention_mask": torch.ones(1, n, dtype=torch.int64)}


def _resnet(depths, layer="bottleneck", hidden=(256, 512, 1024, 2048)):
    from transformers import ResNetConfig, ResNetForImageClassification

    return ResNetForImageClassification(
        ResNetConfig(layer_type=layer, hidden_sizes=list(hidden), depths=depths, num_labels=1000)
    )


def _effnet(width, depth, size, hidden_dim):
    from transformers import EfficientNetConfig, EfficientNetForImageClassification

    cfg = EfficientNetConfig(
        width_coefficient=width, depth_coefficient=depth, image_size=size, hidden_dim=hidden_dim, num_labels=1000
    )
    return EfficientNetForImageClassification(cfg)


def _convnext(depths, hidden):
    from transformers import ConvNextConfig, ConvNextForImageClassification

    return ConvNextForImageClassification(ConvNextConfig(depths=depths, hidden_sizes=hidden, num_labels=1000))


def _regnet(layer, depths, hidden, groups_width):
    from transformers import RegNetConfig, RegNetForImageClassification

    cfg = RegNetConfig(layer_type=layer, depths=depths, hidden_sizes=hidden, groups_width=groups_width, num_labels=1000)
    return RegNetForImageClassification(cfg)


def _hf(cls_name, cfg_name, **kw):
    import transformers

    return getattr(transformers, cls_name)(getattr(transformers, cfg_name)(**kw))


def _whisper_encoder(d, layers, heads):
    from transformers import WhisperConfig, WhisperModel

    cfg = WhisperConfig(
        d_model=d,
        encoder_layers=layers,
        decoder_layers=layers,
        encoder_attention_heads=heads,
        decoder_attention_heads=heads,
        encoder_ffn_dim=4 * d,
        decoder_ffn_dim=4 * d,
    )
    return WhisperModel(cfg).get_encoder()


def _depth_anything():
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation

    return DepthAnythingForDepthEstimation(DepthAnythingConfig())


def _clip():
    from transformers import CLIPConfig, CLIPModel

    return CLIPModel(CLIPConfig(vision_config={"patch_size": 16}))


BERT_BASE = {"hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12, "intermediate_size": 3072}
# model id -> (AI Hub component name or "", builder, example inputs, architecture note)
MODELS = {
    "resnet18": ("", lambda: _resnet([2, 2, 2, 2], "basic", (64, 128, 256, 512)), lambda: _img(224), "ResNet-18"),
    "resnet50": ("", lambda: _resnet([3, 4, 6, 3]), lambda: _img(224), "ResNet-50"),
    "resnet101": ("", lambda: _resnet([3, 4, 23, 3]), lambda: _img(224), "ResNet-101"),
    "mobilenet_v2": (
        "",
        lambda: _hf("MobileNetV2ForImageClassification", "MobileNetV2Config", tf_padding=False, num_labels=1001),
        lambda: _img(224),
        "MobileNetV2 1.0",
    ),
    "efficientnet_b0": ("", lambda: _effnet(1.0, 1.0, 224, 1280), lambda: _img(224), "EfficientNet-B0"),
    "efficientnet_b4": ("", lambda: _effnet(1.4, 1.8, 380, 1792), lambda: _img(380), "EfficientNet-B4"),
    "convnext_tiny": ("", lambda: _convnext([3, 3, 9, 3], [96, 192, 384, 768]), lambda: _img(224), "ConvNeXt-T"),
    "convnext_base": ("", lambda: _convnext([3, 3, 27, 3], [128, 256, 512, 1024]), lambda: _img(224), "ConvNeXt-B"),
    "regnet": ("", lambda: _regnet("x", [2, 6, 15, 2], [96, 192, 432, 1008], 48), lambda: _img(224), "RegNetX-3.2GF"),
    "regnet_y_800mf": (
        "",
        lambda: _regnet("y", [1, 3, 8, 2], [64, 144, 320, 784], 16),
        lambda: _img(224),
        "RegNetY-800MF",
    ),
    "vit": ("", lambda: _hf("ViTForImageClassification", "ViTConfig", num_labels=1000), lambda: _img(224), "ViT-B/16"),
    "beit": ("", lambda: _hf("BeitForImageClassification", "BeitConfig", num_labels=1000), lambda: _img(224), "BEiT-B"),
    "mobile_vit": (
        "",
        lambda: _hf("MobileViTForImageClassification", "MobileViTConfig", image_size=224, num_labels=1000),
        lambda: _img(224),
        "MobileViT-S",
    ),
    "levit": (
        "",
        lambda: _hf(
            "LevitForImageClassification",
            "LevitConfig",
            num_attention_heads=[4, 6, 8],
            depths=[2, 3, 4],
            num_labels=1000,
        ),
        lambda: _img(224),
        "LeViT-128S",
    ),
    "segformer_base": (
        "",
        lambda: _hf("SegformerForSemanticSegmentation", "SegformerConfig", num_labels=150),
        lambda: _img(512),
        "SegFormer-B0 (ADE, 512x512)",
    ),
    "depth_anything": ("", _depth_anything, lambda: _img(518), "Depth Anything small (DINOv2-S)"),
    "depth_anything_v2": ("", _depth_anything, lambda: _img(518), "Depth Anything V2 small (DINOv2-S)"),
    "bert_base_uncased_hf": ("", lambda: _hf("BertModel", "BertConfig"), lambda: _ids(384), "BERT-base, 384"),
    "distil_bert_base_uncased_hf": (
        "",
        lambda: _hf("DistilBertModel", "DistilBertConfig"),
        lambda: _ids(384),
        "DistilBERT-base, 384",
    ),
    "mobile_bert_uncased_google": (
        "",
        lambda: _hf("MobileBertModel", "MobileBertConfig"),
        lambda: _ids(384),
        "MobileBERT, 384",
    ),
    "albert_base_v2_hf": (
        "",
        lambda: _hf("AlbertModel", "AlbertConfig", embedding_size=128, **BERT_BASE),
        lambda: _ids(384),
        "ALBERT-base-v2, 384",
    ),
    "electra_bert_base_discrim_google": (
        "",
        lambda: _hf("ElectraForPreTraining", "ElectraConfig", embedding_size=768, **BERT_BASE),
        lambda: _ids(384),
        "ELECTRA-base discriminator, 384",
    ),
    "whisper_tiny": ("HfWhisperEncoder", lambda: _whisper_encoder(384, 4, 6), lambda: _mel(), "Whisper-tiny encoder"),
    "whisper_base": ("HfWhisperEncoder", lambda: _whisper_encoder(512, 6, 8), lambda: _mel(), "Whisper-base encoder"),
    "whisper_small": (
        "HfWhisperEncoder",
        lambda: _whisper_encoder(768, 12, 12),
        lambda: _mel(),
        "Whisper-small encoder",
    ),
    "openai_clip": ("", _clip, lambda: {**_ids(77), **_img(224)}, "CLIP ViT-B/16 image + text"),
    "video_mae": (
        "",
        lambda: _hf("VideoMAEForVideoClassification", "VideoMAEConfig", num_labels=400),
        lambda: {"pixel_values": __import__("torch").zeros(1, 16, 3, 224, 224)},
        "VideoMAE-B, 16x224x224",
    ),
    "huggingface_wavlm_base_plus": (
        "",
        lambda: _hf("WavLMModel", "WavLMConfig"),
        lambda: {"input_values": __import__("torch").zeros(1, 320000)},
        "WavLM-base-plus, 20 s audio",
    ),
}


def _mel():
    import torch

    return {"input_features": torch.zeros(1, 80, 3000)}


def cost_model(mid: str) -> dict:
    import onnx
    import torch

    from projdeploy.check.opcost import onnx_model_ops

    comp, build, inputs, arch = MODELS[mid]
    torch.manual_seed(0)
    model = build().eval()
    x = inputs()
    params = sum(p.numel() for p in model.parameters())
    buf = io.BytesIO()
    t0 = time.time()
    with torch.no_grad():
        torch.onnx.export(
            model, (), buf, kwargs=x, dynamo=False, opset_version=17, do_constant_folding=True, input_names=list(x)
        )
    cost = onnx_model_ops(onnx.load_from_string(buf.getvalue()), {})
    merged: dict = {}
    for o in cost.ops:
        key = (o.cls, o.op_type, o.flops, o.weight_elems, o.act_elems)
        merged[key] = merged.get(key, 0) + 1
    return {
        "component": comp,
        "architecture": arch,
        "inputs": {k: list(v.shape) for k, v in x.items()},
        "params": params,
        "flops": sum(o.flops for o in cost.ops),
        "weight_elems": sum(o.weight_elems for o in cost.ops),
        "live_peak_act_elems": cost.live_peak_bytes / 4.0,
        "uncosted": cost.uncosted,
        "missing_shapes": cost.missing_shapes,
        "export_s": round(time.time() - t0, 1),
        "ops": [[*k, n] for k, n in merged.items()],
    }


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", default="", help="comma-separated model ids (default: all)")
    ap.add_argument("--out", default=str(ROOT / "bench/data/model_ops.json"))
    a = ap.parse_args(argv)
    out = Path(a.out)
    data = json.loads(out.read_text()) if out.is_file() else {}
    ids = [m for m in a.only.split(",") if m] or list(MODELS)
    for mid in ids:
        try:
            data[mid] = cost_model(mid)
            print(f"{mid}: {data[mid]['flops'] / 1e9:.2f} GFLOP, {data[mid]['params'] / 1e6:.2f} M params", flush=True)
        except Exception as e:  # noqa: BLE001 - report and go on with the other models
            print(f"{mid}: FAILED {type(e).__name__}: {e}", flush=True)
        tmp = out.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(data.items())), separators=(",", ":")))
        tmp.replace(out)


if __name__ == "__main__":
    main()
