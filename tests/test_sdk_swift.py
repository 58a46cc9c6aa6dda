"""Swift conformance (no Swift toolchain here): generated Swift uses only listed runtime symbols, in listed ways.

    .venv/bin/python -m pytest tests/test_sdk_swift.py -q

sample_apps/ios/conformance/runtime_api.json lists every ExecuTorch and Core ML symbol the generated
Swift may use (type, initializer / method / property, argument labels, throws, optionality) with its
signature and source line at the release tag (ExecuTorch) or Apple's documentation page (Core ML).
With tree-sitter-swift, every generated package is checked: each constructor call, member call and
member access resolves to a declaration of the package itself, a listed runtime symbol (same labels,
called with ``try`` when it throws, unwrapped when it is optional) or a small list of Swift standard
library / Foundation members; every type named is declared, listed or standard; and every top-level
declaration and every member of a public type has an explicit access level.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from projdeploy.sdk import generated_files

ROOT = Path(__file__).resolve().parents[1]
TABLE = json.loads((ROOT / "sample_apps" / "ios" / "conformance" / "runtime_api.json").read_text())
RUNTIME_TYPES = {s["type"] for s in TABLE["symbols"]} | {"MLFeatureProvider"}

# Swift standard library / Foundation / CryptoKit / XCTest names the generated code may use.
STD_TYPES = set(
    "Any AnyObject Array AsyncThrowingStream Bool Bundle Character CustomStringConvertible Data Dictionary Double "
    "Error Float Int Int32 Int64 JSONSerialization NSNumber NSRange NSRegularExpression Range SHA256 Self Sendable "
    "Set String Substring Task UInt32 UInt8 URL Unicode UTF8 XCTestCase Foundation Index Scalar UnicodeScalarView "
    "Void XCTAssertTrue testable".split()
)
STD_MEMBERS = set(
    "allSatisfy append bundle contains count data deletingLastPathComponent description doubleValue dropFirst "
    "enumerated filter finish firstIndex flatMap floatValue hash hasPrefix index intValue isEmpty isCancelled "
    "joined jsonObject lowerBound map matches max min module onTermination path prefix range reduce remove "
    "removeFirst rounded sorted split startIndex endIndex suffix unicodeScalars upperBound url utf8 value values "
    "yield cancel checkCancellation appendingPathComponent toNearestOrEven exp self compactMap keys forEach "
    "Scalar UnicodeScalarView properties isWhitespace generalCategory decomposedStringWithCanonicalMapping "
    "lowercased contains".split()
)


@dataclass
class Use:
    kind: str  # init | call | property | type
    name: str
    labels: tuple[str, ...] | None
    tried: bool
    unwrapped: bool
    line: int


def _parser():
    import tree_sitter_swift
    from tree_sitter import Language, Parser

    return Parser(Language(tree_sitter_swift.language()))


def _text(n, src: bytes) -> str:
    return src[n.start_byte : n.end_byte].decode()


def _labels(call, src: bytes) -> tuple[str, ...]:
    out = []
    for suffix in (c for c in call.children if c.type == "call_suffix"):
        for args in (c for c in suffix.children if c.type == "value_arguments"):
            for a in (c for c in args.children if c.type == "value_argument"):
                label = next((c for c in a.children if c.type == "value_argument_label"), None)
                out.append(_text(label, src) if label is not None else "_")
    return tuple(out)


def _has_ancestor(n, types: set[str], stop: set[str] = frozenset({"function_body", "lambda_literal"})) -> bool:
    p = n.parent
    while p is not None and p.type not in stop:
        if p.type in types:
            return True
        p = p.parent
    return False


def _unwrapped(n, src: bytes) -> bool:
    """An optional result is bound by if/guard let, chained with ?, or defaulted with ??; an optional
    property that is assigned to (``config.functionName = "decode"``) is written, not read."""
    p = n.parent
    if p is not None and p.type == "directly_assignable_expression":
        return True
    if p is not None and p.type == "navigation_expression" and _text(p, src)[len(_text(n, src)) :].startswith("?"):
        return True
    while p is not None and p.type not in ("statements", "function_body"):
        if p.type in ("if_statement", "guard_statement", "nil_coalescing_expression", "optional_chaining"):
            return True
        p = p.parent
    return False


def uses(src_text: str) -> list[Use]:
    """Every constructor call, member call, member access and type name in a Swift source."""
    src = src_text.encode()
    tree = _parser().parse(src)
    assert not tree.root_node.has_error
    out: list[Use] = []

    def visit(n):
        if n.type == "call_expression":
            callee = n.children[0]
            tried = _has_ancestor(n, {"try_expression"})
            line = n.start_point[0] + 1
            if callee.type == "simple_identifier" and _text(callee, src)[:1].isupper():
                out.append(Use("init", _text(callee, src), _labels(n, src), tried, True, line))
            elif callee.type == "navigation_expression":
                name = _text(callee.children[-1], src).lstrip("?.")
                out.append(Use("call", name, _labels(n, src), tried, _unwrapped(n, src), line))
        elif n.type == "navigation_expression" and not (n.parent is not None and n.parent.type == "call_expression"):
            suffix = n.children[-1]
            name = _text(suffix, src).lstrip("?.")
            if name and name[0].isalpha() and not _text(n.children[0], src).startswith("."):
                out.append(Use("property", name, None, False, _unwrapped(n, src), n.start_point[0] + 1))
        elif n.type == "type_identifier":
            out.append(Use("type", _text(n, src), None, False, True, n.start_point[0] + 1))
        for c in n.children:
            visit(c)

    visit(tree.root_node)
    return out


def _param_labels(n, src: bytes) -> tuple[str, ...]:
    params = (c for c in n.children if c.type == "parameter")
    return tuple(_text(next(c for c in p.children if c.type == "simple_identifier"), src) for p in params)


def _collect(n, src: bytes, types: set, members: set) -> None:
    if n.type in ("class_declaration", "protocol_declaration", "typealias_declaration"):
        name = next((c for c in n.children if c.type == "type_identifier"), None)
        if name is not None:
            types.add(_text(name, src))
    if n.type in ("function_declaration", "protocol_function_declaration", "init_declaration"):
        name = (
            "init"
            if n.type == "init_declaration"
            else _text(next(c for c in n.children if c.type == "simple_identifier"), src)
        )
        members.update({(name, _param_labels(n, src)), (name, None)})
    if n.type == "property_declaration":
        members.update((_text(c, src), None) for c in n.children if c.type == "pattern")
    if n.type == "enum_entry":
        members.update((_text(c, src), None) for c in n.children if c.type == "simple_identifier")
    for c in n.children:
        _collect(c, src, types, members)


def declarations(files: dict[str, str]) -> tuple[set[str], set[tuple[str, tuple[str, ...] | None]]]:
    """Names declared by the package: types, and (function, initializer or property name, labels)."""
    types: set[str] = set()
    members: set = set()
    for text in files.values():
        src = text.encode()
        _collect(_parser().parse(src).root_node, src, types, members)
    return types, members


def problems(files: dict[str, str]) -> list[str]:
    types, members = declarations(files)
    table = TABLE["symbols"]
    out = []
    for path, text in sorted(files.items()):
        if not path.endswith(".swift") or path == "Package.swift":
            continue
        for u in uses(text):
            where = f"{path}:{u.line}: {u.kind} {u.name}{'' if u.labels is None else '(' + ':'.join(u.labels) + ')'}"
            if u.kind == "type":
                if u.name not in types | RUNTIME_TYPES | STD_TYPES:
                    out.append(f"{where}: type is neither declared, listed nor standard")
                continue
            if u.kind == "init":
                if u.name in types or u.name in STD_TYPES:
                    continue
                match = [s for s in table if s["kind"] == "init" and s["type"] == u.name]
                if not match:
                    out.append(f"{where}: not a listed runtime initializer")
                    continue
                ok = [s for s in match if tuple(s["labels"]) == u.labels[: len(s["labels"])]]
                ok.sort(key=lambda s: len(s["labels"]) != len(u.labels))  # an exact overload first
                if not ok or len(u.labels) != len(ok[0]["labels"]):
                    out.append(f"{where}: labels differ from {[s['signature'] for s in match]}")
                elif ok[0]["throws"] and not u.tried:
                    out.append(f"{where}: throws ({ok[0]['signature']}) but is not called with try")
                continue
            listed = [s for s in table if s.get("name") == u.name]
            if u.kind == "call":
                hits = [s for s in listed if s["kind"] == "method" and tuple(s["labels"]) == u.labels]
                if (u.name, u.labels) in members or (u.name in STD_MEMBERS and not listed):
                    continue
                if not hits:
                    if (u.name, None) in members or u.name in STD_MEMBERS:
                        continue
                    sigs = [s["signature"] for s in listed]
                    out.append(f"{where}: not a listed runtime method" + (f" (listed: {sigs})" if sigs else ""))
                    continue
                s = hits[0]
                if s["throws"] and not u.tried:
                    out.append(f"{where}: throws ({s['signature']}) but is not called with try")
                if s.get("optional") and not u.unwrapped:
                    out.append(f"{where}: returns an optional ({s['signature']}) that is not unwrapped")
            else:  # property
                hits = [s for s in listed if s["kind"] == "property"]
                if (u.name, None) in members or u.name in STD_MEMBERS or hits:
                    if hits and hits[0].get("optional") and not u.unwrapped and (u.name, None) not in members:
                        out.append(f"{where}: optional property ({hits[0]['signature']}) not unwrapped")
                    continue
                sigs = [s["signature"] for s in listed]
                out.append(f"{where}: not a listed runtime property" + (f" (listed: {sigs})" if sigs else ""))
    return out + access_problems(files)


DECLS = {
    "class_declaration",
    "function_declaration",
    "property_declaration",
    "init_declaration",
    "protocol_declaration",
    "typealias_declaration",
}


def _visibility(n, src: bytes) -> str | None:
    mods = next((c for c in n.children if c.type == "modifiers"), None)
    if mods is None:
        return None
    vis = next((c for c in mods.children if c.type == "visibility_modifier"), None)
    return _text(vis, src).split("(")[0] if vis is not None else None


def access_problems(files: dict[str, str]) -> list[str]:
    """Top-level declarations and members of public types name their access level."""
    out = []
    for path, text in sorted(files.items()):
        if not path.endswith(".swift") or path == "Package.swift" or "/Tests/" in f"/{path}":
            continue
        src = text.encode()
        root = _parser().parse(src).root_node
        for n in root.children:
            if n.type not in DECLS:
                continue
            vis = _visibility(n, src)
            if vis is None:
                out.append(f"{path}:{n.start_point[0] + 1}: top-level declaration without an access level")
            if vis != "public":
                continue
            body = next((c for c in n.children if c.type in ("class_body", "enum_class_body", "protocol_body")), None)
            for m in body.children if body is not None else []:
                if m.type in DECLS and _visibility(m, src) is None:
                    out.append(f"{path}:{m.start_point[0] + 1}: member of a public type without an access level")
    return out


def _specs() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted((ROOT / "sample_apps" / "ios" / "Packages").glob("*/*.json"))]


@pytest.mark.parametrize("spec", _specs(), ids=lambda s: s["ids"]["type"])
def test_generated_swift_uses_only_listed_runtime_symbols(spec):
    assert problems(generated_files(spec)) == []


def test_the_core_ml_variant_conforms_too():
    spec = json.loads(json.dumps(_specs()[0]))
    spec["format"] = "coreml"
    spec["program_files"] = {p: f"{p}.mlpackage" for p in spec["programs"]}
    spec["resources"] = [*spec["program_files"].values(), "manifest.json", "projdeploy_tokenizer.json"]
    files = generated_files(spec)
    assert "CoreMLBackend" in "".join(files.values())
    assert problems(files) == []


@pytest.mark.parametrize(
    "bad,why",
    [
        ('guard let any = value.tensor else { throw SDKError.runtime("x") }', "not a listed runtime property"),
        ('let m = Module(path: "p")', "labels differ"),
        ('let outs = module.execute("forward", [])', "not called with try"),
        ("let t: Tensor<Float> = value.tensor()!", "not unwrapped"),
        ("try module.forward([])", "not a listed runtime method"),
    ],
)
def test_the_checker_catches_misuse(bad, why):
    spec = _specs()[0]
    files = generated_files(spec)
    key = next(k for k in files if k.endswith("/Runtime.swift"))
    files[key] = files[key].replace(
        "  func run(_ program: String, _ inputs: [TensorData], _ spec: ProgramSpec) throws -> [TensorData] {\n    try module",
        f"  func run(_ program: String, _ inputs: [TensorData], _ spec: ProgramSpec) throws -> [TensorData] {{\n"
        f"    let value = Value(Tensor<Float>([1], shape: [1]))\n    {bad}\n    try module",
        1,
    )
    found = problems(files)
    assert any(why in p for p in found), found


def test_the_checker_catches_a_public_member_without_access_level():
    files = generated_files(_specs()[0])
    key = next(k for k in files if k.endswith("/Runtime.swift"))
    files[key] = files[key].replace("  public let index: Int", "  let index: Int", 1)
    assert any("without an access level" in p for p in access_problems(files))
