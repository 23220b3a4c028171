"""How a (prompt, response) pair becomes reward-model input: one definition for training and scoring.

A reward model must see exactly the same token ids when it is trained (``pdray rm``), when it
scores (``pdray score``) and when it judges (``pdray eval --judge rm``); all three call
:func:`encode_reward_inputs`. Δlen (Eq. 17, 18) counts the tokens of the response alone in the
reward model's tokenizer (:func:`response_token_lens`).

Truncation keeps the response (METHOD.md): when (system prompt +) prompt + response is longer
than ``max_length``, tokens are dropped from the *left of the prompt* until it fits, keeping at
least ``(1 − response_share)·max_length`` prompt tokens (or the whole prompt, if shorter); only a
response longer than what is left is cut, from its end. Cutting from the end of the whole text
(the tokenizer's default) would remove the response of a long-prompt pair entirely, so both
responses would get the same input and a reward gap of exactly 0.

Beside the encoding: the pad-token fix every loader applies (:func:`fix_pad_token`) and the
token budget of a forward pass when a stage leaves it open (:func:`default_batch_tokens`); this
module imports no torch or transformers, so configs can read it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

from pdray.errors import PdrayError

DEFAULT_RESPONSE_SHARE = 0.75
log = logging.getLogger("pdray.models")


def fix_pad_token(tokenizer, echo=log.warning) -> None:
    """Give a tokenizer without a pad token one (eos, else unk), and say so (the one place
    pdray pads a tokenizer; :mod:`pdray.models.backbones` re-exports it)."""
    if tokenizer.pad_token is None:
        tok = tokenizer.eos_token or tokenizer.unk_token
        if tok is None:
            raise PdrayError("the tokenizer has no pad, eos or unk token to pad with")
        tokenizer.pad_token = tok
        echo(f"tokenizer had no pad token; using {tok!r}")


def pair_text(tokenizer, prompt: str, response: str, system_prompt: str | None = None) -> str:
    """Render one (prompt, response) as the reward model's input text.

    With a chat template: ``[system?, user: prompt, assistant: response]`` through
    ``apply_chat_template(tokenize=False)``. Without one (e.g. BERT-style encoders): the system
    prompt, the prompt and the response separated by blank lines.
    """
    if getattr(tokenizer, "chat_template", None):
        messages = []
        if system_prompt:
            messages.append({"role": "system", "content": system_prompt})
        messages.append({"role": "user", "content": prompt})
        messages.append({"role": "assistant", "content": response})
        return tokenizer.apply_chat_template(messages, tokenize=False)
    parts = [p for p in (system_prompt, prompt, response) if p]
    return "\n\n".join(parts)


@dataclass
class Truncation:
    """What :func:`encode_reward_inputs` had to cut (counts over the encoded rows)."""

    rows: int = 0
    prompt_cut: int = 0          # rows whose prompt lost tokens from its left
    response_cut: int = 0        # rows whose response still had to lose tokens from its end
    examples: list[int] = field(default_factory=list)   # first few row indices with a cut response


def _left_cut(tokenizer, text: str, n_tokens: int) -> str:
    """``text`` without its first ``n_tokens`` tokens (exact character offsets when the tokenizer
    is fast, decoding otherwise)."""
    if n_tokens <= 0:
        return text
    if getattr(tokenizer, "is_fast", False):
        enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
        offs = enc["offset_mapping"]
        return "" if n_tokens >= len(offs) else text[offs[n_tokens][0]:]
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    return tokenizer.decode(ids[n_tokens:], skip_special_tokens=True)


def encode_reward_inputs(tokenizer, prompts: Sequence[str], responses: Sequence[str],
                         system_prompts: Sequence[str | None] | str | None = None, *,
                         max_length: int, response_share: float = DEFAULT_RESPONSE_SHARE,
                         ) -> tuple[list[list[int]], Truncation]:
    """Token ids of every (prompt, response) as the reward model sees them, and what was cut.

    The prompt is cut from its left (never the response, unless the response alone exceeds its
    share of ``max_length``); see the module docstring.
    """
    n = len(prompts)
    if isinstance(system_prompts, str) or system_prompts is None:
        system_prompts = [system_prompts] * n
    texts = [pair_text(tokenizer, p, y, s) for p, y, s in zip(prompts, responses, system_prompts)]
    ids = tokenizer(texts)["input_ids"] if texts else []
    info = Truncation(rows=n)
    for i, row in enumerate(ids):
        if len(row) <= max_length:
            continue
        prompt, response, system = prompts[i], responses[i], system_prompts[i]
        n_prompt = len(tokenizer(prompt, add_special_tokens=False)["input_ids"])
        keep_min = min(n_prompt, int((1.0 - response_share) * max_length))
        drop = min(n_prompt - keep_min, len(row) - max_length)
        new = row
        for _ in range(4):  # re-tokenising at the cut can shift a token or two
            new = tokenizer(pair_text(tokenizer, _left_cut(tokenizer, prompt, drop), response,
                                      system))["input_ids"]
            if len(new) <= max_length or drop >= n_prompt - keep_min:
                break
            drop = min(n_prompt - keep_min, drop + len(new) - max_length)
        if drop > 0:
            info.prompt_cut += 1
        if len(new) > max_length:  # the response alone is longer than its share: cut its end
            text = pair_text(tokenizer, _left_cut(tokenizer, prompt, drop), response, system)
            new = tokenizer(text, truncation=True, max_length=max_length)["input_ids"]
            info.response_cut += 1
            if len(info.examples) < 5:
                info.examples.append(i)
        ids[i] = new
    return ids, info


def response_token_lens(tokenizer, responses: Sequence[str]) -> list[int]:
    """Number of tokens of each response alone (no special tokens): the Δlen unit of Eq. 17."""
    if not responses:
        return []
    enc = tokenizer(list(responses), add_special_tokens=False)
    return [len(ids) for ids in enc["input_ids"]]


def default_batch_tokens(gpu: bool) -> int:
    """Padded tokens per forward pass when a stage's setting leaves it open: 2048 on CPU (small
    batches stay in cache: 1.20x the pairs/s of 16384 in ``benchmarks/score_throughput.py``,
    RESULTS.md 2026-12-01 session 5), 16384 on GPU."""
    return 16384 if gpu else 2048
