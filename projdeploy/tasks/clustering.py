"""Cluster pretraining documents with k-means; assign new task documents to the same clusters.

    python -c "from projdeploy.tasks import get_task; from projdeploy.tasks.clustering import *; \
t = get_task('digits'); c = fit_clusters(t.train.docs, 4, default_embedding(t)); print(c.sizes)"

The embedding is pluggable (``EmbeddingSpec.kind``):
- ``pixels``: raw pixel values scaled to [0, 1] (images; fast, offline);
- ``tfidf-svd``: hashed character n-gram TF-IDF + truncated SVD, unit-normalised (text; offline);
- ``sentence``: a sentence-embedding model from a *local* path (sentence-transformers must be installed).
Everything needed to embed new documents (IDF weights, SVD basis) and the
centroids are saved as safetensors + JSON, never pickle, so ``project`` can
assign a new task's documents later.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError, DataError

CLUSTERS_JSON = "clusters.json"
CLUSTERS_TENSORS = "clusters.safetensors"
EMBEDDINGS = ("pixels", "tfidf-svd", "sentence")
ROWS_PER_UNIT = 16


@dataclass(frozen=True)
class EmbeddingSpec:
    kind: str = "tfidf-svd"
    n_features: int = 2**14  # hashed n-gram buckets
    ngram_min: int = 3
    ngram_max: int = 5
    svd_dims: int = 32
    max_chars: int = 20000  # each document is embedded from its first max_chars characters
    model_path: str | None = None  # sentence: local model directory
    seed: int = 0
    version: int = 1

    def __post_init__(self):
        if self.kind not in EMBEDDINGS:
            raise ConfigError("embedding", "kind", f"must be one of {', '.join(EMBEDDINGS)}, got {self.kind!r}")
        if self.kind == "sentence" and not self.model_path:
            raise ConfigError("embedding", "model_path", "the sentence embedding needs a local model directory")


def default_embedding(task, seed: int = 0) -> EmbeddingSpec:
    return EmbeddingSpec(kind="pixels" if task.modality == "image" else "tfidf-svd", seed=seed)


def parse_embedding(spec: str | None, task, seed: int = 0) -> EmbeddingSpec:
    """CLI form: ``auto`` | ``pixels`` | ``tfidf-svd`` | ``sentence:<local model dir>``."""
    if spec in (None, "", "auto"):
        return default_embedding(task, seed)
    kind, _, path = spec.partition(":")
    return EmbeddingSpec(kind=kind, model_path=path or None, seed=seed)


@dataclass
class Clustering:
    spec: EmbeddingSpec
    centroids: np.ndarray  # (k, D) float32
    state: dict  # embedding tensors (idf, svd basis), float32 arrays
    sizes: list  # documents per cluster at fit time

    @property
    def k(self) -> int:
        return int(self.centroids.shape[0])

    def embed(self, docs) -> np.ndarray:
        return _embed(self.spec, docs, self.state)[0]

    def assign(self, docs) -> np.ndarray:
        """Nearest centroid (Euclidean in embedding space) of every document -> (n,) int64."""
        if len(docs) == 0:
            return np.zeros(0, np.int64)
        x = self.embed(docs).astype(np.float64)
        c = self.centroids.astype(np.float64)
        d2 = (x * x).sum(1)[:, None] - 2 * x @ c.T + (c * c).sum(1)[None]
        return d2.argmin(1).astype(np.int64)

    def save(self, directory: str | Path) -> None:
        from safetensors.numpy import save_file

        directory = Path(directory)
        arrays = {"centroids": self.centroids, **self.state}  # C order: safetensors writes the raw buffer
        save_file(
            {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in arrays.items()}, str(directory / CLUSTERS_TENSORS)
        )
        (directory / CLUSTERS_JSON).write_text(
            json.dumps(
                {"k": self.k, "sizes": self.sizes, "embedding": dataclasses.asdict(self.spec)}, indent=2, sort_keys=True
            )
        )

    @classmethod
    def load(cls, directory: str | Path) -> Clustering:
        from safetensors.numpy import load_file

        directory = Path(directory)
        js, ts = directory / CLUSTERS_JSON, directory / CLUSTERS_TENSORS
        if not js.is_file() or not ts.is_file():
            raise CheckpointError(
                f"{directory}: no clusters ({CLUSTERS_JSON} + {CLUSTERS_TENSORS}); "
                "was it written by `projdeploy pretrain --model pn|hard-moe`?"
            )
        meta = json.loads(js.read_text())
        tensors = load_file(str(ts))
        centroids = tensors.pop("centroids")
        return cls(EmbeddingSpec(**meta["embedding"]), centroids, tensors, meta["sizes"])


def fit_clusters(docs, k: int, spec: EmbeddingSpec) -> Clustering:
    """Embed ``docs`` and run k-means (scikit-learn, seeded) into ``k`` clusters."""
    from sklearn.cluster import KMeans

    if len(docs) < k:
        raise DataError(
            f"cannot cluster {len(docs)} documents into k={k} clusters; "
            "use more pretraining documents or a preset with fewer experts"
        )
    x, state = _embed(spec, docs, None)
    km = KMeans(n_clusters=k, n_init=4, random_state=spec.seed).fit(x.astype(np.float64))
    sizes = np.bincount(km.labels_, minlength=k).tolist()
    return Clustering(spec, km.cluster_centers_.astype(np.float32), state, sizes)


def clustering_units(task, split, rows_per_unit: int = ROWS_PER_UNIT):
    """The documents we cluster, and the unit of every row: ``(unit_docs, row_unit)``.

    Images: one unit per image. Text: each document cut into segments of at most
    ``rows_per_unit`` consecutive windows (about 2 KB), so one huge file does not
    swallow a cluster; the segment text is the decoded windows.
    """
    if split.doc_index is None or len(split) == 0:
        raise DataError(f"task {task.name}: the split has no rows with document ids to cluster")
    if task.modality == "image":
        if not split.docs:
            raise DataError(f"task {task.name}: the split carries no documents (Split.docs is empty)")
        return list(split.docs), np.asarray(split.doc_index)
    doc = np.asarray(split.doc_index)
    row_unit = np.zeros(len(doc), np.int64)
    unit, run = 0, 0
    for i in range(1, len(doc)):
        run += 1
        if doc[i] != doc[i - 1] or run >= rows_per_unit:
            unit, run = unit + 1, 0
        row_unit[i] = unit
    body = task.model_inputs(split.tokens)
    texts = [""] * (unit + 1)
    pieces: list[list] = [[] for _ in range(unit + 1)]
    for i, u in enumerate(row_unit):
        pieces[u].append(body[i])
    for u, rows in enumerate(pieces):
        texts[u] = task.tokenizer.decode(np.concatenate(rows).tolist())
    return texts, row_unit


def row_clusters(clustering: Clustering, task, split) -> np.ndarray:
    """Cluster id of every row of a task split (rows inherit their unit's cluster)."""
    docs, row_unit = clustering_units(task, split)
    return clustering.assign(docs)[row_unit]


def _embed(spec: EmbeddingSpec, docs, state):
    if spec.kind == "pixels":
        x = np.stack([np.asarray(d, dtype=np.float32).reshape(-1) for d in docs])
        return x / max(float(x.max()), 1.0) if state is None else x / state["scale"][
            0
        ], state if state is not None else {"scale": np.array([max(float(x.max()), 1.0)], np.float32)}
    if spec.kind == "sentence":
        return _sentence(spec, docs), state or {}
    return _tfidf_svd(spec, docs, state)


def _texts(docs, max_chars):
    out = []
    for d in docs:
        if not isinstance(d, str):
            raise DataError("the tfidf-svd embedding needs text documents; use --embedding pixels for images")
        out.append(d[:max_chars])
    return out


def _tfidf_svd(spec: EmbeddingSpec, docs, state):
    from sklearn.feature_extraction.text import HashingVectorizer

    hv = HashingVectorizer(
        analyzer="char_wb",
        ngram_range=(spec.ngram_min, spec.ngram_max),
        n_features=spec.n_features,
        alternate_sign=False,
        norm=None,
    )
    counts = hv.transform(_texts(docs, spec.max_chars)).tocsr().astype(np.float64)
    counts.data = np.log1p(counts.data)  # sublinear term frequency
    if state is None:
        n = counts.shape[0]
        df = np.bincount(counts.indices, minlength=spec.n_features)
        idf = (np.log((1 + n) / (1 + df)) + 1).astype(np.float32)
    else:
        idf = state["idf"]
    x = counts.multiply(idf.astype(np.float64)[None]).tocsr()
    norms = np.sqrt(np.asarray(x.multiply(x).sum(1))).reshape(-1, 1)
    x = x.multiply(1 / np.maximum(norms, 1e-12)).tocsr()
    if state is None:
        from sklearn.decomposition import TruncatedSVD

        dims = min(spec.svd_dims, x.shape[0] - 1, spec.n_features - 1)
        svd = TruncatedSVD(n_components=max(dims, 1), random_state=spec.seed).fit(x)
        basis = np.ascontiguousarray(svd.components_, dtype=np.float32)
        state = {"idf": idf, "svd_basis": basis}
    z = np.asarray(x @ state["svd_basis"].astype(np.float64).T)
    z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z.astype(np.float32), state


def _sentence(spec: EmbeddingSpec, docs):
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise ConfigError(
            "embedding", "kind", "'sentence' needs the sentence-transformers package; install it or use tfidf-svd"
        ) from None
    if not Path(spec.model_path).is_dir():
        raise ConfigError(
            "embedding", "model_path", f"{spec.model_path!r} is not a local model directory (no downloads are made)"
        )
    model = SentenceTransformer(spec.model_path, device="cpu")
    z = model.encode(_texts(docs, spec.max_chars), normalize_embeddings=True, show_progress_bar=False)
    return np.asarray(z, dtype=np.float32)
