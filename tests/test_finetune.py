"""Fine-tuning: LM and classification from an LM backbone, AFT/KD wiring, early stopping, errors."""

import pytest
import torch

from projdeploy.errors import CheckpointError, ConfigError, DataError, UnknownNameError
from projdeploy.train.finetune import FinetuneConfig, classifier_from_lm, finetune

CFG = FinetuneConfig(steps=6, batch_size=8, eval_every=3, patience=2)


def _write(task_name, directory):
    """A freshly initialised (seeded) tiny checkpoint: fine-tuning wiring needs no pretrained weights."""
    from projdeploy.models import build_model
    from projdeploy.tasks import get_task
    from projdeploy.train.small import checkpoint_writer, model_config_for_task

    task = get_task(task_name)
    directory.mkdir(parents=True)
    checkpoint_writer(build_model(model_config_for_task(task, "tiny"), seed=0), task)(directory)
    return directory


@pytest.fixture(scope="module")
def tiny_lm_checkpoint(tmp_path_factory):
    return _write("digits:0-4", tmp_path_factory.mktemp("ft") / "lm")


@pytest.fixture(scope="module")
def tiny_cls_checkpoint(tmp_path_factory):
    return _write("digits-cls", tmp_path_factory.mktemp("ft") / "cls")


def test_lm_finetune_writes_a_loadable_checkpoint(tiny_lm_checkpoint, tmp_path):
    from projdeploy.models.checkpoint import load_model, read_meta

    model, info = finetune(
        tiny_lm_checkpoint, "digits:7", "none", out=tmp_path / "ft", cfg=CFG, train_rows=16, progress=False
    )
    assert info["train_rows"] == 16 and [h["step"] for h in info["history"]] == [3, 6]
    assert info["metric"] == "bits_per_dim" and info["best_step"] in (0, 3, 6)
    loaded = load_model(tmp_path / "ft")
    x = torch.randint(0, 17, (2, 8))
    assert torch.allclose(loaded(x), model(x))
    assert read_meta(tmp_path / "ft")["finetune"]["transfer"] == "none"


def test_classifier_from_lm_keeps_the_backbone(tiny_lm_checkpoint):
    from projdeploy.models.checkpoint import load_model
    from projdeploy.tasks import get_task

    lm = load_model(tiny_lm_checkpoint)
    clf = classifier_from_lm(lm, get_task("digits-cls"), seed=0)
    x = torch.randint(0, 17, (3, 64))
    assert clf.config.num_labels == 10
    assert torch.equal(clf.model(x), lm.model(x))


@pytest.mark.parametrize("transfer", ["aft", "kd"])
def test_feature_transfer_runs_with_cached_teacher_features(tiny_lm_checkpoint, tmp_path, transfer):
    model, info = finetune(
        tiny_lm_checkpoint,
        "digits-cls",
        transfer,
        [tiny_lm_checkpoint],
        cfg=FinetuneConfig(steps=4, batch_size=8, eval_every=2, noise_dims=4),
        train_rows=24,
        feature_cache=tmp_path / "fc",
        progress=False,
    )
    assert model.config.is_classifier and len(list((tmp_path / "fc").glob("*.npy"))) == 1
    if transfer == "aft":
        assert 0 < info["gates_mean_noise"] < 1 and 0 < info["gates_mean_real"] < 1


def test_early_stopping_restores_the_best_checkpoint(tiny_lm_checkpoint):
    # a huge learning rate makes every evaluation worse than the start -> best is step 0 (the start)
    from projdeploy.models.checkpoint import load_model

    start = load_model(tiny_lm_checkpoint)
    model, info = finetune(
        start,
        "digits:7",
        "none",
        cfg=FinetuneConfig(steps=40, batch_size=8, lr=5.0, eval_every=2, patience=2),
        train_rows=16,
        progress=False,
    )
    assert info["best_step"] == 0 and len(info["history"]) == 2
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), start.state_dict().values()))


def test_bad_inputs(tiny_lm_checkpoint, tiny_cls_checkpoint, tmp_path):
    with pytest.raises(UnknownNameError, match="known transfers: aft, distill, kd, none"):
        finetune(tiny_lm_checkpoint, "digits:7", "soup", cfg=CFG)
    with pytest.raises(CheckpointError, match="at least one --teacher"):
        finetune(tiny_lm_checkpoint, "digits:7", "distill", [], cfg=CFG)
    with pytest.raises(ConfigError, match="teacher"):
        finetune(tiny_lm_checkpoint, "digits:7", "none", [tiny_lm_checkpoint], cfg=CFG)
    with pytest.raises(CheckpointError, match="at least one --teacher"):
        finetune(tiny_lm_checkpoint, "digits:7", "aft", [], cfg=CFG)
    with pytest.raises(CheckpointError, match="is a classifier"):
        finetune(tiny_cls_checkpoint, "digits:7", "none", cfg=CFG)
    with pytest.raises(DataError, match="no training rows"):
        finetune(tiny_lm_checkpoint, "digits:7", "none", cfg=CFG, train_rows=0)
    with pytest.raises(CheckpointError, match="does not exist"):
        finetune(tmp_path / "missing", "digits:7", "none", cfg=CFG)
    assert not (tmp_path / "out").exists()
