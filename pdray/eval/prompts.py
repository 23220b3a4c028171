"""Loaders for the evaluation prompt sets in ``../shared/data/eval/`` (Sec. 5.1).

Each loader reads one public file in its own upstream format and returns an Arrow table with
``id`` (unique string), ``set``, ``prompt`` (the single user turn sent to the models),
``reference`` (a reference answer, or null) and ``category`` (or null). A malformed row raises a
:class:`~pdray.errors.DataError` naming the file, the row (0-based) and the field.

Sets and their sizes: the paper's five pairwise test sets WizardLM (218), Self-Instruct (252),
Vicuna (80), Koala (180), LIMA (300); AlpacaEval (805, with the AlpacaEval 2.0 GPT-4-1106
reference outputs; ``alpaca_eval_davinci`` has the AlpacaEval 1 text-davinci-003 ones) and
MT-Bench (80; the pairwise judge sees the first turn, the second is kept in ``turns``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from pdray.errors import DataError
from pdray.io import detect_format, iter_json_rows, read_table

PROMPT_SCHEMA = pa.schema([
    pa.field("id", pa.string(), nullable=False),
    pa.field("set", pa.string(), nullable=False),
    pa.field("prompt", pa.string(), nullable=False),
    pa.field("reference", pa.string()),
    pa.field("category", pa.string()),
    pa.field("turns", pa.list_(pa.string())),
])

PAPER_SETS = ("wizardlm", "selfinstruct", "vicuna", "koala", "lima")
EXPECTED_SIZES = {"wizardlm": 218, "selfinstruct": 252, "vicuna": 80, "koala": 180, "lima": 300,
                  "alpaca_eval": 805, "alpaca_eval_davinci": 805, "mt_bench": 80}
ALIASES = {"self-instruct": "selfinstruct", "self_instruct": "selfinstruct",
           "alpacaeval": "alpaca_eval", "alpaca": "alpaca_eval", "mt-bench": "mt_bench",
           "mtbench": "mt_bench", "wizard": "wizardlm"}
FILES = {"wizardlm": "wizardlm_test.jsonl", "selfinstruct": "selfinstruct_test.jsonl",
         "vicuna": "vicuna_test.jsonl", "koala": "koala_test.jsonl", "lima": "lima_test.jsonl",
         "alpaca_eval": "alpaca_eval_gpt4_1106_preview.json",
         "alpaca_eval_davinci": "alpaca_eval_text_davinci_003.json",
         "mt_bench": "mt_bench_question.jsonl"}


def default_data_dir() -> Path:
    """``$PDRAY_EVAL_DATA``, else ``../shared/data/eval`` beside the checkout or the cwd."""
    env = os.environ.get("PDRAY_EVAL_DATA")
    if env:
        return Path(env)
    for base in (Path(__file__).resolve().parents[2], Path.cwd()):
        cand = base.parent / "shared" / "data" / "eval"
        if cand.exists():
            return cand
    return Path("../shared/data/eval")


def canonical_set_name(name: str) -> str:
    key = name.strip().lower()
    key = ALIASES.get(key, key)
    if key not in FILES:
        raise DataError(f"unknown test set {name!r}; known: {', '.join(FILES)}")
    return key


def _text(obj: dict, field: str, file: str, row: int, *, required: bool = True) -> str | None:
    if field not in obj or obj[field] is None:
        if required:
            raise DataError("missing field", file=file, row=row, field=field)
        return None
    v = obj[field]
    if not isinstance(v, str):
        raise DataError(f"expected a string, got {type(v).__name__}", file=file, row=row, field=field)
    if required and not v.strip():
        raise DataError("empty text", file=file, row=row, field=field)
    return v


def _row(set_name, id_, prompt, reference=None, category=None, turns=None) -> dict:
    return {"id": str(id_), "set": set_name, "prompt": prompt, "reference": reference,
            "category": category, "turns": turns}


def _wizardlm(obj, file, row):
    return _row("wizardlm", f"wizardlm_{obj.get('idx', row)}",
                _text(obj, "Instruction", file, row), category=obj.get("Skill"))


def _selfinstruct(obj, file, row):
    instruction = _text(obj, "instruction", file, row)
    inst = obj.get("instances")
    if not isinstance(inst, list) or not inst or not isinstance(inst[0], dict):
        raise DataError("expected a non-empty list of {input, output}", file=file, row=row,
                        field="instances")
    inp = inst[0].get("input") or ""
    if not isinstance(inp, str):
        raise DataError("expected a string", file=file, row=row, field="instances[0].input")
    prompt = f"{instruction}\n\n{inp}" if inp.strip() else instruction
    out = inst[0].get("output")
    return _row("selfinstruct", _text(obj, "id", file, row), prompt,
                reference=out if isinstance(out, str) else None,
                category=obj.get("motivation_app"))


def _vicuna(obj, file, row):
    return _row("vicuna", f"vicuna_{obj.get('question_id', row)}", _text(obj, "text", file, row),
                category=obj.get("category"))


def _koala(obj, file, row):
    return _row("koala", _text(obj, "id", file, row), _text(obj, "prompt", file, row))


def _lima(obj, file, row):
    conv = obj.get("conversations")
    if isinstance(conv, list):  # upstream LIMA also ships [user, assistant, ...] lists
        if not conv or not isinstance(conv[0], str) or not conv[0].strip():
            raise DataError("expected a non-empty first turn", file=file, row=row,
                            field="conversations")
        conv = conv[0]
    else:
        conv = _text(obj, "conversations", file, row)
    return _row("lima", f"lima_{row}", conv)


def _mt_bench(obj, file, row):
    turns = obj.get("turns")
    if not isinstance(turns, list) or not turns or not all(isinstance(t, str) and t.strip()
                                                           for t in turns):
        raise DataError("expected a non-empty list of non-empty strings", file=file, row=row,
                        field="turns")
    return _row("mt_bench", f"mt_bench_{obj.get('question_id', row)}", turns[0],
                category=obj.get("category"), turns=list(turns))


def _alpaca(set_name):
    def parse(obj, file, row):
        return _row(set_name, f"{set_name}_{row}", _text(obj, "instruction", file, row),
                    reference=_text(obj, "output", file, row, required=False),
                    category=obj.get("dataset"))
    return parse


PARSERS: dict[str, Callable] = {"wizardlm": _wizardlm, "selfinstruct": _selfinstruct,
                                "vicuna": _vicuna, "koala": _koala, "lima": _lima,
                                "mt_bench": _mt_bench, "alpaca_eval": _alpaca("alpaca_eval"),
                                "alpaca_eval_davinci": _alpaca("alpaca_eval_davinci")}


def load_prompt_set(name: str, data_dir: str | Path | None = None, *,
                    limit: int | None = None, path: str | Path | None = None) -> pa.Table:
    """Load one test set (by name, from ``data_dir`` or an explicit ``path``) as a prompt table."""
    key = canonical_set_name(name)
    file = Path(path) if path else Path(data_dir or default_data_dir()) / FILES[key]
    if not file.exists():
        raise DataError(f"test set {key!r} not found (set eval.data_dir or $PDRAY_EVAL_DATA)",
                        file=str(file))
    parse = PARSERS[key]
    rows, seen = [], {}
    for row, obj in iter_json_rows(file):
        rec = parse(obj, str(file), row)
        if rec["id"] in seen:
            raise DataError(f"duplicate id {rec['id']!r} (first at row {seen[rec['id']]})",
                            file=str(file), row=row, field="id")
        seen[rec["id"]] = row
        rows.append(rec)
        if limit is not None and len(rows) >= limit:
            break
    if not rows:
        raise DataError("no prompts in file", file=str(file))
    return pa.Table.from_pylist(rows, schema=PROMPT_SCHEMA)


def load_prompt_sets(names, data_dir: str | Path | None = None, *,
                     limit: int | None = None) -> dict[str, pa.Table]:
    """Load several sets: ``{canonical name: table}`` (order kept, duplicates removed)."""
    out: dict[str, pa.Table] = {}
    for n in names:
        key = canonical_set_name(n)
        if key not in out:
            out[key] = load_prompt_set(key, data_dir, limit=limit)
    return out


def read_answers(path: str | Path) -> dict[str, str]:
    """Answers file (Parquet, or JSONL/JSON) with ``id`` and ``answer`` (or ``output``) fields."""
    path = str(path)
    if detect_format(path) == "parquet":
        rows = enumerate(read_table(path).to_pylist())
    else:
        rows = iter_json_rows(path)
    out: dict[str, str] = {}
    for i, obj in rows:
        col = "answer" if "answer" in obj else "output"
        id_ = obj.get("id")
        if id_ is None:
            raise DataError("missing field", file=path, row=i, field="id")
        ans = obj.get(col)
        if not isinstance(ans, str):
            raise DataError("expected a string answer", file=path, row=i, field=col)
        out[str(id_)] = ans
    return out
