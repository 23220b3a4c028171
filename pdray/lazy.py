"""Packages whose public names load on first use (PEP 562), so that importing a stage's config
(the pipeline's, the CLI's) does not import torch, transformers or trl."""

from __future__ import annotations

import importlib
from collections.abc import Callable


def lazy_names(package: str, home: dict[str, str]) -> tuple[Callable, Callable]:
    """``(__getattr__, __dir__)`` for ``package``: name ``n`` is ``package.<home[n]>.n``,
    imported when first asked for."""

    def __getattr__(name: str):
        if name not in home:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{home[name]}"), name)

    def __dir__() -> list[str]:
        return sorted(set(home) | {"__doc__", "__name__", "__path__"})

    return __getattr__, __dir__
