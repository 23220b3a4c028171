"""The streaming runner's driver side without Ray: input staging, content hash, plan checks,
progress lines."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pdray.data import synthetic_pairs
from pdray.errors import DataError
from pdray.scoring import shards as S
from pdray.scoring.runner import actor_cpus, format_progress, shard_progress

COLS = ["id", "aspect", "prompt", "chosen", "rejected"]


@pytest.fixture
def pairs():
    return synthetic_pairs(50, aspects=["a", "b"], seed=1).select(COLS)


def test_stage_input_streams_a_file_into_one_row_group_per_shard(pairs, tmp_path):
    src = tmp_path / "pairs.parquet"
    pq.write_table(pairs, src, row_group_size=7)  # source layout unrelated to the shards
    out = tmp_path / "o"
    out.mkdir()
    st = S.stage_input(str(src), out, shard_rows=20)
    assert st.num_rows == 50 and st.src == str(src)
    assert [e["rows"] for e in st.plan] == [20, 20, 10]
    f = pq.ParquetFile(st.path)
    assert f.num_row_groups == 3
    assert f.read_row_group(1)["id"].to_pylist() == pairs["id"].to_pylist()[20:40]
    # same content from a table: same hash and plan; the hash ignores shard_rows
    st_t = S.stage_input(pairs, out, shard_rows=20)
    assert st_t.content_hash == st.content_hash and st_t.plan == st.plan
    assert S.stage_input(pairs, out, shard_rows=13).content_hash == st.content_hash
    # one edited character changes it
    rows = pairs.to_pylist()
    rows[33]["rejected"] += "!"
    edited = pa.Table.from_pylist(rows, schema=pairs.schema)
    assert S.stage_input(edited, out, shard_rows=20).content_hash != st.content_hash
    assert not list(out.glob(".staging-*"))


def test_stage_input_streams_jsonl_with_the_parquet_hash(pairs, tmp_path, monkeypatch):
    """A JSONL input is read line by line (never whole: ``read_table`` and ``read_bytes`` are
    not called), gives the same content hash and plan as the same pairs in Parquet across
    several ``HASH_ROWS`` batches, and a bad line is named by file and row."""
    import pdray.io as io_mod

    big = synthetic_pairs(23, aspects=["a", "b"], seed=2).select(COLS)
    monkeypatch.setattr(S, "HASH_ROWS", 5)   # several streamed batches, a partial last one
    src = tmp_path / "pairs.jsonl"
    src.write_text("\n".join(json.dumps(r) for r in big.to_pylist()) + "\n\n")
    out = tmp_path / "o"
    out.mkdir()
    whole = S.stage_input(big, out, shard_rows=10)

    def no_whole_read(*a, **k):
        raise AssertionError("the JSONL input was read whole")

    monkeypatch.setattr(S, "read_table", no_whole_read)
    monkeypatch.setattr(io_mod, "read_bytes", no_whole_read)
    st = S.stage_input(str(src), out, shard_rows=10)
    assert st.num_rows == 23 and st.content_hash == whole.content_hash and st.plan == whole.plan
    assert pq.read_table(st.path).equals(pq.read_table(whole.path))
    lines = src.read_text().splitlines()
    lines[12] = '{"id": "x", "prompt": '
    src.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"pairs\.jsonl: row 12: not valid JSON"):
        S.stage_input(str(src), out, shard_rows=10)
    lines[12] = json.dumps({**big.to_pylist()[12], "chosen": 7})
    src.write_text("\n".join(lines))
    with pytest.raises(DataError, match=r"pairs\.jsonl: row 12, field 'chosen'"):
        S.stage_input(str(src), out, shard_rows=10)
    assert not list(out.glob(".staging-*"))


def test_stage_input_names_the_missing_column(pairs, tmp_path):
    src = tmp_path / "p.parquet"
    pq.write_table(pairs.drop_columns(["rejected"]), src)
    with pytest.raises(DataError, match="rejected") as e:
        S.stage_input(str(src), tmp_path, shard_rows=10)
    assert "p.parquet" in str(e.value)
    with pytest.raises(DataError, match="prompt"):
        S.stage_input(pairs.drop_columns(["prompt"]), tmp_path, shard_rows=10)


def test_validate_shard_checks_ids_against_the_plan(pairs, tmp_path):
    out = tmp_path / "o"
    S.prepare_output(out)
    st = S.stage_input(pairs, out, shard_rows=25)
    e = st.plan[0]
    part = pairs.slice(0, 25)
    scored = part.slice(0, 24).select(["id", "aspect"]).append_column(
        "gap_x", pa.array(np.zeros(24)))
    failed = pa.table({"id": part["id"][24:], "aspect": part["aspect"][24:],
                       "error": ["boom"]})
    S.commit(scored, out / "shards" / f"{e['name']}.parquet")
    assert S.validate_shard(out, e, ["id", "gap_x"]) == "its failures file is missing"
    S.commit(failed, out / "failures" / f"{e['name']}.parquet")
    assert S.validate_shard(out, e, ["id", "gap_x"]) is None
    assert S.validate_shard(out, e, ["id", "gap_y"]) == "missing column(s) gap_y"
    other = dict(e, ids=S.ids_digest(pairs["id"].to_pylist()[1:26]))
    assert S.validate_shard(out, other, ["id"]) == "its ids differ from the plan's"
    assert S.validate_shard(out, dict(e, rows=26), ["id"]) == "25 rows where the plan has 26"


def test_what_changed_names_each_input():
    old = {"pairs": "h1", "rm": {"a": "1", "b": "2"}, "scoring": {"dtype": "auto"}}
    new = {"pairs": "h2", "rm": {"a": "1", "b": "3"}, "scoring": {"dtype": "float32"}}
    assert S.what_changed(old, new) == ("pairs content; reward-model set (b); "
                                        "scoring settings (dtype auto -> float32)")
    assert S.what_changed(old, old) == "inputs"


def test_progress_line():
    assert format_progress("score", 250, 1000, 50.0) == \
        "[score] 250/1000 rows (25%), 5.0 rows/s, ETA 150s"
    assert format_progress("score", 0, 10, 3.0).endswith("0.0 rows/s, ETA ?")


def test_shard_progress_turns_any_unit_into_the_shards_rows():
    class Counter:              # the Progress actor's handle: add.remote(n)
        def __init__(self):
            self.calls = []
            self.add = self

        def remote(self, n):
            self.calls.append(n)

    c = Counter()
    report = shard_progress(c, 10)
    report(1, 3)                # a third of the model passes: 3 rows
    report(1, 3)                # nothing new
    report(50, 60)              # 8 rows
    report(7, 3)                # over-reporting is capped at the shard's rows
    report(1, 1)                # the top-up when the call returns: nothing left
    assert c.calls == [3, 5, 2] and sum(c.calls) == 10
    report = shard_progress(c, 4)
    report(1, 1)                # a scorer that never reported: the whole shard at the end
    assert c.calls[-1] == 4
    shard_progress(None, 5)(1, 2)   # no actor (no progress wanted): nothing to do


def test_batch_tokens_default_follows_the_device():
    from pdray.scoring import ScoreConfig

    assert ScoreConfig().resolved_batch_tokens(gpu=False) == 2048
    assert ScoreConfig().resolved_batch_tokens(gpu=True) == 16384
    assert ScoreConfig(batch_tokens=512).resolved_batch_tokens(gpu=True) == 512


def test_actor_cpus_share_the_cluster_unless_set(monkeypatch):
    """Reward-gap and log-prob scoring alike: one actor on a 2-CPU Ray gets both cores (and
    so two torch threads); a set value is kept; never less than one CPU."""
    import ray

    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 2.0})
    assert actor_cpus(None, 1) == 2.0
    assert actor_cpus(None, 2) == 1.0
    assert actor_cpus(None, 3) == 1.0
    assert actor_cpus(0.5, 1) == 0.5
    monkeypatch.setattr(ray, "cluster_resources", lambda: {"CPU": 7.0})
    assert actor_cpus(None, 2) == 3.0
