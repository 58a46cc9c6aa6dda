"""The interface spec of an SDK: everything generated code depends on, read from an artifact.

    python -c "from projdeploy.sdk.spec import build_spec; import json; print(json.dumps(build_spec('dist/a', 'web'), indent=1))"

Generated code is a pure function of this spec (and the templates), never of
the artifact's bytes: the spec is written next to the generated code as
``projdeploy_sdk.json`` so a test can regenerate the code and diff it.
Checksums are not in the spec; the generated code checks the bundled
``manifest.json`` at load time and the generator checks it before copying.

Every string that reaches code is either a sanitised identifier
(:func:`identifier`) or a tensor name matching :data:`TENSOR_NAME`; task
names, labels and file contents only travel as JSON data, so a task name can
never inject code.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from ..errors import ConfigError
from .validate import FILE_NAME, TENSOR_NAME, hf_prefix, text_engine, tokenizer_fields

SPEC_FILE = "projdeploy_sdk.json"
SPEC_SCHEMA = "projdeploy.sdk/1"
DTYPES = {"int64", "int32", "float32"}
TARGET_FORMATS = {  # target -> artifact formats its runtime reads
    "web": ("onnx",),
    "ios": ("executorch", "coreml"),
    "android": ("executorch",),
}
# implemented in every language; bpe (projdeploy's) and hf (a pretrained model's tokenizer.json) when the
# tokenizer.json is a byte-level BPE or BERT's WordPiece the SDKs reproduce (validate.text_engine)
TOKENIZERS = ("pixel", "byte", "bpe", "hf")
RESOURCE_FILES = ("manifest.json", "projdeploy_tokenizer.json", "test_vectors.json")
HF_TOKENIZER = "tokenizer.json"  # a pretrained LM's own Hugging Face tokenizer (exporters/llm copies it)
LM_VECTORS = "test_vectors.npz"  # exporters/llm's binary test vectors (projdeploy.lm_vectors/1)
SELF_TEST_FILE = "projdeploy_selftest.json"  # what an app's self-test needs of them, as JSON (sdk/selftest.py)
LM_MODES = {"in_program": "kv_in_program", "io": "kv_io", "state": "kv_state"}  # model.lm.kv_cache -> lm_mode

# Keywords of Swift, Kotlin and TypeScript (and names that would shadow runtime types).
RESERVED = {
    "abstract",
    "any",
    "as",
    "associatedtype",
    "async",
    "await",
    "break",
    "case",
    "catch",
    "class",
    "const",
    "continue",
    "data",
    "default",
    "defer",
    "delete",
    "do",
    "else",
    "enum",
    "export",
    "extends",
    "extension",
    "false",
    "final",
    "for",
    "fun",
    "func",
    "function",
    "guard",
    "if",
    "import",
    "in",
    "init",
    "interface",
    "internal",
    "is",
    "let",
    "new",
    "nil",
    "null",
    "object",
    "open",
    "operator",
    "override",
    "package",
    "private",
    "protocol",
    "public",
    "repeat",
    "return",
    "self",
    "static",
    "struct",
    "super",
    "switch",
    "this",
    "throw",
    "throws",
    "true",
    "try",
    "typealias",
    "typeof",
    "val",
    "var",
    "void",
    "when",
    "where",
    "while",
    "with",
    "yield",
    "module",
    "tensor",
    "value",
    "string",
    "array",
    "map",
    "error",
    "result",
    "type",
    "promise",
}


def _words(name: str) -> list[str]:
    return [w for w in re.split(r"[^A-Za-z0-9]+", name) if w]


def identifier(task: str) -> dict:
    """Identifiers derived from a task name: only ASCII letters and digits survive.

    ``digits-cls`` -> type ``DigitsCls``, member ``digitsCls``, snake ``digits_cls``,
    package ``digits-cls``. A name with nothing usable becomes ``Model``.
    """
    words = _words(task)[:8] or ["model"]
    words = [w[:24] for w in words]
    type_name = "".join(w[:1].upper() + w[1:].lower() for w in words)
    if type_name[0].isdigit():
        type_name = "Task" + type_name
    if type_name.lower() in RESERVED:
        type_name += "Model"
    snake = "_".join(w.lower() for w in words)
    if snake[0].isdigit():
        snake = "task_" + snake
    if snake in RESERVED:
        snake += "_model"
    return {
        "type": type_name,
        "member": type_name[0].lower() + type_name[1:],
        "snake": snake,
        "kebab": snake.replace("_", "-"),
        "java_package": "ai.projdeploy.sdk." + snake,
    }


def safe_comment(text: str) -> str:
    """A string safe inside any language's line comment: printable ASCII, no comment terminators."""
    s = re.sub(r"[^A-Za-z0-9._:+-]", "_", str(text))[:80]
    return s


