"""Sequence log-probabilities log π(y | x) under a causal LM: the one implementation used by DPO
evaluation (:mod:`pdray.align.evaluate`), DMPO (:mod:`pdray.align.dmpo`) and the LossDiff scorer
(:mod:`pdray.lossdiff.logprob_actor`).

The encoding is the one TRL 1.16's ``DPOTrainer`` builds for the same pair
(``_prepare_dataset`` then ``DataCollatorForPreference``), so the scored tokens are the tokens
DPO optimised:

- conversational rows (the tokenizer has a chat template; :func:`pdray.align.data.to_dpo_rows`
  then writes conversational rows): prompt ids = ``apply_chat_template([user],
  add_generation_prompt=True)``, full ids = ``apply_chat_template([user, assistant])``, both
  tokenised by the template call itself; no EOS is added (the template closes the turn);
- plain text: ``tok(prompt)`` and ``tok(prompt + response + eos)``: TRL appends the EOS token to
  chosen and rejected unless the text already ends with it;
- the completion starts where the prompt ids and the full ids diverge, the *smaller* of the two
  divergence points of chosen and rejected (TRL keeps one prompt for both), so the prompt
  boundary of a response can depend on the other response of its pair;
- truncation keeps the start (TRL's default ``keep_start``): the first ``max_length`` tokens of
  prompt + completion. A pair whose prompt alone fills ``max_length`` keeps no completion token;
  TRL drops it from training and :func:`has_completion` is False for it.

log π(y|x) = Σ_{t ≥ 1, t in the completion} log softmax(logits_{t−1})[ids_t]: the prompt is
context only.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import torch

from pdray.models.formatting import fix_pad_token
from pdray.models.reward import token_batches


def load_tokenizer(path, *, trust_remote_code: bool = False):
    """The tokenizer of a local HF folder, with a pad token (:func:`fix_pad_token`)."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path), trust_remote_code=trust_remote_code)
    fix_pad_token(tok)
    return tok


def load_causal_lm(path, *, trust_remote_code: bool = False, dtype: str | None = "float32",
                   device="cpu"):
    """(model, tokenizer) from a local HF folder, in eval mode on ``device``, the pad token set
    (``dtype`` None: the checkpoint's own): the one loader of the models whose log-probs
    :func:`pair_logprobs` computes (DPO evaluation, the LossDiff scorer)."""
    from transformers import AutoModelForCausalLM

    tok = load_tokenizer(path, trust_remote_code=trust_remote_code)
    kw = {"dtype": getattr(torch, dtype)} if dtype else {}
    model = AutoModelForCausalLM.from_pretrained(str(path), trust_remote_code=trust_remote_code,
                                                 **kw)
    return model.to(device).eval(), tok


class Encoded(NamedTuple):
    """One sequence as the DPO collator builds it: ``ids`` (prompt then completion, truncated)
    and ``n_prompt``, the number of leading prompt tokens (outside the completion mask)."""

    ids: list[int]
    n_prompt: int

    @property
    def completion_mask(self) -> list[int]:
        """0 on the prompt tokens, 1 on the completion tokens."""
        return [0] * self.n_prompt + [1] * (len(self.ids) - self.n_prompt)


def is_conversational(tok) -> bool:
    """True when pairs are rendered through the chat template (the same rule as
    :func:`pdray.align.data.to_dpo_rows`, which decides what TRL is given)."""
    return bool(getattr(tok, "chat_template", None))


def _ids(out) -> list[int]:
    """The flat ``input_ids`` of a tokenizer or ``apply_chat_template(return_dict=True)`` call."""
    return list(out["input_ids"])


def prompt_ids(tok, prompt: str) -> list[int]:
    """The prompt alone as TRL tokenises it (with the generation prompt in chat mode)."""
    if is_conversational(tok):
        return _ids(tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=True,
                                            return_dict=True, add_generation_prompt=True))
    return _ids(tok(text=prompt))


def full_ids(tok, prompt: str, response: str) -> list[int]:
    """Prompt + response as TRL tokenises it (plain text: with EOS appended, as TRL does)."""
    if is_conversational(tok):
        return _ids(tok.apply_chat_template([{"role": "user", "content": prompt},
                                             {"role": "assistant", "content": response}],
                                            tokenize=True, return_dict=True))
    eos = tok.eos_token or ""
    return _ids(tok(text=prompt + (response if response.endswith(eos) else response + eos)))


def prompt_and_full_ids(tok, prompt: str, response: str) -> tuple[list[int], list[int]]:
    """(:func:`prompt_ids`, :func:`full_ids`) of one pair."""
    return prompt_ids(tok, prompt), full_ids(tok, prompt, response)


