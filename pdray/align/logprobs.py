"""Sequence log-probabilities log π(y | x) of responses under a causal LM.

Tokenisation matches TRL's DPOTrainer: with a chat template, the prompt is the user turn with
the generation prompt, the full text is user + assistant turns, and the response tokens are those
after their common prefix; without one, prompt and response are concatenated as text.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


def prompt_and_full_ids(tok, prompt: str, response: str) -> tuple[list[int], list[int]]:
    if getattr(tok, "chat_template", None):
        p = tok.apply_chat_template([{"role": "user", "content": prompt}], tokenize=True,
                                    add_generation_prompt=True)
        f = tok.apply_chat_template([{"role": "user", "content": prompt},
                                     {"role": "assistant", "content": response}], tokenize=True)
        p = p["input_ids"] if isinstance(p, dict) or hasattr(p, "keys") else p
        f = f["input_ids"] if isinstance(f, dict) or hasattr(f, "keys") else f
    else:
        p = tok(prompt)["input_ids"]
        f = tok(prompt + response)["input_ids"]
    return list(p), list(f)


def common_prefix(a: list[int], b: list[int]) -> int:
    """Number of leading tokens ``a`` and ``b`` share (where the response starts)."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def sequence_logprobs(model, tok, prompts: Sequence[str], responses: Sequence[str], *,
                      batch_size: int = 8, max_length: int = 1024) -> torch.Tensor:
    """Σ_t log π(y_t | x, y_<t) over the response tokens, one value per (prompt, response)."""
    seqs, masks = [], []
    for x, y in zip(prompts, responses):
        p, f = prompt_and_full_ids(tok, x, y)
        k = common_prefix(p, f)
        f = f[:max_length]
        seqs.append(f)
        masks.append([0] * min(k, len(f)) + [1] * max(0, len(f) - k))
    pad = tok.pad_token_id if tok.pad_token_id is not None else 0
    device = next(model.parameters()).device
    out = []
    for s in range(0, len(seqs), batch_size):
        chunk, mchunk = seqs[s:s + batch_size], masks[s:s + batch_size]
        L = max(len(c) for c in chunk)
        ids = torch.full((len(chunk), L), pad, dtype=torch.long)
        att = torch.zeros_like(ids)
        comp = torch.zeros_like(ids)
        for i, (c, m) in enumerate(zip(chunk, mchunk)):
            ids[i, : len(c)] = torch.tensor(c)
            att[i, : len(c)] = 1
            comp[i, : len(m)] = torch.tensor(m)
        out.append(completion_logps(model, ids.to(device), att.to(device), comp.to(device)))
    return torch.cat(out) if out else torch.zeros(0)


def completion_logps(model, input_ids, attention_mask, completion_mask) -> torch.Tensor:
    """Sum of next-token log-probs where ``completion_mask`` is 1 (differentiable)."""
    logits = model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits
    logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
    tgt = input_ids[:, 1:]
    tok_logp = logp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1)
    return (tok_logp * completion_mask[:, 1:].to(tok_logp.dtype)).sum(dim=1)
