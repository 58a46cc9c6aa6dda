"""The manifest's ``model.lm`` section: how an LM program is driven, read back and checked for consumers (SDKs).

    python -c "from exporters.llm.protocol import read_lm; import json; print(read_lm(json.load(open('out/lm/manifest.json')), 'm'))"

Every LM artifact of exporters/llm states its generation protocol in ``model.lm.kv_cache``; the
SDK generator and the Python reference follow it without asking which format wrote the file:

| ``kv_cache`` | program | a step |
|---|---|---|
| ``in_program`` | ``forward(tokens (1, T) int64, input_pos (1,) int64) -> logits (1, vocab)`` | the cache is a mutable buffer of the program (ExecuTorch; its LLM runners' protocol) |
| ``io`` | decoder with past (Optimum's ``text-generation-with-past``): ``input_ids`` (1, T), ``attention_mask`` (1, past + T), ``position_ids`` (1, T), one past input per ``kv_io`` pair -> ``logits`` (1, T, vocab) and one present output per pair | the caller feeds each call's present outputs back as the next call's past inputs (ONNX Runtime) |
| ``state`` | ``prefill`` tokens (1, P) padded + ``decode`` tokens (1, 1), both with ``input_pos``, over the same states | the cache is a Core ML state (``MLState``, iOS 18) |

Each protocol generates the same way: the prompt (n < ``max_seq_len`` tokens) in one call at
position 0, then one call per new token at positions n, n + 1, ... < ``max_seq_len``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PROTOCOLS = ("in_program", "io", "state")
IO_INPUTS = ("input_ids", "attention_mask", "position_ids")  # the non-cache inputs of an ``io`` program
STATE_PROGRAMS = ("prefill", "decode")
MAX_WINDOW = 1 << 20


def _error(source: str, field_: str, problem: str):
    from projdeploy.errors import ConfigError

    return ConfigError(source, f"model.lm.{field_}", problem)


def _int(d: dict, key: str, source: str, lo: int = 0, hi: int = MAX_WINDOW, optional: bool = False):
    v = d.get(key)
    if v is None and optional:
        return None
    if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
        raise _error(source, key, f"{v!r} is not an integer in [{lo}, {hi}]" + (" or null" if optional else ""))
    return v


@dataclass(frozen=True)
class LMSection:
    """``model.lm`` of a manifest, checked: what a consumer needs to drive the program."""

    kv_cache: str  # one of PROTOCOLS
    program: str  # the program that takes tokens (``in_program`` / ``io``; ``state``: the decode function)
    max_seq_len: int  # the window: prompt + generated tokens
    prompt_len_max: int
    bos_id: int | None
    eos_ids: tuple[int, ...]
    kv_io: tuple[tuple[str, str], ...] = ()  # ``io``: (past input, present output) pairs, in program order
    prefill_len: int | None = None  # ``state``: the static prefill length P
    kv_cache_bytes: int | None = None
    runner_metadata: dict = field(default_factory=dict)

    def program_files(self, programs, main_file: str) -> dict[str, str]:
        """Where each program is: an LM program artifact keeps all of them in its main file (one ``.pte``, one
        ``.onnx``, one multifunction ``.mlpackage``)."""
        return {p: main_file for p in programs}

    def to_dict(self) -> dict:
        return {
            "kv_cache": self.kv_cache,
            "program": self.program,
            "max_seq_len": self.max_seq_len,
            "prompt_len_max": self.prompt_len_max,
            "bos_id": self.bos_id,
            "eos_ids": list(self.eos_ids),
            "kv_io": [list(p) for p in self.kv_io],
            "prefill_len": self.prefill_len,
        }


def _kv_io(lm: dict, programs: dict, program: str, source: str) -> tuple:
    pairs = lm.get("kv_io")
    if not isinstance(pairs, list) or not pairs:
        raise _error(
            source, "kv_io", f"{pairs!r}: an 'io' program needs a non-empty list of [past input, present output]"
        )
    io = programs.get(program) or {}
    ins = [t.get("name") for t in io.get("inputs", [])]
    outs = [t.get("name") for t in io.get("outputs", [])]
    for name in IO_INPUTS:
        if name not in ins:
            raise _error(source, "kv_cache", f"'io' needs the program input {name!r}; {program!r} has {ins}")
    if not outs or outs[0] != "logits":
        raise _error(source, "kv_cache", f"'io' needs 'logits' as the first output of {program!r}; it has {outs}")
    out = []
    for i, p in enumerate(pairs):
        if not (isinstance(p, list) and len(p) == 2 and p[0] in ins and p[1] in outs):
            raise _error(source, f"kv_io[{i}]", f"{p!r} is not [an input of {program!r}, an output of {program!r}]")
        out.append((p[0], p[1]))
    return tuple(out)


def read_lm(manifest: dict, source: str) -> LMSection | None:
    """The checked ``model.lm`` of ``manifest`` (None when it has none); a ConfigError names the field."""
    model = manifest.get("model") or {}
    if "lm" not in model:
        return None
    lm = model["lm"]
    if not isinstance(lm, dict):
        raise _error(source, "<section>", f"{type(lm).__name__}; a JSON object is required")
    kind = lm.get("kv_cache")
    if kind not in PROTOCOLS:
        raise _error(source, "kv_cache", f"{kind!r}; allowed: {list(PROTOCOLS)}")
    programs = manifest.get("programs") or {}
    program = lm.get("program", "decode" if kind == "state" else "forward")
    needed = STATE_PROGRAMS if kind == "state" else (program,)
    for p in needed:
        if not isinstance(p, str) or p not in programs:
            raise _error(source, "program", f"{p!r} is not one of the manifest's programs {sorted(programs)}")
    window = _int(lm, "max_seq_len", source, lo=2)
    bounds = lm.get("prompt_len", {"max": window - 1})
    if not isinstance(bounds, dict):
        raise _error(source, "prompt_len", f"{bounds!r}; expected {{'min': 1, 'max': <n>}}")
    pmax = _int(bounds, "max", source + " (model.lm.prompt_len)", lo=1, hi=window - 1)
    eos = lm.get("eos_ids", [])
    if not isinstance(eos, list) or not all(isinstance(e, int) and not isinstance(e, bool) and e >= 0 for e in eos):
        raise _error(source, "eos_ids", f"{eos!r} is not a list of token ids")
    return LMSection(
        kv_cache=kind,
        program=program,
        max_seq_len=window,
        prompt_len_max=pmax,
        bos_id=_int(lm, "bos_id", source, hi=MAX_WINDOW * 16, optional=True),
        eos_ids=tuple(eos),
        kv_io=_kv_io(lm, programs, program, source) if kind == "io" else (),
        prefill_len=_int(lm, "prefill_len", source, lo=1, hi=window) if kind == "state" else None,
        kv_cache_bytes=_int(lm, "kv_cache_bytes", source, hi=1 << 40, optional=True),
        runner_metadata=dict(lm.get("runner_metadata") or {}),
    )


def open_lm_runner(artifact_dir, manifest: dict, threads: int = 1):
    """A host runner (``prefill(prompt)`` / ``forward(tokens)`` -> last logits) for the protocol of an artifact."""
    from pathlib import Path

    lm = read_lm(manifest, str(Path(artifact_dir) / "manifest.json"))
    if lm is None:
        raise _error(str(Path(artifact_dir) / "manifest.json"), "<section>", "missing; not an LM program artifact")
    main = Path(artifact_dir) / manifest["main_file"]
    if lm.kv_cache == "in_program":
        from .runner import LMRunner

        return LMRunner(main, threads=threads)
    if lm.kv_cache == "io":
        from .onnx_program import ORTLMRunner

        return ORTLMRunner(main, threads=threads, max_seq_len=lm.max_seq_len)
    from ..base import UnavailableError

    raise UnavailableError(f"{artifact_dir}: a Core ML stateful LM program cannot run on this machine")
