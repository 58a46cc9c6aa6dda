"""Versioned, serialisable configs and handler tables keyed by config type.

    python -c "from exporters.recipes import Torchao8da4w; from exporters.config import config_from_dict as f; print(f(Torchao8da4w().to_dict()))"

Every recipe and every quantization/compression config is a frozen dataclass
deriving from :class:`Config`: it has a ``version``, serialises with
``to_dict()`` (its type name plus its fields, nested configs as dicts, tuples as lists: JSON's shape) and
comes back with ``config_from_dict`` (``config_from_dict(c.to_dict()) == c``,
tested for every shipped recipe). Subclasses register themselves by class
name when they are defined.

A :class:`HandlerTable` maps a config *type* to the function that applies it
(the pattern of torchao's ``quantize_``): handlers register with a decorator,
and a config without a handler fails with the list of handled types.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

_TYPES: dict[str, type] = {}


@dataclass(frozen=True)
class Config:
    """Base of every serialisable config: plain frozen data with a version."""

    registered: ClassVar[dict[str, type]] = _TYPES

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        _TYPES[cls.__name__] = cls

    def to_dict(self) -> dict:
        d = {"type": type(self).__name__}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            d[f.name] = v.to_dict() if isinstance(v, Config) else list(v) if isinstance(v, tuple) else v
        return d


def config_from_dict(d: dict, source: str = "config") -> Config:
    """Rebuild a config from ``to_dict()`` output (nested configs included); unknown types/fields fail."""
    from projdeploy.errors import ConfigError, UnknownNameError

    d = dict(d)
    typ = d.pop("type", None)
    if typ not in _TYPES:
        raise UnknownNameError("config type", str(typ), _TYPES)
    cls = _TYPES[typ]
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{source} {d.get('name', typ)!r}", unknown[0], f"unknown field; known: {sorted(names)}")
    args = {k: config_from_dict(v, source) if isinstance(v, dict) and "type" in v else v for k, v in d.items()}
    return cls(**args)


class HandlerTable:
    """``{config type: handler}`` filled by ``@table.register(ConfigType)``; call with the config first."""

    def __init__(self, what: str):
        self.what = what
        self.handlers: dict[type, Callable] = {}

    def register(self, config_type: type):
        def deco(fn):
            self.handlers[config_type] = fn
            return fn

        return deco

    def handler(self, config) -> Callable:
        fn = self.handlers.get(type(config))
        if fn is None:
            from projdeploy.errors import UnknownNameError

            raise UnknownNameError(self.what, type(config).__name__, [t.__name__ for t in self.handlers])
        return fn

    def __call__(self, config, *args, **kw):
        return self.handler(config)(config, *args, **kw)
