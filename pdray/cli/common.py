"""Helpers shared by the stage commands: config files plus ``key.sub=value`` overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, TypeVar

import typer
from pydantic import BaseModel

from pdray.config import load_config

T = TypeVar("T", bound=BaseModel)

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML config file.", exists=False)
OVERRIDES_ARG = typer.Argument(None, help="Overrides as key.sub=value (applied after --config).")


def stage_config(model: type[T], config: Optional[Path], overrides: Optional[list[str]],
                 base: dict | None = None) -> T:
    """Load and validate a stage config from ``--config`` and overrides (errors name the key)."""
    return load_config(model, config, overrides or [], base=base)


def echo_kv(title: str, items: dict) -> None:
    """Print a small aligned key/value summary."""
    typer.echo(title)
    width = max((len(str(k)) for k in items), default=0)
    for k, v in items.items():
        if isinstance(v, float):
            v = f"{v:.4g}"
        typer.echo(f"  {str(k).ljust(width)}  {v}")


def config_help(model: type[BaseModel], prefix: str = "") -> list[str]:
    """One line per setting of ``model`` (nested sections as ``section.key``): the key, its
    default and the field's description — the help of a stage command, generated from the
    stage's config so that it cannot drift from it."""
    lines = []
    for name, f in model.model_fields.items():
        key = f"{prefix}{name}"
        ann = f.annotation
        if isinstance(ann, type) and issubclass(ann, BaseModel):
            lines += config_help(ann, f"{key}.")
            continue
        default = "required" if f.is_required() else (
            f.default_factory() if f.default_factory is not None else f.default)
        shown = repr(default)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        text = f"{key}={shown}" if not f.is_required() else f"{key} (required)"
        lines.append(f"{text}  {f.description}" if f.description else text)
    return lines


def settings_epilog(config: str) -> type:
    """A command class whose epilog lists every setting of the config model at
    ``"module:Class"`` (imported when the help is shown, not when ``pdray`` starts)."""
    from typer.core import TyperCommand

    class WithSettings(TyperCommand):
        @property
        def epilog(self) -> str:
            module, cls = config.split(":")
            import importlib

            model = getattr(importlib.import_module(module), cls)
            body = "\n".join(f"  {line}" for line in config_help(model))
            return (f"Settings ({cls}; set as key=value after the arguments, or in "
                    f"--config YAML):\n\n\b\n{body}")

        @epilog.setter
        def epilog(self, value) -> None:  # typer sets it in __init__; ours is generated
            pass

    return WithSettings
