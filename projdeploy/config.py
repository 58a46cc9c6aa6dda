"""Loading user YAML files with errors that name the file, the field and what is allowed.

python -c "from projdeploy.config import load_yaml_mapping; print(load_yaml_mapping('projdeploy/targets/ios.yaml'))"
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError


def load_yaml_mapping(path: str | Path, fields: set[str]) -> dict:
    """Parse ``path`` as a YAML mapping whose top-level keys are all in ``fields``."""
    import yaml

    src = str(path)
    try:
        d = yaml.safe_load(Path(path).read_text())
    except yaml.YAMLError as e:
        raise ConfigError(src, "<document>", f"not valid YAML ({e})") from None
    if not isinstance(d, dict):
        raise ConfigError(src, "<document>", "must be a mapping with fields " + ", ".join(sorted(fields)))
    unknown = set(d) - fields
    if unknown:
        raise ConfigError(src, min(unknown), "unknown field; allowed: " + ", ".join(sorted(fields)))
    return d
