"""Type checks for every value that reaches generated code (numbers as numbers, names as identifiers).

    python -c "from projdeploy.sdk.validate import check_spec; import json; check_spec(json.load(open('S')), 'S')"

Generated Swift, Kotlin and TypeScript embed a spec's numbers as literals and its names as
identifiers or string literals. A hostile or careless tokenizer file (``"bos_id": "0); exit(1); //"``),
manifest or hand-edited ``projdeploy_sdk.json`` must never put text into code: every field is
checked here against its type and range, and anything else raises a :class:`ConfigError` naming the
file, the field and what is allowed. Strings that do reach code are only identifiers
(``[A-Za-z_][A-Za-z0-9_]*``), tensor names and file names matching fixed patterns.
"""

from __future__ import annotations

import re

from ..errors import ConfigError

MAX_ID = 1 << 24  # ids and sizes stay far inside every language's 32-bit int
TENSOR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.]{0,63}$")
FILE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")
IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,79}$")
PACKAGE = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)*$")
KEBAB = re.compile(r"^[a-z0-9][a-z0-9-]{0,79}$")
DTYPES = ("int64", "int32", "float32", "float16")
TOKENIZER_TYPES = ("pixel", "byte", "bpe", "hf", "wordpiece")


def integer(value, source: str, field: str, lo: int = 0, hi: int = MAX_ID, optional: bool = False) -> int | None:
    """``value`` as an int in [lo, hi]; bools, floats and strings are refused (None only if optional)."""
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        allowed = f"an integer in [{lo}, {hi}]" + (" or null" if optional else "")
        raise ConfigError(source, field, f"{_show(value)} is not {allowed}")
    return value


