"""Valid but unusual text is kept exactly: every reader, writer and data verb round-trips it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from pdray.cli import app
from pdray.data.loaders import read_pairs
from pdray.io import write_pairs
from pdray.schema import pairs_from_rows

runner = CliRunner()

TEXTS = {
    "emoji": "👍🏽 family 👨‍👩‍👧 flag 🇫🇷 ",
    "rtl": "مرحبا بالعالم — שלום עולם (mixed ltr)",
    "combining": "e\u0301 a\u0308 Z\u0336\u0317a\u0335\u0353l\u0334\u0316g\u0337o",
    "line-separators": "a\u2028b\u2029c\u0085d\x1ce\x1df\x1eg",
    "nul": "before\x00after",
    "crlf": "line 1\r\nline 2\rline 3\n",
    "bom-inside": "\ufeffstarts with a byte-order mark",
    "big": "x" * (2 * 1024 * 1024) + "✓",
}


def _rows() -> list[dict]:
    rows = []
    for i, (name, text) in enumerate(TEXTS.items()):
        rows.append({"id": f"{name}-{text[:3]}", "aspect": ("helpfulness", "有用性")[i % 2],
                     "prompt": text, "chosen": text + " (chosen)", "rejected": text[::-1],
                     "chosen_ratings": {"有用性": 1.0}, "source": text[:20]})
    return rows


def _same(table, rows):
    got = table.select(["id", "aspect", "prompt", "chosen", "rejected", "source"]).to_pylist()
    want = [{k: r[k] for k in ("id", "aspect", "prompt", "chosen", "rejected", "source")}
            for r in rows]
    assert got == want


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl", ".jsonl.gz"])
def test_writer_reader_round_trip(tmp_path, suffix):
    rows = _rows()
    p = tmp_path / f"u{suffix}"
    write_pairs(pairs_from_rows(rows), p)
    _same(read_pairs(p), rows)


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_data_verbs_keep_text(tmp_path, suffix):
    rows = _rows()
    src = tmp_path / "in.jsonl"
    src.write_bytes(b"".join(json.dumps(r, ensure_ascii=False).encode() + b"\n" for r in rows))
    out = tmp_path / f"out{suffix}"
    r = runner.invoke(app, ["data", "build", str(src), "-o", str(out)])
    assert r.exit_code == 0, r.output
    _same(read_pairs(out), rows)
    r = runner.invoke(app, ["data", "validate", str(out), "--min-aspects", "2"])
    assert r.exit_code == 0 and f"OK ({len(rows)} pairs)" in r.output, r.output
    r = runner.invoke(app, ["data", "inspect", str(out)])
    assert r.exit_code == 0 and "有用性: 4" in r.output, r.output


def test_crlf_lines_bom_and_escaped_surrogate_pairs(tmp_path):
    p = tmp_path / "win.jsonl"
    lines = [json.dumps({"id": "a", "aspect": "h", "prompt": "p\U0001F600", "chosen": "c",
                         "rejected": "r"}),  # ensure_ascii: the emoji as \ud83d\ude00
             json.dumps({"id": "b", "aspect": "h", "prompt": "p", "chosen": "c\r\n",
                         "rejected": "r"}, ensure_ascii=False)]
    assert "\\ud83d\\ude00" in lines[0]
    p.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(lines).encode() + b"\r\n")
    t = read_pairs(p)
    assert t["prompt"].to_pylist() == ["p😀", "p"] and t["chosen"][1].as_py() == "c\r\n"
