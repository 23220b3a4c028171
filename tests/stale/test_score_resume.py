"""`pdray score` resume trusts a committed shard only if it matches the current plan, inputs and
reward-model set, and validates (issue 12, stale or corrupted results)."""

import json

import numpy as np
import pyarrow.compute as pc
import pytest

from pdray.data import synthetic_pairs
from pdray.models.tiny import build_tiny_reward_model
from pdray.rm.model_set import RewardModelSet
from pdray.scoring import ScoreConfig, score_pairs

ASPECTS = ["helpfulness", "honesty"]
COLS = ["id", "aspect", "prompt", "chosen", "rejected"]


def _rm_set(root, seed):
    for i, a in enumerate(ASPECTS):
        build_tiny_reward_model(root / a, seed=seed + i)
    RewardModelSet("separate", ASPECTS, {a: a for a in ASPECTS}, rho=0.001,
                   max_length=128, length_debias="penalty").save(root)
    return root


@pytest.fixture(scope="module")
def rms(tmp_path_factory):
    root = tmp_path_factory.mktemp("stale_rm")
    return {"a": _rm_set(root / "a", 0), "b": _rm_set(root / "b", 10)}


@pytest.fixture(scope="module")
def pairs():
    return synthetic_pairs(40, aspects=ASPECTS, seed=3).select(COLS)


def _gaps(run):
    t = run.table().sort_by("id")
    return t, {c: t[c].to_numpy() for c in t.column_names if c.startswith("gap_")}


def _assert_clean(run, n):
    t = run.table()
    m = run.manifest
    assert t.num_rows == n and pc.count_distinct(t["id"]).as_py() == n
    assert (m["rows_in"], m["rows_scored"], m["rows_failed"]) == (n, n, 0)
    files = sorted(p.stem for p in (run.output_dir / "shards").iterdir())
    assert files == m["shards"]  # no leftover or staging shard files


@pytest.mark.timeout(400)
def test_other_rm_set_or_edited_pairs_rescore(ray_local, rms, pairs, tmp_path):
    out = tmp_path / "s"
    cfg = ScoreConfig(shard_rows=20)
    quiet = lambda *_: None
    first = score_pairs(pairs, str(rms["a"]), str(out), cfg, echo=quiet).table().sort_by("id")
    # another reward-model set into the finished folder: everything is rescored
    logs: list[str] = []
    other = score_pairs(pairs, str(rms["b"]), str(out), cfg, echo=logs.append)
    assert any("reward-model set" in ln and "rescoring all 2 shards" in ln for ln in logs), logs
    assert not any("already scored" in ln and "2 already" in ln for ln in logs)
    assert other.manifest["run"]["newly_scored"] == 40
    assert other.manifest["rm_dir"] == str(rms["b"].resolve())
    clean_b = score_pairs(pairs, str(rms["b"]), str(tmp_path / "clean_b"), cfg, echo=quiet)
    assert other.table().sort_by("id").equals(clean_b.table().sort_by("id"))
    assert not other.table().sort_by("id")["gap_honesty"].equals(first["gap_honesty"])
    _assert_clean(other, 40)
    # pairs edited (same ids): rescored too, and the manifest records the new pairs hash
    rows = pairs.to_pylist()
    rows[5]["chosen"] = rows[5]["chosen"] + " (edited)"
    import pyarrow as pa

    edited = pa.Table.from_pylist(rows, schema=pairs.schema)
    logs = []
    again = score_pairs(edited, str(rms["b"]), str(out), cfg, echo=logs.append)
    assert any("pairs content" in ln and "rescoring" in ln for ln in logs), logs
    assert again.manifest["run"]["newly_scored"] == 40
    assert again.manifest["pairs_hash"] != other.manifest["pairs_hash"]
    plan = json.loads((out / "plan.json").read_text())
    assert plan["inputs"]["pairs"] == again.manifest["pairs_hash"]


@pytest.mark.timeout(400)
def test_changed_shard_rows_gives_correct_table(ray_local, rms, pairs, tmp_path):
    out = tmp_path / "s"
    first = score_pairs(pairs, str(rms["a"]), str(out), ScoreConfig(shard_rows=10),
                        echo=lambda *_: None)
    t0, g0 = _gaps(first)  # read now: the folder is rescored below
    assert len(list((out / "shards").iterdir())) == 4
    logs: list[str] = []
    run = score_pairs(pairs, str(rms["a"]), str(out), ScoreConfig(shard_rows=15),
                      echo=logs.append)
    assert any("stale file" in ln for ln in logs), logs
    _assert_clean(run, 40)
    assert len(run.manifest["shards"]) == 3
    assert len(list((out / "failures").iterdir())) == 3
    t1, g1 = _gaps(run)
    assert t0["id"].equals(t1["id"]) and set(g0) == set(g1)
    for c in g0:
        np.testing.assert_allclose(g1[c], g0[c], rtol=1e-4, atol=1e-5)


@pytest.mark.timeout(400)
def test_truncated_shard_is_rescored(ray_local, rms, pairs, tmp_path):
    out = tmp_path / "s"
    cfg = ScoreConfig(shard_rows=20)
    clean = score_pairs(pairs, str(rms["a"]), str(out), cfg, echo=lambda *_: None)
    want = clean.table().sort_by("id")
    victim = sorted((out / "shards").glob("part-*.parquet"))[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])
    other = min((out / "shards").glob("part-*.parquet"))
    keep = other.stat().st_mtime_ns
    logs: list[str] = []
    run = score_pairs(pairs, str(rms["a"]), str(out), cfg, echo=logs.append)
    assert any(victim.stem in ln and "not valid" in ln for ln in logs), logs
    assert any("1 already scored, 1 to score" in ln for ln in logs), logs
    assert run.manifest["run"]["newly_scored"] == 20
    assert other.stat().st_mtime_ns == keep  # the good shard was not rescored
    assert run.table().sort_by("id").equals(want)
    _assert_clean(run, 40)
