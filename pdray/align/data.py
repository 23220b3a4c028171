"""Canonical pairs -> TRL DPO datasets (conversational when the tokenizer has a chat template).

The full-data baselines are configurations, not code:

- ``all``: DPO on every pair, ``pdray dpo PAIRS.parquet --model M -o OUT`` (or the selector's
  ``--strategy all`` output);
- ``oracle`` / ``overall``: DPO on the pairs the relabelling selectors write,
  ``pdray select SCORES --strategy oracle|overall --data PAIRS -o SEL`` then
  ``pdray dpo SEL/selected.parquet ...``;
- ``dmpo``: all of D with its PD column (``pdray select SCORES --strategy pd --budget 1.0
  --data PAIRS``) and ``--loss dmpo``;
- ours: ``pdray select SCORES --strategy pd --budget 0.3 --data PAIRS`` then ``pdray dpo``.

Every row is checked: a missing or empty text, or a missing / non-finite ``pd`` for DMPO, raises a
one-line ``DataError`` naming file, row and field (nothing is dropped silently).
"""

from __future__ import annotations

import math

import pyarrow as pa

from pdray.errors import DataError
from pdray.schema import check_unique_ids

TEXT_FIELDS = ("prompt", "chosen", "rejected")


def check_rows(table: pa.Table, *, need_pd: bool = False, file: str | None = None) -> None:
    """Raise ``DataError(file, row, field)`` on the first unusable row for DPO / DMPO."""
    for c in TEXT_FIELDS + (("pd",) if need_pd else ()):
        if c not in table.column_names:
            hint = (" (DMPO needs the per-pair PD column: select with --data, e.g. pdray select "
                    "SCORES --strategy pd --budget 1.0 --data PAIRS)") if c == "pd" else ""
            raise DataError(f"required column for {'DMPO' if c == 'pd' else 'DPO'} is missing"
                            + hint, file=file, field=c)
    if "id" in table.column_names:
        check_unique_ids(table["id"], file)   # a repeated pair would be trained on twice
    for c in TEXT_FIELDS:
        for i, v in enumerate(table[c].to_pylist()):
            if not isinstance(v, str) or not v.strip():
                raise DataError("missing or empty text" if v is None or isinstance(v, str)
                                else f"expected text, got {type(v).__name__}",
                                file=file, row=i, field=c)
    if need_pd:
        for i, v in enumerate(table["pd"].to_pylist()):
            if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
                raise DataError(f"PD must be a finite number, got {v!r}", file=file, row=i,
                                field="pd")


def truncate_prompt(tokenizer, prompt: str, max_prompt_length: int | None) -> str:
    """Keep the last ``max_prompt_length`` tokens of a prompt (its end holds the question)."""
    if not max_prompt_length:
        return prompt
    ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    if len(ids) <= max_prompt_length:
        return prompt
    return tokenizer.decode(ids[-max_prompt_length:], skip_special_tokens=True)


def to_dpo_rows(table: pa.Table, tokenizer, *, need_pd: bool = False, file: str | None = None,
                max_prompt_length: int | None = None) -> dict[str, list]:
    """Columns ``prompt``/``chosen``/``rejected`` (+ ``pd`` for DMPO) for ``datasets.Dataset``.

    With a chat template the rows are conversational (user prompt, assistant answers), which is
    how TRL's DPOTrainer and :func:`pdray.align.sequence_logprobs` both tokenise them.
    """
    check_rows(table, need_pd=need_pd, file=file)
    p, c, r = (table[k].to_pylist() for k in TEXT_FIELDS)
    p = [truncate_prompt(tokenizer, x, max_prompt_length) for x in p]
    if getattr(tokenizer, "chat_template", None):
        rows = {"prompt": [[{"role": "user", "content": x}] for x in p],
                "chosen": [[{"role": "assistant", "content": y}] for y in c],
                "rejected": [[{"role": "assistant", "content": y}] for y in r]}
    else:
        rows = {"prompt": p, "chosen": c, "rejected": r}
    if need_pd:
        rows["pd"] = [float(v) for v in table["pd"].to_pylist()]
    return rows


def split_eval(table: pa.Table, fraction: float, seed: int) -> tuple[pa.Table, pa.Table | None]:
    """Seeded held-out split: (train, eval) with ``round(fraction·n)`` eval rows (none if 0)."""
    n_eval = int(round(fraction * table.num_rows))
    if n_eval <= 0:
        return table, None
    if n_eval >= table.num_rows:
        raise DataError(f"eval_fraction {fraction} leaves no training pairs "
                        f"({table.num_rows} rows)", field="eval_fraction")
    import numpy as np

    perm = np.random.default_rng(seed).permutation(table.num_rows)
    ev, tr = np.sort(perm[:n_eval]), np.sort(perm[n_eval:])
    return table.take(pa.array(tr)), table.take(pa.array(ev))