def _tensor(spec: dict, where: str, fmt: str = "") -> dict:
    name = spec.get("name")
    if not isinstance(name, str) or not TENSOR_NAME.match(name):
        raise ConfigError(where, "name", f"tensor name {name!r} must match {TENSOR_NAME.pattern}")
    allowed = DTYPES | (_format(fmt, where).boundary_dtypes if fmt else frozenset())
    if spec.get("dtype") not in allowed:
        raise ConfigError(where, f"{name}.dtype", f"{spec.get('dtype')!r}; supported: {sorted(allowed)}")
    shape = []
    for d in spec.get("shape", []):
        if isinstance(d, bool) or not isinstance(d, (int, str)):
            raise ConfigError(where, f"{name}.shape", f"dimension {d!r} is neither an int nor a name")
        shape.append(int(d) if isinstance(d, int) else -1)  # -1: dynamic
    return {"name": name, "shape": shape, "dtype": spec["dtype"]}


def _programs(manifest: dict, source: str) -> dict:
    fmt = str(manifest.get("format"))
    progs = manifest.get("programs") or {}
    if not progs:
        raise ConfigError(source, "programs", "no programs recorded")
    out = {}
    for pname, io in progs.items():
        if not isinstance(pname, str) or not TENSOR_NAME.match(pname):
            raise ConfigError(source, "programs", f"program name {pname!r} must match {TENSOR_NAME.pattern}")
        out[pname] = {
            k: [_tensor(t, f"{source}: programs.{pname}.{k}", fmt) for t in io.get(k, [])]
            for k in ("inputs", "outputs")
        }
    return out


def _read_json(p: Path):
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ConfigError(str(p), "<root>", f"not a UTF-8 JSON file ({e})") from None


def _tokenizer(artifact: Path, manifest: dict, lm) -> dict:
    """The tokenizer fields the code needs; an LM program's own tokenizer.json when it carries one."""
    if lm is not None and HF_TOKENIZER in (manifest.get("files") or {}):
        return _hf_tokenizer(artifact / HF_TOKENIZER, manifest, lm)
    rel = (manifest.get("model") or {}).get("tokenizer_file") or "projdeploy_tokenizer.json"
    p = artifact / rel
    if not p.is_file():
        raise ConfigError(str(artifact), "model.tokenizer_file", f"{rel!r} is missing from the artifact")
    d = _read_json(p)
    tok = tokenizer_fields(d, str(p))
    if tok["type"] not in TOKENIZERS:
        raise ConfigError(
            str(p),
            "type",
            f"{tok['type']!r} tokenizers are not supported by the SDK generator yet; supported: {list(TOKENIZERS)}",
        )
    tok["engine"] = text_engine(tok, d, str(p), str((manifest.get("model") or {}).get("task_kind")))
    tok["file"], tok["nested"] = rel, True
    return tok


