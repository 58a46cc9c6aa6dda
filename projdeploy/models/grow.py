"""Function-preserving growth of Llama-style blocks (methods.md section 4; Gesmundo & Maile 2023).

    projdeploy grow --from runs/tiny --to grow.json --out runs/grown

Six expansions, alone or composed: MLP size, attention heads (respecting GQA
groups), value head size, key/query head size, hidden size, layers. New
parameters are either free (random, std 0.02) or zero where the paper
requires; the two factors of a new path are never both zero. Porting rules:
- key/query growth scales the old key weights by sqrt(k'/k) (softmax scale) and keeps
  the old RoPE frequencies per channel pair (rotate-half layout: pairs (j, j + k/2));
- hidden growth scales every RMSNorm gain (final norm included) by sqrt(d/d') and the
  norm epsilon by d/d', which preserves the normalised value exactly (not only as eps -> 0);
- GQA: new query heads go at the end of each key/value group, new groups at the end;
- SwiGLU: new gate/up rows free, new down-projection columns zero.
AdamW moments of old entries are carried (scaled like their weights); new entries start at zero.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import ConfigError
from .general import GeneralConfig, GeneralLM, standard_inv_freq

FIELDS = (
    "hidden_size",
    "intermediate_size",
    "num_hidden_layers",
    "num_attention_heads",
    "num_key_value_heads",
    "qk_head_dim",
    "v_head_dim",
)


@dataclass(frozen=True)
class GrowTarget:
    """Target sizes; None keeps the source's value. ``new_layer_positions``: indexes in the grown stack."""

    hidden_size: int | None = None
    intermediate_size: int | None = None
    num_hidden_layers: int | None = None
    num_attention_heads: int | None = None
    num_key_value_heads: int | None = None
    qk_head_dim: int | None = None
    v_head_dim: int | None = None
    new_layer_positions: tuple | None = None
    init_std: float = 0.02
    seed: int = 0
    version: int = 1

    @classmethod
    def from_dict(cls, d: dict, source: str = "grow target") -> GrowTarget:
        d = dict(d)
        if "head_dim" in d:  # one head size for keys/queries and values, like HF's head_dim
            hd = d.pop("head_dim")
            d.setdefault("qk_head_dim", hd)
            d.setdefault("v_head_dim", hd)
        names = {f.name for f in dataclasses.fields(cls)}
        for k, v in d.items():
            if k not in names:
                raise ConfigError(source, k, "unknown field; allowed: " + ", ".join(sorted(names | {"head_dim"})))
            if k in FIELDS and (not isinstance(v, int) or v <= 0):
                raise ConfigError(source, k, f"must be a positive integer, got {v!r}")
        if d.get("new_layer_positions") is not None:
            d["new_layer_positions"] = tuple(d["new_layer_positions"])
        return cls(**d)


