"""Helpers shared by the stage commands: ``--config`` and ``key.sub=value`` overrides, and the
help generated from a stage's config (the verbs themselves: :mod:`pdray.cli.verbs`)."""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NoReturn

import typer
from pydantic import BaseModel

from pdray.errors import StorageError, os_reason

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML config file.", exists=False)
PAIRS_HELP = "Canonical pairs (.parquet/.jsonl)."
OVERRIDES_ARG = typer.Argument(None, help="Overrides as key.sub=value (applied after --config and the options).")


def fail(e: BaseException) -> NoReturn:
    """End a command on one ``error: …`` line, exit 2: a pdray error as it is, an
    infrastructure fault (``OSError``) no layer wrapped as a :class:`StorageError` naming the
    path. (:func:`pdray.cli.main` does the same for the commands that raise.)"""
    if isinstance(e, OSError):
        e = StorageError(os_reason(e), path=e.filename)
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2) from None


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


PIPELINE_CONFIG = "pdray.pipeline.config:PipelineConfig"
"""The config of ``pdray run``, ``tune`` and ``demo`` (their ``--help`` lists its settings)."""


def import_config(path: str) -> type[BaseModel]:
    """The config model named ``"module:Class"`` (imported now, not when ``pdray`` starts)."""
    import importlib

    module, cls = path.split(":")
    return getattr(importlib.import_module(module), cls)


def option_help(model: type[BaseModel], key: str) -> str:
    """An option's help for the setting ``key``: the field's description and its default."""
    f = model.model_fields[key]
    default = None if f.is_required() else f.get_default(call_default_factory=True)
    return f"{f.description}; default {default}." if default is not None else f.description


def settings_epilog(config: str, options: dict[str, str] | None = None, *,
                    how: str = "set as key=value after the arguments, or in --config YAML"
                    ) -> type:
    """A command class whose epilog lists every setting of the config model at
    ``"module:Class"``, and whose options named in ``options`` (parameter name -> setting)
    without a help of their own are documented by :func:`option_help` (the model is imported
    when the help is shown, not when ``pdray`` starts). ``how`` says how the command takes
    them."""
    from typer.core import TyperCommand

    class WithSettings(TyperCommand):
        @property
        def epilog(self) -> str:
            body = "\n".join(f"  {line}" for line in config_help(import_config(config)))
            return f"Settings ({config.split(':')[1]}; {how}):\n\n\b\n{body}"

        @epilog.setter
        def epilog(self, value) -> None:  # typer sets it in __init__; ours is generated
            pass

        def format_help(self, ctx, formatter) -> None:
            for p in self.params:
                if p.name in (options or {}) and not getattr(p, "help", None):
                    p.help = option_help(import_config(config), options[p.name])
            super().format_help(ctx, formatter)

    return WithSettings


UNIT_LINE = re.compile(r"\[[\w.-]+:[^\]\s]+\] ")
"""A line of one unit of a stage (``[rm:honesty] …``, ``[dpo:dpo-1a2b] …``), beside the stage's
own ``[rm] …`` lines."""


class _Lines(io.TextIOBase):
    """A text stream that hands every whole line written to it to ``emit``."""

    def __init__(self, emit):
        self.emit, self.part, self.lock = emit, "", threading.Lock()

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        with self.lock:
            lines = (self.part + text).split("\n")
            self.part = lines.pop()
        for line in lines:
            self.emit(line)
        return len(text)

    def close_part(self) -> None:
        if self.part:
            self.emit(self.part)
            self.part = ""


@contextlib.contextmanager
def pipeline_echo(output_dir: str | Path | None) -> Iterator:
    """The ``echo`` of ``pdray run`` and ``pdray demo``, and their ``sys.stdout`` while it is
    open (what a stage prints without its ``echo`` takes the same way): every line goes to
    ``OUTPUT/pdray.log`` (a local output folder); the terminal gets the stage lines and leaves
    out the per-unit detail (:data:`UNIT_LINE`, unless a warning) — all of it with
    ``PDRAY_VERBOSE=1``."""
    from pdray.raysetup import verbose_default

    verbose = verbose_default()
    terminal = sys.stdout
    log = None
    if output_dir is not None and "://" not in str(output_dir):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        log = (Path(output_dir) / "pdray.log").open("a", encoding="utf-8")

    def echo(line="") -> None:
        line = str(line)
        if log is not None:
            log.write(line + "\n")
            log.flush()
        if verbose or not UNIT_LINE.match(line) or "warning" in line.lower():
            terminal.write(line + "\n")
            terminal.flush()

    printed = _Lines(echo)
    try:
        with contextlib.redirect_stdout(printed):
            yield echo
    finally:
        printed.close_part()
        if log is not None:
            log.close()


@contextlib.contextmanager
def verbose_env(on: bool):
    """While inside, ``PDRAY_VERBOSE=1`` when ``on`` (a verb's ``--verbose``: Ray's worker
    output on the terminal, :func:`pdray.raysetup.verbose_default`); restored after."""
    if not on:
        yield
        return
    old = os.environ.get("PDRAY_VERBOSE")
    os.environ["PDRAY_VERBOSE"] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PDRAY_VERBOSE", None)
        else:
            os.environ["PDRAY_VERBOSE"] = old
