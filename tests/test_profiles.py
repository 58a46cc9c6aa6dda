"""Profiles: every shipped YAML validates, counts, sources; user profiles; bad input names the field."""

from __future__ import annotations

import pytest
import yaml

from projdeploy.check.profiles import PACKAGE_DIR, all_profiles, get_profile, load_profile_file, profile_names
from projdeploy.errors import ConfigError, UnknownNameError

SHIPPED = {
    "iphone-15-pro",
    "iphone-13",
    "pixel-8",
    "galaxy-s24",
    "galaxy-s25",
    "snapdragon-7-gen-4",
    "snapdragon-8-elite-gen5",
    "snapdragon-x-elite",
    "raspberry-pi-5",
    "x86-laptop",
}


def _numbers(obj):
    """Every Number inside a parsed profile / family, wherever it sits."""
    from dataclasses import fields, is_dataclass

    from projdeploy.check.profiles import Number

    if isinstance(obj, Number):
        yield obj
    elif isinstance(obj, dict):
        for v in obj.values():
            yield from _numbers(v)
    elif isinstance(obj, (list, tuple)):
        for v in obj:
            yield from _numbers(v)
    elif is_dataclass(obj):
        for f in fields(obj):
            if f.name != "raw":
                yield from _numbers(getattr(obj, f.name))


def test_every_shipped_profile_validates_and_is_counted():
    files = sorted(p.stem for p in PACKAGE_DIR.glob("*.yaml") if not p.name.startswith("_"))
    assert set(files) == SHIPPED and len(files) == 10
    profs = all_profiles()
    assert {p.name for p in profs} >= SHIPPED
    counted = 0
    for p in profs:
        assert p.runtimes and p.cpu_clusters
        for n in _numbers(p):  # every number (clusters, units, runtimes, memory) has a listed source
            counted += 1
            assert n.value is None or n.source, (p.name, n)
            for sid in str(n.source or "").split():
                assert sid in p.sources, (p.name, sid)
    assert counted > 300


def test_compute_units_are_first_class():
    """NPU runtimes name a fitted family and their unit has an int8 peak with a source (or says it has none)."""
    from projdeploy.check.families import families, family_names, family_sources

    for p in all_profiles():
        for rt in p.runtimes.values():
            if rt.family:
                assert rt.family in family_names(), (p.name, rt.name)
                own_peaks = all(e["peak_gflops"].value for e in rt.precisions.values() if "peak_gflops" in e)
                assert rt.unit in p.units or own_peaks, (p.name, rt.name)
    s25 = get_profile("galaxy-s25")
    assert s25.units["npu"].peak("int8").value == 65250 and s25.units["npu"].peak("int8").source
    assert s25.units["npu"].peak("fp16").value is None  # not published: no borrowing of int8 figures
    assert s25.units["cpu"].peak("int8").value == 4 * s25.units["cpu"].peak("fp32").value
    fams = families()
    assert set(fams) >= {"qnn-htp", "litert-xnnpack", "ort-cpu"}
    for fam in fams.values():
        for n in _numbers(fam):
            assert n.value is None or n.source in family_sources(), (fam.name, n)
    assert fams["qnn-htp"].class_eff["conv"].source == "FIT"


def test_sources_are_urls_or_derivations():
    for p in all_profiles():
        for sid, url in p.sources.items():
            assert url.startswith("http") or sid in ("HW2", "HW5", "FIT"), (p.name, sid)


def test_unknown_family_is_named(tmp_path):
    data = yaml.safe_load((PACKAGE_DIR / "galaxy-s25.yaml").read_text())
    data["name"] = "my-phone"
    data["runtimes"]["qnn-npu"]["family"] = "warp-drive"
    p = tmp_path / "my-phone.yaml"
    p.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError, match="family.*qnn-htp"):
        load_profile_file(p)


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
    with pytest.raises(ConfigError, match="soc.TSMC"):  # unquoted comma inside a flow mapping
        load_profile_file(_user_profile(tmp_path, soc={"value": "X (SM1", "TSMC 4 nm)": None, "source": "S10"}))
    with pytest.raises(ConfigError, match="colour"):
        load_profile_file(_user_profile(tmp_path, colour="red"))
