"""Every malformed input: one-line DataError naming file, row and field; or quarantined."""

import json

import pytest

from pdray.data import load_source
from pdray.errors import DataError

from .helpers import accounted, uf_raw_row, with_fields

PKU = {"prompt": "p", "response_0": "a", "response_1": "b", "better_response_id": 0,
       "safer_response_id": 1}
HS = {"prompt": "p", "response": "r", "helpfulness": 3, "correctness": 2, "coherence": 4,
      "complexity": 2, "verbosity": 1}
TRL = {"prompt": "p", "chosen": "c", "rejected": "r", "aspect": "helpfulness"}


def _line(obj):
    return json.dumps(obj).encode() if isinstance(obj, dict) else obj


def _case(good, bad, good2=None):
    g2 = dict(good2 or good)
    if "id" in g2:
        g2["id"] = "z9"
    return [_line(good), _line(bad), _line(g2)]


_with = with_fields


CASES = [  # id, fmt, lines, options, field, message
    ("pku-missing", "pku_saferlhf", _case(PKU, _with(PKU, prompt=KeyError)), {},
     "prompt", "missing field"),
    ("pku-empty", "pku_saferlhf", _case(PKU, _with(PKU, response_1="  ")), {},
     "response_1", "empty text"),
    ("pku-label", "pku_saferlhf", _case(PKU, _with(PKU, better_response_id=2)), {},
     "better_response_id", "expected 0 or 1, got 2"),
    ("hs-nonnumeric", "helpsteer2", _case(HS, _with(HS, correctness="high")), {},
     "correctness", "non-numeric rating 'high'"),
    ("hs-range", "helpsteer2", _case(HS, _with(HS, verbosity=9)), {},
     "verbosity", r"rating 9 out of range \[0, 4\]"),
    ("hs-missing", "helpsteer2", _case(HS, _with(HS, coherence=KeyError)), {},
     "coherence", "missing field"),
    ("uf-range", "ultrafeedback_raw",
     _case(uf_raw_row("q", [["5", "4", "3", "2"]] * 2),
           uf_raw_row("q2", [["5", "4", "3", "2"], ["7", "1", "1", "1"]])), {},
     r"completions\[1\].annotations.helpfulness.Rating", r"rating '7' out of range \[1, 5\]"),
    ("uf-nonnumeric", "ultrafeedback_raw",
     _case(uf_raw_row("q", [["5", "4", "3", "2"]] * 2),
           uf_raw_row("q2", [["5", "4", "3", "2"], ["3", "five", "1", "1"]])), {},
     r"completions\[1\].annotations.honesty.Rating", "non-numeric rating 'five'"),
    ("uf-empty-response", "ultrafeedback_raw",
     _case(uf_raw_row("q", [["5", "4", "3", "2"]] * 2),
           {"instruction": "q2", "completions": [{"response": "", "annotations": {}}]}), {},
     r"completions\[0\].response", "empty text"),
    ("trl-empty", "trl", _case(TRL, _with(TRL, chosen="")), {}, "chosen", "empty text"),
    ("trl-missing", "trl", _case(TRL, _with(TRL, rejected=KeyError)), {}, "rejected",
     "missing field"),
    ("trl-unknown-aspect", "trl", _case(TRL, _with(TRL, aspect="style")),
     {"known_aspects": ["helpfulness", "honesty"]}, "aspect",
     "unknown aspect 'style' \\(known: helpfulness, honesty\\)"),
    ("trl-duplicate-id", "trl", _case(_with(TRL, id="a"), _with(TRL, id="a")), {}, "id",
     r"duplicate id 'a' \(first at row 0\)"),
    ("trl-score", "trl", _case(TRL, _with(TRL, score_chosen="high")), {}, "score_chosen",
     "non-numeric score 'high'"),
    ("generic-missing", "generic", _case(TRL, _with(TRL, prompt=KeyError)), {}, "prompt",
     "missing field"),
    ("non-utf8", "trl", _case(TRL, b'{"prompt": "caf\xe9", "chosen": "c", "rejected": "r"}'), {},
     "prompt", "not UTF-8"),
    ("broken-json", "pku_saferlhf", _case(PKU, b'{"prompt": "p", '), {}, "<line>",
     "not valid JSON"),
]


@pytest.mark.parametrize("fmt,lines,options,field,message",
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_bad_row_fails_with_location_or_is_quarantined(tmp_path, fmt, lines, options, field,
                                                       message):
    p = tmp_path / "in.jsonl"
    p.write_bytes(b"\n".join(lines) + b"\n")
    with pytest.raises(DataError, match=f"^{p}: row 1, field '{field}': {message}") as e:
        load_source(str(p), fmt, **options)
    assert "\n" not in str(e.value)
    r = load_source(str(p), fmt, quarantine=True, **options)
    assert len(r.quarantined) == 1 and accounted(r) and r.counts["quarantined"] >= 1
    q = r.quarantined[0]
    assert (q["file"], q["row"]) == (str(p), 1) and q["raw"]
    assert q["field"].replace("[", "").replace("]", "") == field.replace("\\", "").replace(
        "[", "").replace("]", "")


def test_pairs_file_bad_rows(tmp_path):
    import pyarrow as pa

    from pdray.io import write_table

    rows = [{"id": "a", "aspect": "h", "prompt": "p", "chosen": "c", "rejected": "r"},
            {"id": "a", "aspect": "h", "prompt": "p", "chosen": "c", "rejected": "r"},
            {"id": "b", "aspect": "t", "prompt": "p", "chosen": "", "rejected": "r"},
            {"id": "c", "aspect": "x", "prompt": "p", "chosen": "c", "rejected": "r"}]
    p = str(tmp_path / "pairs.parquet")
    write_table(pa.Table.from_pylist(rows), p)
    with pytest.raises(DataError, match=r"row 1, field 'id': duplicate id 'a' \(first at row 0\) "
                                        r"\(1 more problems\)"):
        load_source(p, "pairs")
    r = load_source(p, "pairs", quarantine=True, known_aspects=["h", "t"])
    assert r.counts == {"rows_in": 4, "rows_out": 1, "quarantined": 3, "dropped": 0,
                        "pairs_out": 1}
    assert [(q["row"], q["field"]) for q in r.quarantined] == [(1, "id"), (2, "chosen"),
                                                             (3, "aspect")]
    write_table(pa.Table.from_pylist([{k: v for k, v in rows[0].items() if k != "rejected"}]), p)
    with pytest.raises(DataError, match="pairs.parquet: field 'rejected': required column is missing"):
        load_source(p, "pairs")


def test_fewer_than_two_aspects_where_pd_needs_two(tmp_path):
    p = tmp_path / "one.jsonl"
    p.write_text(json.dumps(TRL) + "\n" + json.dumps(_with(TRL, chosen="c2")) + "\n")
    assert load_source(str(p), "trl").table.num_rows == 2
    with pytest.raises(DataError, match=r"one.jsonl: field 'aspect': found 1 aspect\(s\) but at "
                                        "least 2 are needed"):
        load_source(str(p), "trl", min_aspects=2)


def test_unknown_option_and_format():
    from pdray.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown data format 'csv'"):
        load_source("x.csv", "csv")
    with pytest.raises(ConfigError, match="format 'pku_saferlhf'.*unexpected keyword"):
        load_source("x.jsonl", "pku_saferlhf", colums={})
