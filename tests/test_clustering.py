"""k-means clustering of pretraining documents; assignment of new documents after save/load."""

import numpy as np
import pytest

from projdeploy.errors import ConfigError, DataError
from projdeploy.tasks import get_task
from projdeploy.tasks.clustering import (
    Clustering,
    EmbeddingSpec,
    clustering_units,
    fit_clusters,
    parse_embedding,
    row_clusters,
)


def test_pixels_clusters_roundtrip_and_subset_assignment(tmp_path):
    t = get_task("digits")
    docs, row_unit = clustering_units(t, t.train)
    c = fit_clusters(docs, 4, parse_embedding("auto", t))
    assert c.spec.kind == "pixels" and sum(c.sizes) == len(t.train) and min(c.sizes) > 0
    c.save(tmp_path)
    c2 = Clustering.load(tmp_path)
    sub = get_task("digits:7")
    a, b = row_clusters(c, sub, sub.train), row_clusters(c2, sub, sub.train)
    assert np.array_equal(a, b)
    # a single digit class is concentrated: its most frequent cluster holds most of its images
    assert np.bincount(a).max() / len(a) > 0.5


def test_text_units_and_tfidf_svd_roundtrip(tmp_path):
    docs = [
        "def f(x):\n    return x + 1\n" * 20,
        "class A:\n    pass\n" * 30,
        "import os\nos.path.join(a)\n" * 25,
        "def g(y):\n    return y * 2\n" * 20,
        "class B(A):\n    x = 1\n" * 30,
        "import sys\nsys.exit(0)\n" * 25,
    ]
    spec = EmbeddingSpec(kind="tfidf-svd", n_features=1024, svd_dims=4)
    c = fit_clusters(docs, 3, spec)
    c.save(tmp_path)
    c2 = Clustering.load(tmp_path)
    assert np.array_equal(c.assign(docs), c2.assign(docs))
    assert np.allclose(c.embed(docs), c2.embed(docs), atol=1e-6)
    lab = c.assign(docs)
    assert lab[0] == lab[3] and lab[1] == lab[4] and lab[2] == lab[5]  # same-shaped code together


def test_errors_are_clear():
    with pytest.raises(DataError, match="cannot cluster 2 documents"):
        fit_clusters(["a", "b"], 3, EmbeddingSpec())
    with pytest.raises(ConfigError, match="kind"):
        EmbeddingSpec(kind="bert")
    with pytest.raises(ConfigError, match="model_path"):
        EmbeddingSpec(kind="sentence")