class Grower:
    """Holds (config, state dict, flat AdamW state) and applies expansions in place."""

    def __init__(self, cfg: GeneralConfig, state: dict, optim: dict | None = None, seed: int = 0, std: float = 0.02):
        self.cfg, self.sd, self.opt = cfg, dict(state), dict(optim or {})
        self.gen, self.std = torch.Generator().manual_seed(seed), std

    # --- the primitive: embed old entries into a new tensor --------------------------------
    def _place(self, name: str, shape, idx, fill: str, scale: float = 1.0, fill_value: float = 0.0):
        old = self.sd[name]
        if fill == "zero":
            new = torch.zeros(shape, dtype=old.dtype)
        elif fill == "const":
            new = torch.full(shape, fill_value, dtype=old.dtype)
        else:
            new = (torch.randn(shape, generator=self.gen) * self.std).to(old.dtype)
        grid = torch.meshgrid(*[torch.as_tensor(i, dtype=torch.long) for i in idx], indexing="ij")
        new[grid] = old * scale
        self.sd[name] = new
        for key, power in (("exp_avg", 1), ("exp_avg_sq", 2)):
            k = f"{name}::{key}"
            if k in self.opt:
                t = torch.zeros(shape, dtype=self.opt[k].dtype)
                t[grid] = self.opt[k] * scale**power
                self.opt[k] = t

    def _layer_names(self, suffix: str):
        return [f"model.layers.{i}.{suffix}" for i in range(self.cfg.num_hidden_layers)]

    @staticmethod
    def _ar(n):
        return torch.arange(n)

    # --- the six expansions ---------------------------------------------------------------
    def mlp(self, p2: int):
        c = self.cfg
        d, p = c.hidden_size, c.intermediate_size
        for i in range(c.num_hidden_layers):
            pre = f"model.layers.{i}.mlp."
            for m in ("gate_proj", "up_proj"):
                self._place(pre + m + ".weight", (p2, d), (self._ar(p), self._ar(d)), "free")
            self._place(pre + "down_proj.weight", (d, p2), (self._ar(d), self._ar(p)), "zero")
        self.cfg = c.replace(intermediate_size=p2)

    def heads(self, H2: int, KV2: int):
        c = self.cfg
        H, KV, d, qk, v = c.num_attention_heads, c.num_key_value_heads, c.hidden_size, c.qk_head_dim, c.v_head_dim
        rep, rep2 = H // KV, H2 // KV2
        if H2 % KV2 or KV2 < KV or rep2 < rep:
            raise ConfigError(
                "grow target",
                "num_attention_heads",
                f"GQA: growing {H} heads / {KV} groups to {H2} / {KV2} needs {KV2} to divide {H2}, "
                f"no fewer groups and no fewer heads per group ({rep} -> {rep2})",
            )
        new_head = torch.tensor([(h // rep) * rep2 + h % rep for h in range(H)])  # old head -> new position

        def rows(heads, width):
            return (heads[:, None] * width + torch.arange(width)[None]).reshape(-1)

        for i in range(c.num_hidden_layers):
            pre = f"model.layers.{i}.self_attn."
            self._place(pre + "q_proj.weight", (H2 * qk, d), (rows(new_head, qk), self._ar(d)), "free")
            self._place(pre + "k_proj.weight", (KV2 * qk, d), (self._ar(KV * qk), self._ar(d)), "free")
            self._place(pre + "v_proj.weight", (KV2 * v, d), (self._ar(KV * v), self._ar(d)), "free")
            self._place(pre + "o_proj.weight", (d, H2 * v), (self._ar(d), rows(new_head, v)), "zero")
        self.cfg = c.replace(num_attention_heads=H2, num_key_value_heads=KV2)

    def value(self, v2: int):
        c = self.cfg
        H, KV, d, v = c.num_attention_heads, c.num_key_value_heads, c.hidden_size, c.v_head_dim
        for i in range(c.num_hidden_layers):
            pre = f"model.layers.{i}.self_attn."
            self._place(pre + "v_proj.weight", (KV * v2, d), (_per_head(KV, v, v2), self._ar(d)), "free")
            self._place(pre + "o_proj.weight", (d, H * v2), (self._ar(d), _per_head(H, v, v2)), "zero")
        self.cfg = c.replace(v_head_dim=v2)

    def key(self, k2: int):
        c = self.cfg
        H, KV, d, k = c.num_attention_heads, c.num_key_value_heads, c.hidden_size, c.qk_head_dim
        if k2 % 2:
            raise ConfigError("grow target", "qk_head_dim", f"must be even for RoPE, got {k2}")
        half, half2 = k // 2, k2 // 2
        chan = torch.cat([torch.arange(half), torch.arange(half) + half2])  # rotate-half pairs stay paired

        def rows(n):
            return (torch.arange(n)[:, None] * k2 + chan[None]).reshape(-1)

        for i in range(c.num_hidden_layers):
            pre = f"model.layers.{i}.self_attn."
            self._place(pre + "q_proj.weight", (H * k2, d), (rows(H), self._ar(d)), "free")
            self._place(pre + "k_proj.weight", (KV * k2, d), (rows(KV), self._ar(d)), "zero", scale=math.sqrt(k2 / k))
        freqs = tuple(c.rope_inv_freq) + standard_inv_freq(k2, c.rope_theta)[half:]  # old channels keep theirs
        self.cfg = c.replace(qk_head_dim=k2, rope_inv_freq=freqs)

    def hidden(self, d2: int):
        c = self.cfg
        d = c.hidden_size
        s = math.sqrt(d / d2)
        for name, t in list(self.sd.items()):
            if name == "model.embed_tokens.weight":
                self._place(name, (t.shape[0], d2), (self._ar(t.shape[0]), self._ar(d)), "zero")
            elif name.endswith(("o_proj.weight", "down_proj.weight")):
                self._place(name, (d2, t.shape[1]), (self._ar(d), self._ar(t.shape[1])), "zero")
            elif (
                name.endswith(("q_proj.weight", "k_proj.weight", "v_proj.weight", "gate_proj.weight", "up_proj.weight"))
                or name == "lm_head.weight"
            ):
                self._place(name, (t.shape[0], d2), (self._ar(t.shape[0]), self._ar(d)), "free")
            elif name.endswith("layernorm.weight") or name == "model.norm.weight":
                self._place(name, (d2,), (self._ar(d),), "const", scale=s, fill_value=s)
            else:
                raise ConfigError("grow", name, "unknown parameter; cannot grow the hidden size")
        # RMS over d' zero-padded channels = RMS over d * sqrt(d/d'); scaling eps by d/d' keeps it exact
        self.cfg = c.replace(hidden_size=d2, rms_norm_eps=c.rms_norm_eps * d / d2)

    def layers(self, n2: int, positions=None):
        c = self.cfg
        n = c.num_hidden_layers
        positions = sorted(positions) if positions is not None else list(range(n, n2))
        if len(positions) != n2 - n or len(set(positions)) != len(positions) or any(not 0 <= p < n2 for p in positions):
            raise ConfigError(
                "grow target", "new_layer_positions", f"need {n2 - n} distinct indexes in 0..{n2 - 1}, got {positions}"
            )
        old_at = [i for i in range(n2) if i not in positions]  # grown index of old layer j = old_at[j]
        moved_sd, moved_opt = {}, {}
        for name in list(self.sd):
            if name.startswith("model.layers."):
                j, rest = name[len("model.layers.") :].split(".", 1)
                new = f"model.layers.{old_at[int(j)]}.{rest}"
                moved_sd[new] = self.sd.pop(name)
                for key in [k for k in self.opt if k.split("::")[0] == name]:
                    moved_opt[new + "::" + key.split("::")[1]] = self.opt.pop(key)
        self.sd.update(moved_sd)
        self.opt.update(moved_opt)
        self.cfg = c.replace(num_hidden_layers=n2)
        fresh = GeneralLM(self.cfg.replace(num_hidden_layers=1)).state_dict()
        for p in positions:
            for name, t in fresh.items():
                if not name.startswith("model.layers.0."):
                    continue
                new = name.replace("model.layers.0.", f"model.layers.{p}.")
                if name.endswith(("o_proj.weight", "down_proj.weight")):
                    self.sd[new] = torch.zeros_like(t)  # the new block starts as the identity
                elif name.endswith("layernorm.weight"):
                    self.sd[new] = torch.ones_like(t)
                else:
                    self.sd[new] = torch.randn(t.shape, generator=self.gen) * self.std


def _per_head(n_heads: int, w: int, w2: int) -> torch.Tensor:
    return (torch.arange(n_heads)[:, None] * w2 + torch.arange(w)[None]).reshape(-1)


def grow_state(cfg: GeneralConfig, state: dict, target: GrowTarget, optim: dict | None = None):
    """Apply every expansion ``target`` asks for -> (config, state dict, optimizer tensors, list of steps)."""
    want = {f: getattr(target, f) for f in FIELDS if getattr(target, f) is not None}
    for f, v in want.items():
        if v < getattr(cfg, f):
            raise ConfigError("grow target", f, f"cannot shrink {getattr(cfg, f)} -> {v}; growth only expands")
    g = Grower(cfg, state, optim, target.seed, target.init_std)
    steps = []

    def changed(f):
        return f in want and want[f] != getattr(g.cfg, f)

    if changed("intermediate_size"):
        g.mlp(want["intermediate_size"])
        steps.append("mlp")
    if changed("num_attention_heads") or changed("num_key_value_heads"):
        g.heads(
            want.get("num_attention_heads", g.cfg.num_attention_heads),
            want.get("num_key_value_heads", g.cfg.num_key_value_heads),
        )
        steps.append("heads")
    if changed("v_head_dim"):
        g.value(want["v_head_dim"])
        steps.append("value")
    if changed("qk_head_dim"):
        g.key(want["qk_head_dim"])
        steps.append("key")
    if changed("hidden_size"):
        g.hidden(want["hidden_size"])
        steps.append("hidden")
    if changed("num_hidden_layers"):
        g.layers(want["num_hidden_layers"], target.new_layer_positions)
        steps.append("layers")
    return g.cfg, g.sd, g.opt, steps


def grow_model(model, target: GrowTarget, optim: dict | None = None):
    """A ``CausalLM`` or ``GeneralLM`` -> (grown ``GeneralLM``, grown optimizer tensors, steps)."""
    cfg = model.config if isinstance(model.config, GeneralConfig) else GeneralConfig.from_model_config(model.config)
    sd = {k: v.detach().clone() for k, v in model.state_dict().items()}
    cfg2, sd2, opt2, steps = grow_state(cfg, sd, target, optim)
    grown = GeneralLM(cfg2)
    grown.load_state_dict(sd2)
    return grown.eval(), opt2, steps


def read_target(spec: str) -> GrowTarget:
    """A GrowTarget from a JSON/YAML file or inline JSON (``--to``)."""
    if spec.lstrip().startswith("{"):
        src, text = "--to", spec
    else:
        p = Path(spec)
        if not p.is_file():
            raise ConfigError("--to", "<path>", f"{spec!r} is neither a file nor inline JSON")
        src, text = str(p), p.read_text()
    import yaml

    try:
        d = yaml.safe_load(text)  # YAML is a superset of JSON
    except yaml.YAMLError as e:
        raise ConfigError(src, "<document>", f"not valid JSON/YAML ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(src, "<document>", "must be a mapping of target sizes")
    return GrowTarget.from_dict(d, src)


def grow_checkpoint(src: str | Path, target, out: str | Path) -> dict:
    """Grow the checkpoint in ``src``; write a HF-loadable checkpoint when the layout allows, else a general one."""
    import shutil

    from safetensors.torch import save_file

    from ..fsutil import atomic_dir
    from .checkpoint import write_model_files
    from .general import load_any_lm, write_general_files
    from .llama import CausalLM

    model, optim = load_any_lm(src)
    before = model.config
    grown, opt2, steps = grow_model(model, target, optim)
    cfg = grown.config
    why = cfg.hf_incompatibility()
    meta = {"grown_from": str(src), "growth_steps": steps, "target": {k: v for k, v in vars(target).items()}}
    with atomic_dir(out) as tmp:
        if why is None:
            small = CausalLM(cfg.to_model_config())
            small.load_state_dict(grown.state_dict())
            write_model_files(tmp, small, {"kind": "dense", **meta})
        else:
            write_general_files(tmp, grown, {**meta, "not_hf_because": why})
        if opt2:
            save_file({k: v.contiguous() for k, v in opt2.items()}, str(tmp / "optimizer.safetensors"))
        tok = Path(src, "projdeploy_tokenizer.json")
        if tok.is_file():
            shutil.copy(tok, tmp / tok.name)
    return {
        "out": str(out),
        "steps": steps,
        "hf_loadable": why is None,
        "reason": why,
        "params_before": sum(p.numel() for p in model.parameters()),
        "params_after": sum(p.numel() for p in grown.parameters()),
        "from": before.to_dict(),
        "to": cfg.to_dict(),
    }
