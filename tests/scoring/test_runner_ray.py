"""The runner on Ray: actors commit the shards, progress lines come while they work, worker
output goes to OUTPUT/logs (not the terminal) unless verbose."""

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pdray.data import synthetic_pairs
from pdray.scoring import shards as S
from pdray.scoring.runner import run_shards

COLS = ["id", "aspect", "prompt", "chosen", "rejected"]


@pytest.mark.timeout(300)
def test_actors_commit_shards_and_progress_is_reported(ray_local, tmp_path):
    rows = synthetic_pairs(40, aspects=["a", "b"], seed=2).select(COLS).to_pylist()
    rows[7]["prompt"] = ""
    pairs = pa.Table.from_pylist(rows)
    out = tmp_path / "o"
    S.prepare_output(out)
    staged = S.stage_input(pairs, out, shard_rows=10)
    names = [e["name"] for e in staged.plan]
    lines: list[str] = []
    stats = run_shards(staged, names, out, scorer_path="tests.scoring.slow_scorer.SlowScorer",
                       scorer_args=(1.0,), num_actors=1, num_cpus=1, num_gpus=0,
                       max_restarts=0, tag="t", echo=lines.append, progress_s=0.5)
    assert (stats.scored, stats.failed) == (39, 1)
    ticks = [ln for ln in lines if ln.startswith("[t] ") and "rows/s" in ln]
    assert len(ticks) >= 3, lines          # ≥ 4 s of work, a line every 0.5 s
    done = [int(t.split()[1].split("/")[0]) for t in ticks]
    assert done == sorted(done) and 0 < done[-1] <= 40 and all("/40 rows" in t for t in ticks)
    assert len(ticks) == len(lines) - 1   # the ticks and the logs line; the caller sums up
    n_ok, n_bad, _, fails = S.finish_checks(out, names, 40, "t")
    assert (n_ok, n_bad) == (39, 1) and fails["id"].to_pylist() == [rows[7]["id"]]
    got = pq.read_table(out / "shards").sort_by("id")
    assert got["gap_len"].to_pylist() == [float(len(r["prompt"])) for r in
                                          sorted(rows, key=lambda r: r["id"]) if r["prompt"]]
    logs = list((out / "logs").glob("worker-*.log"))
    assert logs and "slow scorer: 10 rows" in logs[0].read_text()
    # the scorer runs on the thread it was built on (where it set torch's threads), not on
    # an extra UDF thread of Ray Data
    assert "slow scorer: 10 rows on MainThread, built on MainThread" in logs[0].read_text()
