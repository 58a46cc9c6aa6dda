"""Profiles: every shipped YAML validates, counts, sources; user profiles; bad input names the field."""

from __future__ import annotations

import pytest
import yaml

from projdeploy.check.profiles import PACKAGE_DIR, all_profiles, get_profile, load_profile_file, profile_names
from projdeploy.errors import ConfigError, UnknownNameError

SHIPPED = {"iphone-15-pro", "iphone-13", "pixel-8", "galaxy-s24", "snapdragon-7-gen-4", "raspberry-pi-5", "x86-laptop"}


def test_every_shipped_profile_validates_and_is_counted():
    files = sorted(p.stem for p in PACKAGE_DIR.glob("*.yaml") if not p.name.startswith("_"))
    assert set(files) == SHIPPED and len(files) == 7
    profs = all_profiles()
    assert {p.name for p in profs} >= SHIPPED
    for p in profs:
        assert p.runtimes and p.cpu_clusters
        for rt in p.runtimes.values():  # every number has a source that resolves to the sources table
            for e in rt.precisions.values():
                for n in e.values():
                    assert n.value is None or n.source


def test_sources_are_urls_or_derivations():
    for p in all_profiles():
        for sid, url in p.sources.items():
            assert url.startswith("http") or sid in ("HW2", "HW5", "FIT"), (p.name, sid)


def test_unknown_profile_lists_known():
    with pytest.raises(UnknownNameError) as e:
        get_profile("nokia-3310")
    assert "galaxy-s24" in str(e.value) and "pixel-8" in str(e.value)


def _user_profile(tmp_path, **change):
    data = yaml.safe_load((PACKAGE_DIR / "pixel-8.yaml").read_text())
    data["name"] = "my-phone"
    data.update(change)
    p = tmp_path / "my-phone.yaml"
    p.write_text(yaml.safe_dump(data))
    return p


def test_user_profile_by_path_and_env(tmp_path, monkeypatch):
    p = _user_profile(tmp_path, memory_bandwidth_gbs={"value": 40.0, "source": "S10", "note": "mine"})
    assert get_profile(str(p)).memory_bandwidth_gbs.value == 40.0
    monkeypatch.setenv("PROJDEPLOY_PROFILES", str(tmp_path))
    assert "my-phone" in profile_names()
    assert get_profile("my-phone").title == get_profile("pixel-8").title


def test_bad_profile_fields_are_named(tmp_path):
    with pytest.raises(ConfigError, match="ram_mb"):
        load_profile_file(_user_profile(tmp_path, ram_mb=8192))
    with pytest.raises(ConfigError, match="needs a source"):
        load_profile_file(_user_profile(tmp_path, ram_mb={"value": 8192, "source": None}))
    with pytest.raises(ConfigError, match="'XX' is not listed"):
        load_profile_file(_user_profile(tmp_path, ram_mb={"value": 8192, "source": "XX"}))
    with pytest.raises(ConfigError, match="colour"):
        load_profile_file(_user_profile(tmp_path, colour="red"))