def _hf_tokenizer(p: Path, manifest: dict, lm) -> dict:
    """Fields of a Hugging Face tokenizer.json (BOS/EOS from the manifest's model.lm); the prompt prefix is
    what its post-processor puts before the text."""
    d = _read_json(p)
    model = (d.get("model") or {}) if isinstance(d, dict) else {}
    vocab = model.get("vocab") if isinstance(model.get("vocab"), dict) else {}
    added = [a.get("id") for a in d.get("added_tokens") or [] if isinstance(a, dict)] if isinstance(d, dict) else []
    n = max([v for v in [*vocab.values(), *added] if isinstance(v, int)] or [-1]) + 1
    n = max(n, int(((manifest.get("model") or {}).get("config") or {}).get("vocab_size") or 0))
    raw = {"type": "hf", "vocab_size": n, "bos_id": lm.bos_id, "eos_id": (list(lm.eos_ids) or [None])[0]}
    tok = tokenizer_fields(raw, f"{p} (with model.lm of manifest.json)")
    tok["engine"] = text_engine(tok, {"hf_tokenizer": d}, str(p), "lm")
    tok["file"], tok["nested"] = HF_TOKENIZER, False
    tok["prefix"] = hf_prefix(d, str(p))
    return tok


def build_spec(artifact_dir: str | Path, target: str, manifest: dict) -> dict:
    """The interface spec for ``target`` from a verified artifact's manifest."""
    artifact = Path(artifact_dir)
    source = str(artifact / "manifest.json")
    fmt = manifest.get("format")
    if target not in TARGET_FORMATS:
        raise ConfigError("--target", "target", f"{target!r}; known targets: {sorted(TARGET_FORMATS)}")
    if fmt not in TARGET_FORMATS[target]:
        raise ConfigError(
            source,
            "format",
            f"a {fmt!r} artifact does not fit target {target!r}, which needs one of {list(TARGET_FORMATS[target])}",
        )
    model = manifest.get("model") or {}
    kind, modality = model.get("task_kind"), model.get("modality")
    if kind not in ("lm", "cls"):
        raise ConfigError(source, "model.task_kind", f"{kind!r}; allowed: 'lm', 'cls'")
    if modality is None and kind == "lm" and isinstance(model.get("lm"), dict):
        modality = "text"  # exporters/llm artifacts are text LMs
    if modality not in ("image", "text"):
        raise ConfigError(source, "model.modality", f"{modality!r}; allowed: 'image', 'text'")
    task = str(model.get("task") or "model")
    programs = _programs(manifest, source)
    lm = _lm_section(manifest, source) if kind == "lm" else None
    if kind == "lm" and lm is None:  # every LM program carries model.lm (exporters/llm)
        raise ConfigError(
            source, "model.lm", "missing; an LM package is generated from an LM program (projdeploy export)"
        )
    tok = _tokenizer(artifact, manifest, lm)
    if modality == "image" and tok["type"] != "pixel":
        raise ConfigError(source, "model.modality", "image tasks need a 'pixel' tokenizer")
    if modality == "text" and tok["type"] == "pixel":
        raise ConfigError(source, "model.modality", "text tasks need a text tokenizer, not 'pixel'")
    main = manifest.get("main_file")
    if not isinstance(main, str) or main not in (manifest.get("files") or {}) and not (artifact / main).exists():
        raise ConfigError(source, "main_file", f"{main!r} is not in the artifact")
    if not FILE_NAME.match(main):
        raise ConfigError(source, "main_file", f"{main!r} must be a plain file name matching {FILE_NAME.pattern}")
    config = model.get("config") or {}
    image_shape = model.get("image_shape")
    spec = {
        "schema": SPEC_SCHEMA,
        "target": target,
        "format": fmt,
        "task": task,
        "task_comment": safe_comment(task),
        "ids": identifier(task),
        "kind": kind,
        "modality": modality,
        "model_file": main,
        "program_files": lm.program_files(programs, main)
        if lm
        else _program_files(fmt, main, programs, artifact, source),
        "resources": [],
        "programs": programs,
        "tokenizer": {k: v for k, v in tok.items() if k not in ("engine", "file", "nested", "prefix")},
        "text_engine": tok["engine"],
        "num_labels": len(model.get("labels") or []),
        "image_shape": [int(x) for x in image_shape] if image_shape else None,
        "context": int(config.get("max_position_embeddings") or 0),
    }
    has_vectors = "test_vectors.json" in (manifest.get("files") or {})
    spec["self_test"] = has_vectors
    bundled = [f for f in RESOURCE_FILES if has_vectors or f != "test_vectors.json"]
    spec["resources"] = [*dict.fromkeys(spec["program_files"].values()), *bundled]
    if lm is not None:
        return _lm_program_spec(spec, lm, tok, manifest, config)
    return _cls_spec(spec, programs, source)