def common_prefix(a: Sequence[int], b: Sequence[int]) -> int:
    """Number of leading tokens ``a`` and ``b`` share (where the response starts)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def truncate(ids: list[int], n_prompt: int, max_length: int) -> Encoded:
    """TRL's ``keep_start`` truncation: the first ``max_length`` tokens, the mask cut with them."""
    ids = ids[:max_length]
    return Encoded(ids, min(n_prompt, len(ids)))


def encode_pair(tok, prompt: str, chosen: str, rejected: str,
                max_length: int) -> tuple[Encoded, Encoded]:
    """(chosen, rejected) encodings exactly as TRL's DPOTrainer builds them (see module doc)."""
    p = prompt_ids(tok, prompt)
    fc, fr = full_ids(tok, prompt, chosen), full_ids(tok, prompt, rejected)
    n = min(common_prefix(p, fc), common_prefix(p, fr))
    return truncate(fc, n, max_length), truncate(fr, n, max_length)


def encode(tok, prompt: str, response: str, max_length: int) -> Encoded:
    """One (prompt, response) encoded as TRL would encode a pair with this response on both
    sides; equals :func:`encode_pair`'s whenever chosen and rejected share the prompt boundary
    (always with chat templates that end the generation prompt on a token boundary)."""
    return encode_pair(tok, prompt, response, response, max_length)[0]


def has_completion(enc: Encoded) -> bool:
    """False when truncation left no completion token (TRL drops such pairs from training)."""
    return len(enc.ids) > enc.n_prompt


def pad_id_of(tok) -> int:
    """The padding id TRL's collator uses: the pad token, else EOS."""
    return tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id


def pad_encoded(encoded: Sequence[Encoded], pad_id: int):
    """Right-padded ``(input_ids, attention_mask, completion_mask)`` long tensors."""
    L = max(len(e.ids) for e in encoded)
    ids = torch.full((len(encoded), L), pad_id, dtype=torch.long)
    att = torch.zeros((len(encoded), L), dtype=torch.long)
    comp = torch.zeros((len(encoded), L), dtype=torch.long)
    for r, e in enumerate(encoded):
        ids[r, : len(e.ids)] = torch.as_tensor(e.ids, dtype=torch.long)
        att[r, : len(e.ids)] = 1
        comp[r, e.n_prompt: len(e.ids)] = 1
    return ids, att, comp


def completion_logps(model, input_ids, attention_mask, completion_mask) -> torch.Tensor:
    """Sum of next-token log-probs where ``completion_mask`` is 1 (differentiable)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    logits = logits[:, :-1].float()
    tgt = input_ids[:, 1:]
    tok_logp = logits.gather(-1, tgt.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(logits, dim=-1)
    return (tok_logp * completion_mask[:, 1:].to(tok_logp.dtype)).sum(dim=1)


def logprobs_of_encoded(model, encoded: Sequence[Encoded], *, pad_id: int,
                        batch_tokens: int = 8192) -> torch.Tensor:
    """:func:`completion_logps` of every sequence, in input order, batched by a padded-token
    budget (:func:`pdray.models.reward.token_batches`). Differentiable unless the caller runs
    it under ``torch.inference_mode``."""
    if not encoded:
        return torch.zeros(0)
    device = next(model.parameters()).device
    batches = token_batches([len(e.ids) for e in encoded], batch_tokens)
    parts = []
    for b in batches:
        ids, att, comp = pad_encoded([encoded[i] for i in b], pad_id)
        parts.append(completion_logps(model, ids.to(device), att.to(device), comp.to(device)))
    order = torch.tensor([i for b in batches for i in b], device=device)
    return torch.cat(parts)[torch.argsort(order)]


def pair_logprobs(model, pairs: Sequence[tuple[Encoded, Encoded]], *, pad_id: int,
                  batch_tokens: int = 8192) -> tuple[torch.Tensor, torch.Tensor]:
    """(log π(y_w|x), log π(y_l|x)) of encoded pairs; chosen and rejected share the batches."""
    lp = logprobs_of_encoded(model, [c for c, _ in pairs] + [r for _, r in pairs],
                             pad_id=pad_id, batch_tokens=batch_tokens)
    return lp[: len(pairs)], lp[len(pairs):]


def sequence_logprobs(model, tok, prompts: Sequence[str], responses: Sequence[str], *,
                      max_length: int = 1024, batch_tokens: int = 8192) -> torch.Tensor:
    """log π(response | prompt) per row, each encoded by :func:`encode` (differentiable)."""
    enc = [encode(tok, p, r, max_length) for p, r in zip(prompts, responses)]
    return logprobs_of_encoded(model, enc, pad_id=pad_id_of(tok), batch_tokens=batch_tokens)
