"""Every shipped build target validates; bad target files name the field."""

from __future__ import annotations

import pytest

from projdeploy.errors import ConfigError, UnknownNameError
from projdeploy.targets import TARGET_DIR, load_target, shipped_targets


def test_every_shipped_target_loads_and_is_counted():
    files = sorted(TARGET_DIR.glob("*.yaml"))
    assert len(files) == 4 and shipped_targets() == ["android", "ios", "linux", "web"]
    from exporters.registry import get_recipe
    from projdeploy.check.profiles import get_profile

    for f in files:
        t = load_target(f.stem)
        assert t.name == f.stem and t.artifacts and t.profiles
        for a in t.artifacts:
            get_recipe(a.format, a.recipe)  # raises with the known list if a recipe name is wrong
        for p in t.profiles:
            get_profile(p)


def test_unknown_target_lists_known():
    with pytest.raises(UnknownNameError, match="known targets: .*android, ios, linux, web"):
        load_target("watchos")


@pytest.mark.parametrize(
    "text,field",
    [
        ("name: x\nprofiles: []\n", "'artifacts'"),
        ("name: x\nartifacts: [{format: onnx}]\nprofiles: []\n", "'artifacts[0]'"),
        ("name: x\nartifacts: [{format: onnx, recipe: fp32}]\nprofiles: []\nsdk: symbian\n", "'sdk'"),
        (
            "name: x\nartifacts: [{format: onnx, recipe: fp32}]\nprofiles: []\nsdk: web\nsdk_artifact: onnx/int8\n",
            "'sdk_artifact'",
        ),
        ("name: x\nartifacts: [{format: onnx, recipe: fp32}]\nprofiles: []\nspeed: fast\n", "'speed'"),
    ],
)
def test_bad_target_file(tmp_path, text, field):
    f = tmp_path / "t.yaml"
    f.write_text(text)
    with pytest.raises(ConfigError) as e:
        load_target(str(f))
    assert field in str(e.value) and "t.yaml" in str(e.value)
