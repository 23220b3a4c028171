"""Cross pseudo-rewarding (paper Eq. 12, 18): every pair through every aspect's reward model.

Modules: ``config`` (:class:`ScoreConfig`, the stage's defaults), ``reward_gaps`` (``score_pairs``,
the driver), ``shards`` and ``runner`` (the streaming runner, shared with the LossDiff log-prob
scorer), ``backends`` (the scorer interface, the transformers scorer), ``vllm_engine`` (how vLLM serves a
reward model; the ``vllm`` backend's scorer), ``llm`` (the ``ray_llm`` backend: one Ray Data
pipeline on ``ray.data.llm``). The
names below are loaded on first use, so reading the config (the pipeline's, the CLI's) does not
import torch.
"""

from __future__ import annotations

from pdray.lazy import lazy_names

_HOME = {
    "HFScorer": "backends", "Scorer": "backends", "VLLMScorer": "vllm_engine",
    "make_scorer": "scorers",
    "ScoreConfig": "config",
    "ScoreRun": "reward_gaps", "score_pairs": "reward_gaps",
}

__all__ = sorted(_HOME)


__getattr__, __dir__ = lazy_names(__name__, _HOME)
