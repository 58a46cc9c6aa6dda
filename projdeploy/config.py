"""Loading user YAML files with errors that name the file, the field and what is allowed.

python -c "from projdeploy.config import load_yaml_mapping; print(load_yaml_mapping('projdeploy/targets/ios.yaml'))"
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

MAX_BYTES = 1 << 20  # task and target files are a few lines; anything bigger is a mistake or an attack


def load_yaml_mapping(path: str | Path, fields: set[str]) -> dict:
    """Parse ``path`` as a YAML mapping whose top-level keys are all in ``fields``."""
    import yaml

    src = str(path)
    p = Path(path)
    if p.stat().st_size > MAX_BYTES:
        raise ConfigError(src, "<document>", f"{p.stat().st_size} bytes; allowed: at most {MAX_BYTES}")
    try:
        text = p.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(src, "<document>", f"not UTF-8 text (byte {e.start})") from None
    try:
        if any(isinstance(ev, yaml.AliasEvent) for ev in yaml.parse(text, Loader=yaml.SafeLoader)):
            raise ConfigError(src, "<document>", "YAML aliases (*name) are not allowed in projdeploy files")
        d = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(src, "<document>", f"not valid YAML ({' '.join(str(e).split())[:200]})") from None
    if not isinstance(d, dict):
        raise ConfigError(src, "<document>", "must be a mapping with fields " + ", ".join(sorted(fields)))
    unknown = {str(k) for k in d} - fields
    if unknown:
        raise ConfigError(src, min(unknown), "unknown field; allowed: " + ", ".join(sorted(fields)))
    return d
