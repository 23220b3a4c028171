"""Judge backends behind :class:`pdray.eval.judge.Judge`.

* :class:`OpenAIJudge`: any OpenAI-compatible ``/chat/completions`` endpoint (a hosted API, a
  local vLLM server) over plain HTTP (``urllib``). The API key is read ONLY from the environment
  variable named by ``api_key_env`` (default ``OPENAI_API_KEY``); it is sent in the
  ``Authorization`` header and never logged, stored or written (error texts are redacted).
* :class:`RewardModelJudge`: a local scalar reward model (HF sequence classifier) when no endpoint
  exists. Each answer gets its reward r; the score is ``1 + 9·σ(r/T)`` rounded to 2 decimals, so
  it is deterministic, in [1, 10], and the same in both orders. The score line it "writes" goes
  through the same parser as an LLM judge's.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from pdray.errors import ConfigError, PdrayError
from pdray.eval.judge import Judge, JudgeReply, JudgeRequest, judge_messages

log = logging.getLogger(__name__)
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0"}


class OpenAIJudge(Judge):
    """Pairwise judge through an OpenAI-compatible chat-completions endpoint."""

    def __init__(self, model: str, base_url: str = "https://api.openai.com/v1", *,
                 api_key_env: str = "OPENAI_API_KEY", temperature: float = 0.0,
                 max_tokens: int = 512, timeout_s: float = 120.0, max_retries: int = 3,
                 concurrency: int = 4, backoff_s: float = 1.0):
        if not model:
            raise ConfigError("the openai judge needs a model name (eval.judge_model)")
        self.model, self.base_url = model, base_url.rstrip("/")
        self.api_key_env = api_key_env
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout_s, self.max_retries = timeout_s, max_retries
        self.concurrency, self.backoff_s = max(1, concurrency), backoff_s
        host = urllib.parse.urlparse(self.base_url).hostname or ""
        self._key = os.environ.get(api_key_env) or None
        if self._key is None and host not in _LOCAL_HOSTS:
            raise ConfigError(f"the openai judge at {self.base_url} needs an API key in the "
                              f"environment variable {api_key_env} (it is never read from config)")
        self.name = f"openai:{self.model}@{self.base_url}:t{temperature}"

    def __repr__(self) -> str:  # never show the key
        return f"OpenAIJudge(model={self.model!r}, base_url={self.base_url!r}, key_env={self.api_key_env!r})"

    def _redact(self, text: str) -> str:
        return text.replace(self._key, "***") if self._key else text

    def _call(self, req: JudgeRequest) -> JudgeReply:
        body = json.dumps({"model": self.model, "temperature": self.temperature,
                           "max_tokens": self.max_tokens,
                           "messages": judge_messages(req.instruction, req.response_1,
                                                      req.response_2)}).encode("utf-8")
        headers = {"Content-Type": "application/json"}
        if self._key:
            headers["Authorization"] = f"Bearer {self._key}"
        last = "no attempt"
        for attempt in range(self.max_retries + 1):
            http = urllib.request.Request(f"{self.base_url}/chat/completions", data=body,
                                          headers=headers, method="POST")
            try:
                with urllib.request.urlopen(http, timeout=self.timeout_s) as resp:
                    data = json.loads(resp.read().decode("utf-8"))
                return JudgeReply(text=data["choices"][0]["message"]["content"])
            except urllib.error.HTTPError as e:
                detail = self._redact(e.read()[:200].decode("utf-8", "replace"))
                last = f"HTTP {e.code}: {detail}"
                if e.code in (401, 403):
                    raise PdrayError(f"judge endpoint {self.base_url} refused the API key from "
                                     f"${self.api_key_env} (HTTP {e.code})") from None
                if e.code not in (408, 409, 429) and e.code < 500:
                    break
            except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
                last = self._redact(f"connection error: {getattr(e, 'reason', e)}")
            except (KeyError, IndexError, TypeError, ValueError) as e:
                last = f"malformed response: {type(e).__name__}"
                break
            if attempt < self.max_retries:
                time.sleep(self.backoff_s * 2 ** attempt)
        log.warning("judge call failed after retries: %s", last)
        return JudgeReply(text=None, error=last)

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeReply]:
        if self.concurrency == 1 or len(requests) <= 1:
            return [self._call(r) for r in requests]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            return list(pool.map(self._call, requests))


class RewardModelJudge(Judge):
    """A local scalar reward model as a deterministic pairwise judge (see the module docstring)."""

    def __init__(self, model_path: str, *, temperature: float = 1.0, max_length: int = 1024,
                 batch_size: int = 8, head: int = 0, system_prompt: str | None = None,
                 device: str | None = None, trust_remote_code: bool = False):
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        if not model_path:
            raise ConfigError("the rm judge needs a reward model folder (eval.judge_model)")
        path = str(model_path)
        self.tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
        if self.tokenizer.pad_token is None:
            self.tokenizer.pad_token = self.tokenizer.eos_token
        self.tokenizer.padding_side = "right"
        self.device = device or ("cuda" if torch.cuda.is_available() else "cpu")
        self.model = AutoModelForSequenceClassification.from_pretrained(
            path, trust_remote_code=trust_remote_code).to(self.device).eval()
        from pdray.models.reward import install_forward, saved_pooling

        install_forward(self.model, saved_pooling(self.model))
        if self.model.config.pad_token_id is None:
            self.model.config.pad_token_id = self.tokenizer.pad_token_id
        self.temperature, self.max_length, self.batch_size = temperature, max_length, batch_size
        self.head, self.system_prompt = head, system_prompt
        from pdray.eval.generate import model_fingerprint

        self.name = f"rm:{model_fingerprint(path)}:h{head}:T{temperature}:L{max_length}"

    def rewards(self, prompts: Sequence[str], responses: Sequence[str]) -> list[float]:
        """r(x, y) per response, encoded (prompt cut from the left) and pooled exactly as the
        reward model was trained (:func:`pdray.models.reward.reward_logits_ids`)."""
        from pdray.models.formatting import encode_reward_inputs
        from pdray.models.reward import reward_logits_ids

        enc, _ = encode_reward_inputs(self.tokenizer, list(prompts), list(responses),
                                      self.system_prompt, max_length=self.max_length)
        logits = reward_logits_ids(self.model, self.tokenizer.pad_token_id, enc,
                                   batch_tokens=self.batch_size * self.max_length)
        return [float(x) for x in logits[:, self.head]]

    def score(self, reward: float) -> float:
        """Map a reward to the judge's 1-10 scale: ``1 + 9·σ(r/T)`` (2 decimals)."""
        import math

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


def make_judge(cfg) -> Judge:
    """Build the judge named by an :class:`~pdray.eval.config.EvalConfig`."""
    if cfg.judge == "openai":
        return OpenAIJudge(cfg.judge_model, cfg.base_url, api_key_env=cfg.api_key_env,
                           temperature=cfg.judge_temperature, max_tokens=cfg.judge_max_tokens,
                           timeout_s=cfg.judge_timeout_s, concurrency=cfg.judge_concurrency)
    if cfg.judge == "rm":
        return RewardModelJudge(cfg.judge_model, temperature=cfg.rm_judge_temperature,
                                max_length=cfg.rm_judge_max_length,
                                trust_remote_code=cfg.trust_remote_code)
    raise ConfigError(f"unknown judge {cfg.judge!r} (openai | rm)")
