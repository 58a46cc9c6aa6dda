"""``prune`` and ``truncate`` of a pretrained BERT-family encoder into a smaller BERT classifier (transformers).

    projdeploy project --big minilm-l6 --task pycode-cls --method prune --params 25% --out runs/cls-prune

The BERT family (BERT, MiniLM; ``model_type: bert``) projects classification tasks only. The small model is a
``transformers`` ``BertForSequenceClassification`` with the big model's head size, whose embeddings, encoder
layers and pooler are slices of the big model's and whose classifier is fresh (seeded): fine-tune it.
``truncate`` keeps the first channels, heads, MLP units and layers; ``prune`` ranks them as the Llama
``prune`` does (``prune.py``), from activations on the task's calibration rows: hidden channels by mean |x|
of every LayerNorm output, MLP units by the mean square of the intermediate activation, heads by the mean norm
of their context vectors, layers by ``1 - cos(x_in, x_out)``. Kept indices stay in order, so keeping
everything is the same function (tested). LayerNorm over fewer channels is not exact: pruning is an
approximation to be recovered by fine-tuning.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import CheckpointError, ConfigError
from .prune import _top


@dataclass(frozen=True)
class BertShape:
    hidden: int
    layers: int
    ffn: int
    heads: int


def bert_shape(cfg, size: str | None, params: str | None) -> BertShape:
    """``--size hidden=,layers=,ffn=,heads=`` or ``--params N%`` (of the encoder's parameters; default 25%)."""
    hd = cfg.hidden_size // cfg.num_attention_heads
    if size:
        kw = dict(part.strip().split("=", 1) for part in size.split(",") if "=" in part)
        if set(kw) - {"hidden", "layers", "ffn", "heads", "kv"} or not all(v.isdigit() for v in kw.values()):
            raise ConfigError("--size", size, "a BERT big model takes hidden=,layers=,ffn=,heads= (integers)")
        heads = int(kw.get("heads", int(kw.get("hidden", cfg.hidden_size)) // hd))
        shape = BertShape(heads * hd, int(kw.get("layers", cfg.num_hidden_layers)), int(kw.get("ffn", 0)), heads)
        shape = BertShape(shape.hidden, shape.layers, shape.ffn or cfg.intermediate_size, heads)
    else:
        s = (params or "25%").strip()
        if not s.endswith("%"):
            raise ConfigError("--params", s, "a BERT big model takes a fraction such as 25%")
        f = float(s[:-1]) / 100
        L = cfg.num_hidden_layers
        layers = max(math.ceil(L / 2), min(L, round(L * math.sqrt(f))))
        w = math.sqrt(f * L / layers)
        heads = max(1, min(cfg.num_attention_heads, round(cfg.num_attention_heads * w)))
        shape = BertShape(heads * hd, layers, max(32, int(cfg.intermediate_size * w) // 32 * 32), heads)
    if shape.hidden > cfg.hidden_size or shape.layers > cfg.num_hidden_layers or shape.ffn > cfg.intermediate_size:
        raise ConfigError(
            "--size", size or params, f"exceeds the big model ({cfg.hidden_size=}, {cfg.num_hidden_layers=})"
        )
    if shape.hidden != shape.heads * hd:
        raise ConfigError("--size", size, f"hidden must be heads x the big head size {hd}")
    return shape


def _add(acc: dict, key, v: torch.Tensor) -> None:
    acc[key] = acc.get(key, 0) + v.double()


@torch.inference_mode()
def bert_importance(bert, rows: np.ndarray, pad: int | None, batch: int = 16) -> dict:
    """Activation importances of an HF ``BertModel`` on calibration ``rows``."""
    H = bert.config.num_attention_heads
    acc: dict = {}
    mean = lambda x: x.reshape(-1, x.shape[-1])  # noqa: E731
    hooks = [bert.embeddings.LayerNorm.register_forward_hook(lambda m, a, o: _add(acc, "ch", mean(o).abs().mean(0)))]
    for i, layer in enumerate(bert.encoder.layer):
        for ln in (layer.attention.output.LayerNorm, layer.output.LayerNorm):
            hooks.append(ln.register_forward_hook(lambda m, a, o: _add(acc, "ch", mean(o).abs().mean(0))))
        hooks.append(
            layer.intermediate.register_forward_hook(lambda m, a, o, i=i: _add(acc, ("mlp", i), mean(o).pow(2).mean(0)))
        )
        hooks.append(
            layer.attention.self.register_forward_hook(
                lambda m, a, o, i=i: _add(acc, ("head", i), mean(o[0]).unflatten(-1, (H, -1)).norm(dim=-1).mean(0))
            )
        )
        hooks.append(layer.register_forward_hook(_block_hook(acc, i), with_kwargs=True))
    try:
        for s in range(0, len(rows), batch):
            ids = torch.as_tensor(rows[s : s + batch])
            bert(input_ids=ids, attention_mask=(ids != pad).long() if pad is not None else None)
    finally:
        for h in hooks:
            h.remove()
    return acc


def _block_hook(acc: dict, i: int):
    def hook(module, args, kwargs, out):
        x = args[0] if args else kwargs["hidden_states"]
        y = out[0] if isinstance(out, tuple) else out
        _add(acc, ("bi", i), 1 - torch.nn.functional.cosine_similarity(x, y, dim=-1).mean())

    return hook


@dataclass(frozen=True)
class BertSelection:
    channels: torch.Tensor
    layers: torch.Tensor
    heads: tuple[torch.Tensor, ...]  # per small layer
    neurons: tuple[torch.Tensor, ...]


def bert_selection(cfg, shape: BertShape, acc: dict | None) -> BertSelection:
    """``acc`` None: truncation (the first of everything)."""
    L = cfg.num_hidden_layers
    if acc is None:
        layers = torch.arange(shape.layers)
        return BertSelection(
            torch.arange(shape.hidden),
            layers,
            tuple(torch.arange(shape.heads) for _ in layers),
            tuple(torch.arange(shape.ffn) for _ in layers),
        )
    layers = _top(torch.stack([acc[("bi", i)] for i in range(L)]).float(), shape.layers)
    return BertSelection(
        _top(acc["ch"].float(), shape.hidden),
        layers,
        tuple(_top(acc[("head", j)].float(), shape.heads) for j in layers.tolist()),
        tuple(_top(acc[("mlp", j)].float(), shape.ffn) for j in layers.tolist()),
    )


def _ln(dst, src, ch) -> None:
    dst.weight.copy_(src.weight[ch])
    dst.bias.copy_(src.bias[ch])


def _linear(dst, src, rows, cols) -> None:
    dst.weight.copy_(src.weight[rows][:, cols])
    dst.bias.copy_(src.bias[rows])


@torch.no_grad()
def bert_classifier(big, shape: BertShape, sel: BertSelection, task, seed: int = 0):
    """A transformers BertForSequenceClassification made of ``big``'s (an HF BertModel) selected weights."""
    import transformers

    hd = big.config.hidden_size // big.config.num_attention_heads
    cfg = big.config.to_dict()
    cfg.update(
        hidden_size=shape.hidden,
        num_hidden_layers=shape.layers,
        intermediate_size=shape.ffn,
        num_attention_heads=shape.heads,
        id2label=dict(enumerate(task.labels)),
        label2id={v: i for i, v in enumerate(task.labels)},
        architectures=["BertForSequenceClassification"],
    )
    torch.manual_seed(seed)
    small = transformers.BertForSequenceClassification(transformers.BertConfig.from_dict(cfg)).eval()
    ch, s, b = sel.channels, small.bert, big
    for name in ("word_embeddings", "position_embeddings", "token_type_embeddings"):
        getattr(s.embeddings, name).weight.copy_(getattr(b.embeddings, name).weight[:, ch])
    _ln(s.embeddings.LayerNorm, b.embeddings.LayerNorm, ch)
    for i, j in enumerate(sel.layers.tolist()):
        dst, src = s.encoder.layer[i], b.encoder.layer[j]
        cols = (sel.heads[i][:, None] * hd + torch.arange(hd)).reshape(-1)  # the kept heads' channels
        for name in ("query", "key", "value"):
            _linear(getattr(dst.attention.self, name), getattr(src.attention.self, name), cols, ch)
        _linear(dst.attention.output.dense, src.attention.output.dense, ch, cols)
        _ln(dst.attention.output.LayerNorm, src.attention.output.LayerNorm, ch)
        _linear(dst.intermediate.dense, src.intermediate.dense, sel.neurons[i], ch)
        _linear(dst.output.dense, src.output.dense, ch, sel.neurons[i])
        _ln(dst.output.LayerNorm, src.output.LayerNorm, ch)
    if s.pooler is not None and b.pooler is not None:
        _linear(s.pooler.dense, b.pooler.dense, ch, ch)
    return small


def project_bert(big_dir, task, method: str, *, seed=0, size=None, params=None, calibration=32):
    """(small BertForSequenceClassification, info) by ``prune`` or ``truncate`` of a BERT-family big model."""
    from ..foundation import load_big
    from ..tasks.hf_tokenizer import fit_task
    from .prune import calibration_rows

    big = load_big(str(big_dir))
    if big.source.model_type != "bert":
        raise CheckpointError(
            f"{big_dir}: a {big.source.model_type} model cannot be pruned (BERT-family: model_type bert)"
        )
    if task.kind != "cls":
        raise CheckpointError(f"{big_dir}: a BERT-family model projects classification tasks, not {task.name!r}")
    task = fit_task(task, big.tokenizer)
    bert = big.module.hf
    shape = bert_shape(bert.config, size, params)
    acc = None
    if method == "prune":
        acc = bert_importance(bert, calibration_rows(task, calibration, seed), big.tokenizer.pad_id)
    sel = bert_selection(bert.config, shape, acc)
    small = bert_classifier(bert, shape, sel, task, seed)
    dropped = sorted(set(range(bert.config.num_hidden_layers)) - set(sel.layers.tolist()))
    return small, {"config": vars(shape), "dropped_layers": dropped, "family": "bert"}
