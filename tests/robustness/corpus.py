"""The malformed-input corpus: each case is an input, the command or reader that gets it, and
the exact outcome (exit code plus message fragments: the error line naming file, row and field,
or the quarantine count and reason).

``files``: name -> bytes (or a callable(tmp_path) that makes the thing, e.g. a folder); ``args``
and ``expect`` use ``{in}`` (the first file), ``{tmp}`` (the test's folder) and ``{out}``.
``verb``: a ``pdray`` command line (run by typer's CliRunner), ``main`` (the ``pdray`` entry
point, the CLI error boundary) or ``read_table`` / ``read_pairs`` (the readers; a
:class:`~pdray.errors.PdrayError` is rendered as ``error: …`` with exit 2). ``patch``: a fault
to inject (disk full, read-only folder), applied with ``monkeypatch``.
"""

from __future__ import annotations

import gzip
import io
import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.parquet as pq

from tests.data.helpers import with_fields


def pair(i: int, **kw) -> dict:
    return with_fields({"id": f"p{i}", "aspect": ("helpfulness", "honesty")[i % 2],
                        "prompt": f"prompt {i}", "chosen": f"good answer {i}",
                        "rejected": f"bad answer {i}"}, **kw)


def jsonl(*rows) -> bytes:
    return b"".join((r if isinstance(r, bytes) else json.dumps(r).encode()) + b"\n" for r in rows)


def bad_row(**kw) -> bytes:
    """Three pair rows, the middle one (row 1) changed by ``kw``."""
    return jsonl(pair(0), pair(1, **kw), pair(2))


def parquet(table: pa.Table) -> bytes:
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _pairs_table(**cols) -> pa.Table:
    base = {k: [pair(i)[k] for i in range(3)] for k in pair(0)}
    base.update(cols)
    return pa.table(base)


PKU = {"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 0,
       "safer_response_id": 1}
TRL = {"prompt": "p", "chosen": "c", "rejected": "r", "aspect": "helpfulness"}
HS = {"prompt": "p", "response": "r", "helpfulness": 3, "correctness": 2, "coherence": 4,
      "complexity": 2, "verbosity": 1}


def _three(base: dict, **kw) -> bytes:
    rows = [dict(base, prompt=f"p{i}") for i in range(3)]
    for k, v in kw.items():
        if v is KeyError:
            rows[1].pop(k)
        else:
            rows[1][k] = v
    return jsonl(*rows)


UF_ROW = {"instruction": "q", "completions": [
    {"model": f"m{j}", "response": f"answer {j}", "overall_score": 3.0,
     "annotations": {a: {"Rating": str(3 + j)} for a in ("helpfulness", "honesty",
                                                          "instruction_following",
                                                          "truthfulness")}} for j in range(2)]}
DEEP = b'{"id": "p1", "x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
GOOD3 = jsonl(pair(0), pair(1), pair(2))
GZ = gzip.compress(GOOD3)
CHOSEN_NUMBER = bad_row(chosen=5)
CORRUPT_GZ = bytes(b ^ 0xFF if i in (20, 21) else b for i, b in enumerate(GZ))
HS3 = jsonl(*[dict(HS, response=f"r{i}", helpfulness=i) for i in range(2)],
            dict(HS, response="\udc00"), dict(HS, response="r3", helpfulness=4))


@dataclass
class Case:
    name: str
    verb: str
    files: dict
    args: list = field(default_factory=list)
    code: int = 2
    expect: list = field(default_factory=list)
    patch: str | None = None


V, B, I = ["data", "validate", "{in}"], ["data", "build", "{in}", "-o", "{out}"], \
    ["data", "inspect", "{in}"]
Q = B + ["--quarantine", "{tmp}/q.jsonl"]
F = "error: {in}: "  # the start of every error line about the input file

