"""`pdray run` keys every stage on the content it reads: a data file edited in place (same path)
is recomputed with a one-line message naming what changed, never served "cached" (issue 12)."""

import os

import pytest

from pdray.data import synthetic_pairs
from pdray.fingerprint import file_fingerprint
from pdray.io import read_table, write_table
from pdray.pipeline import run_pipeline
from pdray.pipeline.cache import describe_change
from tests.pipeline.helpers import tiny_pipeline

ASPECTS = ["helpfulness", "honesty"]


def _cfg(src, out):
    return tiny_pipeline(src, out, "select.strategies=[pd,random]")


@pytest.mark.timeout(900)
def test_edited_pairs_file_is_recomputed(ray_local, tmp_path):
    src = tmp_path / "pairs.jsonl"
    write_table(synthetic_pairs(48, aspects=ASPECTS, seed=2), src)
    cfg = _cfg(src, tmp_path / "run")
    run_pipeline(cfg, echo=lambda *_: None)

    # only the timestamp changes: the data stage reloads, the rest is reused (same content)
    st = src.stat()
    os.utime(src, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    touched: list[str] = []
    run_pipeline(cfg, echo=touched.append)
    assert any(ln.startswith("[data] inputs changed") and "mtime" in ln for ln in touched), touched
    assert not any(ln.startswith("[data] cached") for ln in touched)
    for stage in ("rm", "score", "select"):
        assert any(ln.startswith(f"[{stage}] cached") for ln in touched), (stage, touched)

    # one pair's text edited in place, same path: every stage recomputes, none says cached
    table = read_table(src)
    rows = table.to_pylist()
    rows[0]["chosen"] = rows[0]["chosen"] + " Edited in place."
    import pyarrow as pa

    write_table(pa.Table.from_pylist(rows, schema=table.schema), src)
    edited: list[str] = []
    res = run_pipeline(cfg, echo=edited.append)
    assert not any("cached" in ln for ln in edited), edited
    line = next(ln for ln in edited if ln.startswith("[data] inputs changed"))
    assert f"source {src}" in line and "content" in line
    assert any(ln.startswith("[rm] inputs changed") and "data: content" in ln for ln in edited)
    pairs = read_table(res.stages["data"]["pairs"])
    assert "Edited in place." in pairs["chosen"][0].as_py()


def test_fingerprint_rule_and_change_message(tmp_path):
    f = tmp_path / "x.bin"
    f.write_bytes(b"a" * 1000)
    a = file_fingerprint(f)
    f.write_bytes(b"a" * 999 + b"b")
    b = file_fingerprint(f)
    assert a["size"] == b["size"] and a["hash"] != b["hash"]
    assert file_fingerprint(tmp_path / "nope") is None
    msg = describe_change({"cfg": {"limit": 1}, "source": dict(a, file="x.bin")},
                          {"cfg": {"limit": 2}, "source": dict(b, file="x.bin")})
    assert "source x.bin: content" in msg and "cfg.limit 1 -> 2" in msg
