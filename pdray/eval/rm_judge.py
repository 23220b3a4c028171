"""A local scalar reward model (HF sequence classifier) as the pairwise judge, when no endpoint exists.

Each answer gets its reward r; the score is ``1 + 9·σ(r/T)`` rounded to 2 decimals, so it is
deterministic, in [1, 10], and the same in both orders. The score line it "writes" goes through
the same parser as an LLM judge's (:func:`pdray.eval.pairwise.parse_scores`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pdray.errors import ConfigError
from pdray.eval.config import EvalConfig
from pdray.eval.generate import model_fingerprint
from pdray.eval.pairwise import Judge, JudgeReply, JudgeRequest
from pdray.models.backbones import load_reward_backbone
from pdray.models.formatting import encode_reward_inputs

_D = EvalConfig()  # the one home of the judge's defaults


class RewardModelJudge(Judge):
    """A local scalar reward model as a deterministic pairwise judge (see the module docstring)."""

    def __init__(self, model_path: str, *, temperature: float = _D.rm_judge_temperature,
                 max_length: int = _D.rm_judge_max_length, batch_size: int = 8, head: int = 0,
                 system_prompt: str | None = None, device: str | None = None,
                 trust_remote_code: bool = _D.trust_remote_code):
        import torch

        if not model_path:
            raise ConfigError("the rm judge needs a reward model folder (eval.judge_model)")
        path = str(model_path)
        # the folder's own heads and saved pooling, a pad token when it has none
        model, self.tokenizer = load_reward_backbone(path, num_labels=None,
                                                     trust_remote_code=trust_remote_code)
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()
        self.temperature, self.max_length, self.batch_size = temperature, max_length, batch_size
        self.head, self.system_prompt = head, system_prompt
        self.name = f"rm:{model_fingerprint(path)}:h{head}:T{temperature}:L{max_length}"

    def rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """r(x, y) per response, encoded (prompt cut from the left) and pooled exactly as the
        reward model was trained (:func:`pdray.models.reward.reward_logits_ids`)."""
        from pdray.models.reward import reward_logits_ids  # imports transformers

        enc, _ = encode_reward_inputs(self.tokenizer, list(prompts), list(responses),
                                      self.system_prompt, max_length=self.max_length)
        logits = reward_logits_ids(self.model, self.tokenizer.pad_token_id, enc,
                                   batch_tokens=self.batch_size * self.max_length)
        return [float(x) for x in logits[:, self.head]]

    def score(self, reward: float) -> float:
        """Map a reward to the judge's 1-10 scale: ``1 + 9·σ(r/T)`` (2 decimals)."""
        z = max(min(reward / self.temperature, 60.0), -60.0)
        return round(1.0 + 9.0 / (1.0 + math.exp(-z)), 2)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        prompts = [r.instruction for r in requests for _ in (0, 1)]
        responses = [x for r in requests for x in (r.response_1, r.response_2)]
        rew = self.rewards(prompts, responses)
        return [JudgeReply(text=f"{self.score(rew[2 * i]):.2f} {self.score(rew[2 * i + 1]):.2f}\n"
                                f"(reward-model judge: rewards {rew[2 * i]:.4f} and "
                                f"{rew[2 * i + 1]:.4f})")
                for i in range(len(requests))]

    def close(self) -> None:
        self.model = None