CASES = [
    # --- wrong JSON types in pair rows (validate / inspect / build, default format) ---
    Case("chosen-number", "cli", {"p.jsonl": CHOSEN_NUMBER}, V,
         expect=[F + "row 1, field 'chosen': expected text, got number 5"]),
    Case("prompt-list", "cli", {"p.jsonl": bad_row(prompt=["a", "b"])}, I,
         expect=[F + "row 1, field 'prompt': expected text, got list ['a', 'b']"]),
    Case("id-number", "cli", {"p.jsonl": bad_row(id=7)}, B,
         expect=[F + "row 1, field 'id': expected text, got number 7"]),
    Case("id-null", "cli", {"p.jsonl": bad_row(id=None)}, V, expect=[F + "row 1, field 'id': null"]),
    Case("rating-na", "cli", {"p.jsonl": bad_row(chosen_ratings={"helpfulness": "N/A"})}, V,
         expect=[F + "row 1, field 'chosen_ratings': rating for aspect 'helpfulness' must be a "
                 "number, got text 'N/A'"]),
    Case("rating-string-3", "cli", {"p.jsonl": bad_row(rejected_ratings={"honesty": "3"})}, B,
         expect=[F + "row 1, field 'rejected_ratings': rating for aspect 'honesty' must be a "
                 "number, got text '3'"]),
    Case("rating-bool", "cli", {"p.jsonl": bad_row(chosen_ratings={"honesty": True})}, V,
         expect=[F + "row 1, field 'chosen_ratings': rating for aspect 'honesty' must be a "
                 "number, got boolean True"]),
    Case("ratings-list", "cli", {"p.jsonl": bad_row(chosen_ratings=[1, 2])}, V,
         expect=[F + "row 1, field 'chosen_ratings': expected an object of aspect -> number, "
                 "got list [1, 2]"]),
    Case("overall-string", "cli", {"p.jsonl": bad_row(chosen_overall="4")}, V,
         expect=[F + "row 1, field 'chosen_overall': expected a number, got text '4'"]),
    Case("overall-nan", "cli", {"p.jsonl": bad_row(rejected_overall=float("nan"))}, V,
         expect=[F + "row 1, field 'rejected_overall': non-finite rating nan"]),
    Case("source-number", "cli", {"p.jsonl": bad_row(source=3)}, V,
         expect=[F + "row 1, field 'source': expected text, got number 3"]),
    Case("extra-mixed", "cli", {"p.jsonl": jsonl(pair(0, score=1.5), pair(1, score="high"))}, V,
         expect=[F + "row 1, field 'score': mixed types in one column: text here, number in "
                 "row 0"]),
    Case("extra-nested-conflict", "cli",
         {"p.jsonl": jsonl(pair(0, meta={"a": 1}), pair(1, meta={"a": "x"}))}, V,
         expect=[F + "row 1, field 'meta': cannot convert object value"]),
    Case("row0-no-id", "cli", {"p.jsonl": jsonl(pair(0, id=KeyError), pair(1))}, V,
         expect=[F + "row 0, field 'id': missing field"]),
    Case("chosen-null", "cli", {"p.jsonl": bad_row(chosen=None)}, I,
         expect=[F + "row 1, field 'chosen': null"]),
    Case("chosen-empty", "cli", {"p.jsonl": bad_row(chosen="  ")}, V,
         expect=[F + "row 1, field 'chosen': empty text"]),
    Case("identical", "cli", {"p.jsonl": bad_row(rejected="good answer 1")}, V,
         expect=[F + "row 1, field 'rejected': identical to chosen"]),
    Case("duplicate-id", "cli", {"p.jsonl": bad_row(id="p0")}, B,
         expect=[F + "row 1, field 'id': duplicate id 'p0'"]),
    Case("aspect-traversal", "cli", {"p.jsonl": bad_row(aspect="../../x")}, V,
         expect=[F + "row 1, field 'aspect': unsafe aspect name '../../x'"]),
    Case("aspect-separator", "cli", {"p.jsonl": bad_row(aspect="a\\b")}, V,
         expect=[F + "row 1, field 'aspect': unsafe aspect name 'a\\\\b'"]),
    Case("aspect-empty", "cli", {"p.jsonl": bad_row(aspect="")}, V,
         expect=[F + "row 1, field 'aspect': empty text"]),
    Case("aspect-dot", "cli", {"p.jsonl": bad_row(aspect=".hidden")}, V,
         expect=[F + "row 1, field 'aspect': unsafe aspect name '.hidden'"]),
    Case("aspect-unknown", "cli", {"p.jsonl": bad_row(aspect="style")},
         V + ["--known-aspects", "helpfulness,honesty"],
         expect=[F + "row 1, field 'aspect': unknown aspect 'style' (known: helpfulness, "
                 "honesty)"]),
    Case("one-aspect", "cli", {"p.jsonl": jsonl(pair(0), pair(2))}, V + ["--min-aspects", "2"],
         expect=[F + "field 'aspect': found 1 aspect(s) but at least 2 are needed"]),
    Case("ratings-one-side", "cli", {"p.jsonl": jsonl(pair(0, chosen_ratings={"h": 1}), pair(1))},
         I, code=0, expect=["2 pairs, 2 aspects", "no ground-truth ratings: conflict rate unknown"]),
    # --- unreadable files and lines ---
    Case("empty-file", "cli", {"p.jsonl": b""}, V, expect=[F + "no rows (the file is empty)"]),
    Case("blank-lines", "cli", {"p.jsonl": b"\n \n\n"}, B,
         expect=[F + "no rows (the file is empty)"]),
    Case("broken-json", "cli", {"p.jsonl": jsonl(pair(0), b'{"id": "p1", ')}, V,
         expect=[F + "row 1, field '<line>': not valid JSON: Expecting property name"]),
    Case("not-object", "cli", {"p.jsonl": jsonl(pair(0), b"[1, 2]")}, V,
         expect=[F + "row 1, field '<line>': expected a JSON object, got list"]),
    Case("json-array-element", "cli", {"p.json": json.dumps([pair(0), 3]).encode()}, V,
         expect=[F + "row 1, field '<line>': expected a JSON object, got int"]),
    Case("non-utf8", "cli", {"p.jsonl": jsonl(pair(0), b'{"id": "p1", "chosen": "caf\xe9"}')}, V,
         expect=[F + "row 1, field 'chosen': not UTF-8 (byte 27 of the line)"]),
    Case("lone-surrogate", "cli",
         {"p.jsonl": jsonl(pair(0), json.dumps(pair(1, chosen="x\ud800y")).encode())}, V,
         expect=[F + "row 1, field 'chosen': lone surrogate escape"]),
    Case("deep-nesting", "cli", {"p.jsonl": jsonl(pair(0), DEEP)}, V,
         expect=[F + "row 1, field '<line>': JSON nested too deeply"]),
    Case("truncated-gz", "cli", {"p.jsonl.gz": GZ[: len(GZ) // 2]}, V,
         expect=[F + "truncated gzip file (the compressed data ends early)"]),
    Case("corrupt-gz", "cli", {"p.jsonl.gz": b"this is not gzip at all"}, B,
         expect=[F + "not a readable gzip file: Not a gzipped file"]),
    Case("directory-input", "cli", {"p.jsonl": lambda d: d.mkdir()}, V,
         expect=[F + "is a folder, expected a file"]),
    Case("missing-input", "cli", {}, ["data", "inspect", "{tmp}/none.jsonl"],
         expect=["error: {tmp}/none.jsonl: file does not exist"]),
    Case("unknown-input-extension", "cli", {"p.csv": b"id,chosen\n"}, V,
         expect=[F + "cannot tell the format from the name"]),
    # --- Parquet column types: never cast into something else ---
    Case("parquet-int-chosen", "cli",
         {"p.parquet": parquet(_pairs_table(chosen=pa.array([0, 1, 2])))}, V,
         expect=[F + "row 0, field 'chosen': expected text, got a column of int64"]),
    Case("parquet-int-chosen-quarantine", "cli",
         {"p.parquet": parquet(_pairs_table(chosen=pa.array([None, 1, 2])))}, Q,
         expect=[F + "row 1, field 'chosen': expected text, got a column of int64"]),
    Case("parquet-string-overall", "cli",
         {"p.parquet": parquet(_pairs_table(chosen_overall=pa.array(["4", "5", "N/A"])))}, I,
         expect=[F + "row 0, field 'chosen_overall': expected numbers, got a column of string"]),
    Case("parquet-string-ratings", "cli",
         {"p.parquet": parquet(_pairs_table(chosen_ratings=pa.array(
             [[("h", "3")]] * 3, type=pa.map_(pa.string(), pa.string()))))}, V,
         expect=[F + "row 0, field 'chosen_ratings': expected an aspect -> number map"]),
    Case("parquet-garbage", "cli", {"p.parquet": b"PAR1 not really"}, V,
         expect=[F + "not a readable Parquet file"]),
    Case("parquet-unsafe-aspect", "cli",
         {"p.parquet": parquet(_pairs_table(aspect=pa.array(["a", "../../x", "b"])))}, V,
         expect=[F + "row 1, field 'aspect': unsafe aspect name '../../x'"]),
    # --- outputs and infrastructure ---
    Case("output-csv", "cli", {"p.jsonl": GOOD3}, ["data", "build", "{in}", "-o", "{tmp}/o.csv"],
         expect=["error: {tmp}/o.csv: unsupported output extension '.csv'"]),
    Case("quarantine-csv", "cli", {"p.jsonl": GOOD3}, B + ["--quarantine", "{tmp}/q.csv"],
         expect=["error: {tmp}/q.csv: unsupported output extension '.csv'"]),
    Case("output-under-file", "cli", {"p.jsonl": GOOD3},
         ["data", "build", "{in}", "-o", "{in}/sub/o.parquet"],
         expect=["error: {in}/sub/o.parquet: cannot write: {in} is a file, not a folder"]),
    Case("validate-output-is-folder", "cli", {"p.jsonl": GOOD3, "o.parquet": lambda d: d.mkdir()},
         V + ["--output", "{tmp}/o.parquet"],
         expect=["error: {tmp}/o.parquet: cannot write: a folder is in the way"]),
    Case("read-only-folder", "cli", {"p.jsonl": GOOD3}, B, patch="read-only",
         expect=["error: {out}: cannot write: folder {tmp} is not writable"]),
    Case("disk-full", "cli", {"p.jsonl": GOOD3}, B, patch="disk-full",
         expect=["error: {out}: cannot write: No space left on device"]),
    Case("synth-permission", "cli", {}, ["data", "synth", "--n", "5", "-o", "{out}"],
         patch="synth-oserror", expect=["error: {out}: Permission denied"]),
    Case("synth-under-file", "cli", {"f": b"x"}, ["data", "synth", "--n", "5", "-o",
                                                  "{in}/s.parquet"],
         expect=["error: {in}/s.parquet: cannot write: {in} is a file, not a folder"]),
    Case("synth-unsafe-aspect", "cli", {}, ["data", "synth", "--n", "5", "-o", "{out}",
                                            "--aspects", "../x,b"],
         expect=["error: unsafe aspect name '../x'"]),
    Case("boundary-oserror", "main", {}, ["data", "inspect", "x.parquet"], patch="app-oserror",
         expect=["error: /data/out/x.parquet: No space left on device"]),
    # --- quarantine: the bad row set aside with its reason, and counted ---
    Case("q-chosen-number", "cli", {"p.jsonl": CHOSEN_NUMBER}, Q, code=0,
         expect=["quarantined=1", "quarantined 1 bad rows",
                 "quarantined: row 1, field 'chosen': expected text, got number 5",
                 "wrote 2 pairs"]),
    Case("q-bad-json-default-format", "cli", {"p.jsonl": jsonl(pair(0), b"{oops", pair(2))}, Q,
         code=0, expect=["rows_in=3, rows_out=2, quarantined=1",
                         "quarantined: row 1, field '<line>': not valid JSON"]),
    Case("q-identical", "cli", {"p.jsonl": bad_row(rejected="good answer 1")}, Q, code=0,
         expect=["quarantined=1", "quarantined: row 1, field 'rejected': identical to chosen"]),
    Case("q-duplicate", "cli", {"p.jsonl": bad_row(id="p0")}, Q, code=0,
         expect=["quarantined=1", "quarantined: row 1, field 'id': duplicate id 'p0'"]),
    Case("q-mixed-and-nested", "cli",
         {"p.jsonl": jsonl(pair(0, meta={"a": 1}, n=1), pair(1, meta={"a": "x"}),
                           pair(2, n="two"), pair(3))}, Q, code=0,
         expect=["rows_in=4, rows_out=2, quarantined=2",
                 "quarantined: row 2, field 'n': mixed types in one column",
                 "quarantined: row 1, field 'meta': cannot convert object value"]),
    Case("q-validate", "cli", {"p.jsonl": bad_row(aspect="../../x")},
         V + ["--quarantine", "{tmp}/q.jsonl", "--output", "{out}"], code=0,
         expect=["2 valid, 1 quarantined", "quarantined: row 1, field 'aspect': unsafe aspect"]),
    Case("q-all-bad", "cli", {"p.jsonl": jsonl(pair(0, chosen=1), pair(1, chosen=2))}, Q,
         expect=["quarantined 2 bad rows", F + "no valid pairs to write"]),
    # --- the other source formats ---
    Case("trl-id-list", "cli", {"t.jsonl": _three(TRL, id=[1])}, B + ["--format", "trl"],
         expect=[F + "row 1, field 'id': expected text or an integer id, got list [1]"]),
    Case("trl-chosen-number", "cli", {"t.jsonl": _three(TRL, chosen=5)}, B + ["--format", "trl"],
         expect=[F + "row 1, field 'chosen': expected text or a non-empty list of chat "
                 "messages"]),
    Case("trl-unsafe-constant-aspect", "cli", {"t.jsonl": _three(TRL, aspect=KeyError)},
         B + ["--format", "trl", "--aspect", "../../x"],
         expect=["error: config: options={{'aspect': '../../x'}}: Value error, aspect: "
                 + "unsafe aspect name '../../x'"]),
    Case("config-unsafe-known-aspect", "cli", {"p.jsonl": GOOD3}, B + ["known_aspects=[a, /x]"],
         expect=["error: config: known_aspects=['a', '/x']: Value error, "
                 + "unsafe aspect name '/x'"]),
    Case("trl-unsafe-aspect-column", "cli", {"t.jsonl": _three(TRL, aspect="a/b")},
         B + ["--format", "trl"], expect=[F + "row 1, field 'aspect': unsafe aspect name 'a/b'"]),
    Case("generic-aspect-number", "cli", {"t.jsonl": _three(TRL, aspect=3)},
         B + ["--format", "generic"],
         expect=[F + "row 1, field 'aspect': expected text, got number 3"]),
    Case("generic-identical", "cli", {"t.jsonl": _three(TRL, rejected="c")},
         B + ["--format", "generic"],
         expect=[F + "row 1, field 'rejected': identical to chosen"]),
    Case("trl-metadata-source-number", "cli", {"t.jsonl": _three(TRL, metadata={"source": 9})},
         B + ["--format", "trl"],
         expect=[F + "row 1, field 'metadata.source': expected text, got number 9"]),
    Case("generic-source-list", "cli", {"t.jsonl": _three(TRL, source=["x"])},
         Q + ["--format", "generic"], code=0,
         expect=["quarantined=1", "quarantined: row 1, field 'source': expected text, got list"]),
    Case("uf-raw-model-number", "cli", {"u.jsonl": jsonl(UF_ROW, dict(UF_ROW, completions=[
        dict(UF_ROW["completions"][0], model=3), UF_ROW["completions"][1]]))},
         B + ["--format", "ultrafeedback_raw"],
         expect=[F + "row 1, field 'completions[0].model': expected text, got number 3"]),
    Case("pku-identical", "cli", {"k.jsonl": _three(PKU, response_1="a")},
         B + ["--format", "pku_saferlhf"],
         expect=[F + "row 1, field 'response_1': identical to response_0"]),
    Case("pku-empty-gz", "cli", {"k.jsonl.gz": gzip.compress(b"")},
         B + ["--format", "pku_saferlhf"], expect=[F + "no rows (the file is empty)"]),
    Case("pku-truncated-gz", "cli", {"k.jsonl.gz": gzip.compress(_three(PKU))[:30]},
         Q + ["--format", "pku_saferlhf"], expect=[F + "truncated gzip file"]),
    Case("helpsteer-surrogate", "cli",
         {"h.jsonl": HS3}, Q + ["--format", "helpsteer2"], code=0,
         expect=["rows_in=4, rows_out=3, quarantined=1", "built 1 pairs from 1 prompts",
                 "quarantined: row 2, field 'response': lone surrogate escape"]),
    Case("helpsteer-rating-string", "cli", {"h.jsonl": _three(HS, coherence="3")},
         B + ["--format", "helpsteer2"],
         expect=[F + "row 1, field 'coherence': non-numeric rating '3'"]),
    # --- the readers themselves ---
    Case("read_table-mixed", "read_table", {"s.jsonl": jsonl({"id": "a", "gap": 1.5},
                                                             {"id": "b", "gap": "x"})},
         expect=[F + "row 1, field 'gap': cannot convert text value"]),
    Case("read_table-row0-lacks-column", "read_table",
         {"s.jsonl": jsonl({"id": "a"}, {"id": "b", "gap": 2.0})}, code=0,
         expect=["columns=id,gap rows=2"]),
    Case("read_table-numeric-chosen", "read_table", {"s.jsonl": CHOSEN_NUMBER},
         expect=[F + "row 1, field 'chosen': cannot convert number value"]),
    Case("read_table-truncated-gz", "read_table", {"s.jsonl.gz": b"\x1f\x8b\x08\x00garbage"},
         expect=[F + "truncated gzip file"]),
    Case("read_table-corrupt-gz", "read_table", {"s.jsonl.gz": CORRUPT_GZ},
         expect=[F + "not a readable gzip file: CRC check failed"]),
    Case("read_pairs-numeric-id", "read_pairs", {"p.jsonl": bad_row(id=1.5)},
         expect=[F + "row 1, field 'id': expected text, got number 1.5"]),
    Case("read_pairs-parquet-folder-of-junk", "read_pairs",
         {"d": lambda d: (d.mkdir(), (d / "x.parquet").write_bytes(b"junk"))},
         expect=[F + "not a readable Parquet file"]),
]