def _cls_spec(spec: dict, programs: dict, source: str) -> dict:
    """Sequence length and input handling of a classifier (an LM is driven by its ``model.lm``)."""
    if "forward" not in programs:
        raise ConfigError(source, "programs", f"{sorted(programs)}; a classifier needs 'forward'")
    spec["lm_mode"] = None
    spec["seq_len"] = _seq_len(programs["forward"]["inputs"][0], spec, source)
    spec["prompt_prefix"] = []
    spec["add_bos"] = False
    if spec["modality"] == "image":
        if not spec["image_shape"]:
            raise ConfigError(source, "model.image_shape", "an image task needs [height, width]")
        h, w = spec["image_shape"]
        if h * w > spec["seq_len"]:
            raise ConfigError(source, "model.image_shape", f"{h}x{w} does not fit input length {spec['seq_len']}")
    return spec


def _lm_section(manifest: dict, source: str):
    from exporters.llm.protocol import read_lm

    return read_lm(manifest, source)


def _lm_program_spec(spec: dict, lm, tok: dict, manifest: dict, config: dict) -> dict:
    """The spec of an exporters/llm program: generation follows model.lm (its kv_cache protocol), the
    tokenizer is the LM's own, the self-test reads the JSON form of test_vectors.npz."""
    has_vectors = LM_VECTORS in (manifest.get("files") or {})
    extra = [SELF_TEST_FILE] if has_vectors else []
    spec["resources"] = [*dict.fromkeys(spec["program_files"].values()), "manifest.json", tok["file"], *extra]
    spec["self_test"] = has_vectors
    spec["lm_mode"] = LM_MODES[lm.kv_cache]
    spec["context"] = spec["seq_len"] = lm.max_seq_len
    spec["vocab_size"] = int(config.get("vocab_size") or tok["vocab_size"])
    if tok.get("nested", True):  # a projdeploy tokenizer: prompts start after the document separator
        spec["prompt_prefix"] = [tok["eos_id"]] if tok["eos_id"] is not None else []
    else:  # a pretrained tokenizer.json: what its post-processor adds before the text
        spec["prompt_prefix"] = tok["prefix"]
    spec["add_bos"] = False
    spec["lm"] = {
        **lm.to_dict(),
        "eos_ids": list(lm.eos_ids) or ([tok["eos_id"]] if tok["eos_id"] is not None else []),
        "tokenizer_file": tok["file"],
        "tokenizer_nested": bool(tok.get("nested", True)),
    }
    return spec


def _format(fmt: str, source: str):
    """The exporters' Format named by a manifest (it owns the format's file layout and boundary dtypes)."""
    from exporters.registry import get_format

    from ..errors import UnknownNameError

    try:
        return get_format(fmt)
    except UnknownNameError as e:
        raise ConfigError(source, "format", str(e)) from None


def _program_files(fmt: str, main: str, programs: dict, artifact: Path, source: str) -> dict:
    """Which bundled file holds each program, as the format lays its artifacts out."""
    files = _format(fmt, source).program_files(programs, main, artifact)
    for p, f in files.items():
        if not (artifact / f).exists():
            raise ConfigError(source, "programs", f"program {p!r} has no {f} in the artifact")
    return files


def _seq_len(t: dict, spec: dict, source: str) -> int:
    if len(t["shape"]) != 2:
        raise ConfigError(source, f"{t['name']}.shape", f"{t['shape']}; expected (batch, sequence)")
    n = t["shape"][1]
    if n == -1:
        n = spec["context"]
    if n <= 0:
        raise ConfigError(
            source,
            f"{t['name']}.shape",
            "dynamic sequence length and no model.config.max_position_embeddings to bound it",
        )
    return n
