"""Cross pseudo-rewarding (paper Eq. 12, 18): every pair through every aspect's reward model.

Modules: ``config`` (:class:`ScoreConfig`, the stage's defaults), ``pipeline`` (``score_pairs``,
the driver), ``shards`` and ``runner`` (the streaming runner, shared with the LossDiff log-prob
scorer), ``backends`` (the transformers and vLLM scorers), ``llm`` (``ray.data.llm``). The
names below are loaded on first use, so reading the config (the pipeline's, the CLI's) does not
import torch.
"""

from __future__ import annotations

import importlib

_HOME = {
    "HFScorer": "backends", "Scorer": "backends", "VLLMScorer": "backends",
    "make_scorer": "backends", "pair_batches": "backends",
    "ScoreConfig": "config",
    "ScoreRun": "pipeline", "score_pairs": "pipeline",
}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    if name not in _HOME:
        raise AttributeError(f"module 'pdray.scoring' has no attribute {name!r}")
    return getattr(importlib.import_module(f"pdray.scoring.{_HOME[name]}"), name)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_HOME))
