"""Evaluation: generation, the paper's pairwise judge (App. B.2), win score (Eq. 19), AlpacaEval WR/LC.

The names below are loaded on first use, so reading the eval config (the pipeline's, the CLI's)
does not import torch and transformers (the reward-model judge loads them).
"""

from __future__ import annotations

from pdray.lazy import lazy_names

_HOME = {
    "EvalConfig": "config", "GenerationConfig": "config",
    "generate_answers": "generate", "model_fingerprint": "generate",
    "average_length": "metrics", "average_win_score": "metrics",
    "length_controlled_win_rate": "metrics", "win_rate": "metrics", "win_score": "metrics",
    "OpenAIJudge": "openai_judge",
    "JUDGE_INSTRUCTION": "pairwise", "JUDGE_SYSTEM_PROMPT": "pairwise",
    "JUDGE_USER_TEMPLATE": "pairwise", "Judge": "pairwise", "JudgeReply": "pairwise",
    "JudgeRequest": "pairwise", "combine": "pairwise", "judge_both_orders": "pairwise",
    "judge_messages": "pairwise", "parse_scores": "pairwise",
    "PAPER_SETS": "prompts", "load_prompt_set": "prompts", "load_prompt_sets": "prompts",
    "read_answers": "prompts",
    "RewardModelJudge": "rm_judge",
    "EvalResult": "run", "evaluate": "run", "evaluate_models": "run", "make_judge": "run",
}

__all__ = sorted(_HOME)

__getattr__, __dir__ = lazy_names(__name__, _HOME)
