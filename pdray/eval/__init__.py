"""Evaluation: generation, the paper's pairwise judge (App. B.2), win score (Eq. 19), AlpacaEval WR/LC."""

from pdray.eval.config import EvalConfig, GenerationConfig
from pdray.eval.generate import generate_answers, model_fingerprint
from pdray.eval.metrics import (
                              average_length,
                              average_win_score,
                              length_controlled_win_rate,
                              win_rate,
                              win_score,
)
from pdray.eval.openai_judge import OpenAIJudge
from pdray.eval.pairwise import (
                              JUDGE_INSTRUCTION,
                              JUDGE_SYSTEM_PROMPT,
                              JUDGE_USER_TEMPLATE,
                              Judge,
                              JudgeReply,
                              JudgeRequest,
                              combine,
                              judge_both_orders,
                              judge_messages,
                              parse_scores,
)
from pdray.eval.prompts import PAPER_SETS, load_prompt_set, load_prompt_sets, read_answers
from pdray.eval.rm_judge import RewardModelJudge
from pdray.eval.run import EvalResult, evaluate, evaluate_models, make_judge

__all__ = [
                              "JUDGE_INSTRUCTION",
                              "JUDGE_SYSTEM_PROMPT",
                              "JUDGE_USER_TEMPLATE",
                              "PAPER_SETS",
                              "EvalConfig",
                              "EvalResult",
                              "GenerationConfig",
                              "Judge",
                              "JudgeReply",
                              "JudgeRequest",
                              "OpenAIJudge",
                              "RewardModelJudge",
                              "average_length",
                              "average_win_score",
                              "combine",
                              "evaluate",
                              "evaluate_models",
                              "generate_answers",
                              "judge_both_orders",
                              "judge_messages",
                              "length_controlled_win_rate",
                              "load_prompt_set",
                              "load_prompt_sets",
                              "make_judge",
                              "model_fingerprint",
                              "parse_scores",
                              "read_answers",
                              "win_rate",
                              "win_score",
]
