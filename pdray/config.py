"""Typed configuration: pydantic models loaded from YAML, overridable as ``key.sub=value``.

Every stage defines a pydantic model (``extra="forbid"`` so typos fail). :func:`load_config`
reads an optional YAML file, applies command-line overrides and validates everything up front,
turning pydantic's errors into one readable message that names the bad key and value.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any, Iterable, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from pdray.errors import ConfigError

T = TypeVar("T", bound=BaseModel)
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)[eE][+-]?\d+")


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


def parse_override(text: str) -> tuple[list[str], Any]:
    """Parse ``a.b.c=value`` into (["a","b","c"], value); the value is read as YAML.

    >>> parse_override("rm.lr=2e-5")
    (['rm', 'lr'], 2e-05)
    """
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form key.sub=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override {text!r} has an empty key")
    try:
        value = yaml.safe_load(raw) if raw.strip() != "" else ""
    except yaml.YAMLError:
        value = raw
    # YAML 1.1 reads 2e-5 (no dot) as a string; accept it as the number the user meant.
    if isinstance(value, str) and _NUMBER.fullmatch(value.strip()):
        value = float(value)
    return key.split("."), value


def apply_overrides(data: dict, overrides: Iterable[str]) -> dict:
    """Return a copy of ``data`` with every ``key.sub=value`` override applied."""
    out = copy.deepcopy(data)
    for text in overrides:
        path, value = parse_override(text)
        node = out
        for part in path[:-1]:
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ConfigError(f"override {text!r}: '{part}' is a value, not a section")
            node = nxt
        node[path[-1]] = value
    return out


def format_validation_error(err: ValidationError, source: str = "config") -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "<root>"
        if e["type"] == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}'")
        elif e["type"] == "missing":   # its input is the enclosing mapping: not worth printing
            lines.append(f"{source}: {key} is required")
        elif not e["loc"]:  # a check across sections: the message names the keys itself
            lines.append(f"{source}: {e['msg'].removeprefix('Value error, ')}")
        else:
            lines.append(f"{source}: {key}={e.get('input')!r}: {e['msg']}")
    return "\n".join(lines)


def read_yaml(path: str | Path) -> dict:
    p = Path(path)
    if not p.exists():
        raise ConfigError(f"config file {p} does not exist")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{p}: not valid YAML: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{p}: the top level must be a mapping, got {type(data).__name__}")
    return data


def load_config(model: type[T], path: str | Path | None = None,
                overrides: Iterable[str] = (), base: dict | None = None, *,
                given: dict | None = None, overrides_last: bool = False) -> T:
    """Build a validated config of type ``model`` from ``base`` < YAML ``path`` < ``overrides``
    < ``given`` (typed values, e.g. a command's shortcut options); with ``overrides_last`` the
    overrides win over ``given`` instead. A bad value is one :class:`ConfigError` naming the key
    (and the YAML file, when one is given)."""
    data = copy.deepcopy(base) if base else {}
    if path is not None:
        data = deep_merge(data, read_yaml(path))
    if overrides_last:
        data = deep_merge(data, given or {})
    data = apply_overrides(data, overrides)
    if not overrides_last:
        data = deep_merge(data, given or {})
    try:
        return model.model_validate(data)
    except ValidationError as e:
        raise ConfigError(format_validation_error(e, str(path) if path else "config")) from None


def deep_merge(a: dict, b: dict) -> dict:
    """Recursively merge ``b`` into a copy of ``a`` (b wins)."""
    out = copy.deepcopy(a)
    for k, v in b.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = copy.deepcopy(v)
    return out


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False)
