"""Which :class:`pdray.scoring.backends.Scorer` a ``score.backend`` names: the one place a
scoring actor's backend is chosen (``hf``: :class:`~pdray.scoring.backends.HFScorer`;
``vllm``: :class:`~pdray.scoring.vllm_engine.VLLMScorer`). ``ray_llm`` is a Ray Data pipeline
of its own (:mod:`pdray.scoring.llm`), not an actor's scorer.

A new backend implements the ``Scorer`` interface (what it receives: the reward-model set, its
folder and the ``ScoreConfig``; what it returns: per model key the chosen and rejected raw
logits plus token stats; ``tokenizer`` for response lengths; ``engines_started`` /
``engine_seconds`` when it starts engines) and gets a branch here. The runner gives each actor
``score.cpus_per_actor`` / ``gpus_per_actor``; the scorer uses what its actor has.
"""

from __future__ import annotations

from pdray.errors import PdrayError
from pdray.rm.model_set import RewardModelSet
from pdray.scoring.backends import HFScorer, Scorer


def make_scorer(rm_set: RewardModelSet, rm_dir: str, cfg) -> Scorer:
    """The scoring actor's scorer for ``cfg.backend`` (``hf`` or ``vllm``)."""
    if cfg.backend == "vllm":
        from pdray.scoring.vllm_engine import VLLMScorer  # vllm: imported when it is used

        return VLLMScorer(rm_set, rm_dir, cfg)
    if cfg.backend == "ray_llm":
        raise PdrayError("backend 'ray_llm' is a Ray Data pipeline (pdray.scoring.llm), "
                         "not a scoring actor's scorer")
    return HFScorer(rm_set, rm_dir, cfg)
