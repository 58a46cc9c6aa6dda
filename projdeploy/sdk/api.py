"""The one API every generated SDK exposes: method names, parameters and result types, per task kind.

    python -c "from projdeploy.sdk.api import methods; print([m.name for m in methods('lm', 'text')])"

Swift, Kotlin and TypeScript render the same methods with the same names and result types, each in
its own idiom (Swift ``async throws`` + ``AsyncThrowingStream``; Kotlin ``suspend`` + ``Flow``;
TypeScript ``Promise`` + ``AsyncIterable`` with inference in a Web Worker). The templates read the
names from here (``api.<key>``) and tests/test_sdk_api.py checks that each generated package exposes
exactly :func:`methods` for its spec, no more and no fewer.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Method:
    key: str
    name: str
    returns: str  # result type name (the same type name in every language)
    kinds: tuple[tuple[str, str], ...]  # (task kind, modality) pairs it exists for; () = every task
    doc: str
    streams: bool = False  # an asynchronous sequence of text pieces instead of one result


RESULT_TYPES = ("Classification", "Completion", "SelfTestReport", "SamplingOptions", "TensorData")
# Int[] is [Int] in Swift, IntArray in Kotlin, number[] in TypeScript.

METHODS = (
    Method("load", "load", "Self", (), "Load the bundled model after checking its sha256 (off the main thread)."),
    Method("classify_image", "classifyImage", "Classification", (("cls", "image"),), "Classify an image."),
    Method("classify_text", "classifyText", "Classification", (("cls", "text"),), "Classify a text."),
    Method("complete", "complete", "Completion", (("lm", "text"),), "Complete a text: continuation and its tokens."),
    Method("stream", "stream", "String", (("lm", "text"),), "Stream the continuation of a text piece by piece.", True),
    Method(
        "generate_tokens",
        "generateTokens",
        "Int[]",
        (("lm", "text"), ("lm", "image")),
        "Generate token ids after a prompt of token ids.",
    ),
    Method("self_test", "selfTest", "SelfTestReport", (), "Run the bundled test vectors."),
    Method("run", "run", "TensorData", (), "Run one program of the artifact on raw tensors."),
    Method("close", "close", "Void", (), "Release the runtime (waits for a running call to stop)."),
)


def methods(kind: str, modality: str) -> list[Method]:
    """The methods of a package for a task of ``kind`` / ``modality``."""
    return [m for m in METHODS if not m.kinds or (kind, modality) in m.kinds]


def names() -> dict[str, str]:
    """``key -> name`` for the templates (``{{ api.classify_image }}``)."""
    return {m.key: m.name for m in METHODS}