def flag(value, source: str, field: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(source, field, f"{_show(value)} is not true or false")
    return value


def matching(value, pattern: re.Pattern, source: str, field: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ConfigError(source, field, f"{_show(value)} must be a string matching {pattern.pattern}")
    return value


def one_of(value, allowed, source: str, field: str):
    if isinstance(value, bool) or value not in allowed:
        raise ConfigError(source, field, f"{_show(value)}; allowed: {list(allowed)}")
    return value


def _show(value) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def tokenizer_fields(d, source: str) -> dict:
    """The fields of a tokenizer file the SDK uses, each checked against its type and range."""
    if not isinstance(d, dict):
        raise ConfigError(source, "<root>", f"a JSON object is required, got {type(d).__name__}")
    kind = one_of(d.get("type"), TOKENIZER_TYPES, source, "type")
    vocab = integer(d.get("vocab_size"), source, "vocab_size", lo=1)
    out = {"type": kind, "vocab_size": vocab}
    for k in ("bos_id", "eos_id", "pad_id"):
        out[k] = integer(d.get(k), source, k, lo=0, hi=vocab - 1, optional=True)
    levels = d.get("levels")
    if kind == "pixel":
        out["levels"] = integer(levels, source, "levels", lo=2, hi=vocab)
    elif levels is not None:
        raise ConfigError(source, "levels", f"{_show(levels)}: only pixel tokenizers have levels (use null)")
    else:
        out["levels"] = None
    return out


def tensor(t, source: str) -> dict:
    if not isinstance(t, dict):
        raise ConfigError(source, "tensor", f"{_show(t)} is not an object")
    name = matching(t.get("name"), TENSOR_NAME, source, "name")
    one_of(t.get("dtype"), DTYPES, source, f"{name}.dtype")
    shape = t.get("shape")
    if not isinstance(shape, list) or len(shape) > 8:
        raise ConfigError(source, f"{name}.shape", f"{_show(shape)} is not a list of at most 8 dimensions")
    for i, x in enumerate(shape):
        integer(x, source, f"{name}.shape[{i}]", lo=-1)
    return t


def check_spec(spec, source: str) -> dict:
    """Refuse an interface spec (e.g. a hand-edited ``projdeploy_sdk.json``) with any ill-typed field."""
    if not isinstance(spec, dict):
        raise ConfigError(source, "<root>", "a JSON object is required")
    one_of(spec.get("target"), ("web", "ios", "android"), source, "target")
    one_of(spec.get("kind"), ("lm", "cls"), source, "kind")
    one_of(spec.get("modality"), ("image", "text"), source, "modality")
    ids = spec.get("ids")
    if not isinstance(ids, dict):
        raise ConfigError(source, "ids", "an object of identifiers is required")
    for k in ("type", "member", "snake"):
        matching(ids.get(k), IDENT, source, f"ids.{k}")
    matching(ids.get("kebab"), KEBAB, source, "ids.kebab")
    matching(ids.get("java_package"), PACKAGE, source, "ids.java_package")
    matching(spec.get("task_comment"), re.compile(r"^[A-Za-z0-9._:+-]{0,80}$"), source, "task_comment")
    matching(spec.get("model_file"), FILE_NAME, source, "model_file")
    files = spec.get("program_files")
    if not isinstance(files, dict) or set(files) != set(spec.get("programs") or {}):
        raise ConfigError(source, "program_files", "an object naming the file of every program is required")
    for k, f in files.items():
        matching(f, FILE_NAME, source, f"program_files.{k}")
    for i, r in enumerate(spec.get("resources") or []):
        matching(r, FILE_NAME, source, f"resources[{i}]")
    tokenizer_fields(spec.get("tokenizer"), f"{source}: tokenizer")
    programs = spec.get("programs")
    if not isinstance(programs, dict) or not programs:
        raise ConfigError(source, "programs", "a non-empty object is required")
    for pname, io in programs.items():
        matching(pname, TENSOR_NAME, source, "programs")
        for k in ("inputs", "outputs"):
            for t in (io or {}).get(k) or []:
                tensor(t, f"{source}: programs.{pname}.{k}")
    for k in ("seq_len", "context", "num_labels", "vocab_size"):
        if k in spec:
            integer(spec[k], source, k)
    if spec.get("image_shape") is not None:
        shape = spec["image_shape"]
        if not isinstance(shape, list) or len(shape) != 2:
            raise ConfigError(source, "image_shape", f"{_show(shape)} is not [height, width]")
        for i, x in enumerate(shape):
            integer(x, source, f"image_shape[{i}]", lo=1, hi=4096)
    flag(spec.get("add_bos", False), source, "add_bos")
    one_of(spec.get("text_engine"), (None, "byte", "bpe", "wordpiece"), source, "text_engine")
    flag(spec.get("self_test", True), source, "self_test")
    one_of(
        spec.get("lm_mode"),
        (None, "kv_in_program", "kv_io", "kv_state"),
        source,
        "lm_mode",
    )
    if spec.get("lm") is not None:
        check_lm(spec["lm"], spec.get("programs") or {}, source)
    prefix = spec.get("prompt_prefix", [])
    if not isinstance(prefix, list) or len(prefix) > 8:
        raise ConfigError(source, "prompt_prefix", f"{_show(prefix)} is not a list of at most 8 token ids")
    for i, x in enumerate(prefix):
        integer(x, source, f"prompt_prefix[{i}]")
    return spec


def check_lm(lm, programs: dict, source: str) -> None:
    """The ``lm`` part of a spec (an exporters/llm program): numbers, names and the protocol's programs."""
    if not isinstance(lm, dict):
        raise ConfigError(source, "lm", f"{_show(lm)} is not an object")
    one_of(lm.get("kv_cache"), ("in_program", "io", "state"), source, "lm.kv_cache")
    program = matching(lm.get("program"), TENSOR_NAME, source, "lm.program")
    if program not in programs:
        raise ConfigError(source, "lm.program", f"{program!r} is not one of the programs {sorted(programs)}")
    window = integer(lm.get("max_seq_len"), source, "lm.max_seq_len", lo=2)
    integer(lm.get("prompt_len_max"), source, "lm.prompt_len_max", lo=1, hi=window - 1)
    integer(lm.get("bos_id"), source, "lm.bos_id", optional=True)
    state = lm["kv_cache"] == "state"  # Core ML: a static prefill length
    integer(lm.get("prefill_len"), source, "lm.prefill_len", lo=1, hi=window, optional=not state)
    for key in ("eos_ids", "kv_io"):
        if not isinstance(lm.get(key), list) or len(lm[key]) > 256:
            raise ConfigError(source, f"lm.{key}", f"{_show(lm.get(key))} is not a list of at most 256 entries")
    for i, e in enumerate(lm["eos_ids"]):
        integer(e, source, f"lm.eos_ids[{i}]")
    for i, pair in enumerate(lm["kv_io"]):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(source, f"lm.kv_io[{i}]", f"{_show(pair)} is not [past input, present output]")
        for x in pair:
            matching(x, TENSOR_NAME, source, f"lm.kv_io[{i}]")
    matching(lm.get("tokenizer_file"), FILE_NAME, source, "lm.tokenizer_file")
    flag(lm.get("tokenizer_nested"), source, "lm.tokenizer_nested")


def hf_prefix(d, source: str) -> list[int]:
    """Token ids a tokenizer.json's post-processor puts before the text (TemplateProcessing's special tokens
    before ``$A``; none for ByteLevel or no post-processor)."""
    post = d.get("post_processor") if isinstance(d, dict) else None
    steps = (post or {}).get("processors", []) if (post or {}).get("type") == "Sequence" else [post]
    out: list[int] = []
    for step in steps:
        if not isinstance(step, dict) or step.get("type") != "TemplateProcessing":
            continue
        specials = step.get("special_tokens") or {}
        for item in step.get("single") or []:
            if not isinstance(item, dict) or "Sequence" in item:
                break
            tok_id = (specials.get((item.get("SpecialToken") or {}).get("id")) or {}).get("ids") or []
            for i, x in enumerate(tok_id):
                out.append(integer(x, source, f"post_processor.special_tokens.ids[{i}]"))
    if len(out) > 8:
        raise ConfigError(source, "post_processor", f"{len(out)} tokens before the text; at most 8 are supported")
    return out


def no_op_normalizer(n) -> bool:
    """None, or a ``Sequence`` of no-op normalizers (transformers' GGUF converter writes an empty one)."""
    if n is None:
        return True
    return isinstance(n, dict) and n.get("type") == "Sequence" and all(map(no_op_normalizer, n.get("normalizers", [])))


def hf_bpe(d, source: str) -> None:
    """A Hugging Face tokenizer.json the SDKs' byte-level BPE reproduces exactly, or a ConfigError.

    Supported: model BPE (no dropout), no normalizer (or an empty ``Sequence``), pre-tokenizer ByteLevel (use_regex, no prefix
    space) optionally after Digits(individual_digits=True), decoder ByteLevel.
    """
    if not isinstance(d, dict):
        raise ConfigError(source, "hf_tokenizer", "a tokenizer.json object is required")
    model = d.get("model")
    if not isinstance(model, dict) or model.get("type") != "BPE":
        raise ConfigError(source, "hf_tokenizer.model.type", f"{_show((model or {}).get('type'))}; supported: 'BPE'")
    if model.get("dropout") not in (None, 0, 0.0):
        raise ConfigError(source, "hf_tokenizer.model.dropout", "BPE dropout is not supported (null)")
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in vocab.values()):
        raise ConfigError(source, "hf_tokenizer.model.vocab", "an object of token -> integer id is required")
    merges = model.get("merges")
    if not isinstance(merges, list) or not all(
        (isinstance(m, str) and " " in m)
        or (isinstance(m, list) and len(m) == 2 and all(isinstance(x, str) for x in m))
        for m in merges
    ):
        raise ConfigError(source, "hf_tokenizer.model.merges", "a list of 'a b' strings or [a, b] pairs is required")
    if not no_op_normalizer(d.get("normalizer")):
        raise ConfigError(
            source, "hf_tokenizer.normalizer", f"{_show(d['normalizer'])}; supported: null or an empty Sequence"
        )
    pre = d.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [s.get("type") if isinstance(s, dict) else None for s in steps]
    if kinds not in (["ByteLevel"], ["Digits", "ByteLevel"]):
        raise ConfigError(
            source, "hf_tokenizer.pre_tokenizer", f"{kinds}; supported: ByteLevel, or Sequence [Digits, ByteLevel]"
        )
    level = steps[-1]
    if level.get("add_prefix_space") or not level.get("use_regex", True):
        raise ConfigError(
            source, "hf_tokenizer.pre_tokenizer", "ByteLevel needs add_prefix_space false and use_regex true"
        )
    if kinds[0] == "Digits" and not steps[0].get("individual_digits"):
        raise ConfigError(source, "hf_tokenizer.pre_tokenizer", "Digits needs individual_digits true")
    for i, a in enumerate(d.get("added_tokens") or []):
        if not isinstance(a, dict) or not isinstance(a.get("content"), str) or not a["content"]:
            raise ConfigError(source, f"hf_tokenizer.added_tokens[{i}].content", "a non-empty string is required")
        integer(a.get("id"), source, f"hf_tokenizer.added_tokens[{i}].id")


def hf_wordpiece(d, source: str) -> None:
    """A Hugging Face tokenizer.json the SDKs' WordPiece reproduces (BERT's), or a ConfigError.

    Supported: model WordPiece, normalizer BertNormalizer (or none), pre-tokenizer BertPreTokenizer,
    post-processor [CLS] $A [SEP] (TemplateProcessing or BertProcessing) with both in the vocabulary.
    """
    model = d.get("model") or {}
    vocab = model.get("vocab")
    if not isinstance(vocab, dict) or not all(isinstance(v, int) and not isinstance(v, bool) for v in vocab.values()):
        raise ConfigError(source, "hf_tokenizer.model.vocab", "an object of token -> integer id is required")
    for tok in ("[CLS]", "[SEP]", model.get("unk_token", "[UNK]")):
        if tok not in vocab:
            raise ConfigError(source, "hf_tokenizer.model.vocab", f"{tok!r} is missing; BERT's [CLS] A [SEP] needs it")
    norm = d.get("normalizer")
    if norm is not None and (not isinstance(norm, dict) or norm.get("type") != "BertNormalizer"):
        raise ConfigError(source, "hf_tokenizer.normalizer", f"{_show(norm)}; supported: BertNormalizer or null")
    pre = d.get("pre_tokenizer")
    if not isinstance(pre, dict) or pre.get("type") != "BertPreTokenizer":
        raise ConfigError(source, "hf_tokenizer.pre_tokenizer", f"{_show(pre)}; supported: BertPreTokenizer")
    post = d.get("post_processor") or {}
    single = [next(iter(x.values())).get("id") for x in post.get("single", []) if isinstance(x, dict) and x]
    if not (post.get("type") == "BertProcessing" or single == ["[CLS]", "A", "[SEP]"]):
        raise ConfigError(source, "hf_tokenizer.post_processor", "supported: [CLS] $A [SEP] (BERT's)")


def text_engine(tok: dict, d: dict, source: str, kind: str) -> str | None:
    """Which SDK tokenizer implements a checked tokenizer file: byte, bpe or wordpiece (None: pixel)."""
    if tok["type"] in ("pixel", "byte"):
        return None if tok["type"] == "pixel" else "byte"
    hf = d.get("hf_tokenizer")
    model_type = (hf or {}).get("model", {}).get("type") if isinstance(hf, dict) else None
    if model_type == "WordPiece":
        if kind != "cls":
            raise ConfigError(source, "hf_tokenizer.model.type", "WordPiece is supported for classifiers only")
        hf_wordpiece(hf, source)
        return "wordpiece"
    hf_bpe(hf, source)
    return "bpe"
