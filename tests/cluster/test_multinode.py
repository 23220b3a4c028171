"""The pipeline on a real multi-node Ray cluster: a head with no CPUs and two worker nodes
(ray.cluster_utils.Cluster, in a subprocess: it cannot share the suite's local Ray), so the data
tasks, the reward-model trainers and the scoring actors all run on the worker nodes.

data → rm → score → select on tiny models must give the same scores and the same PD selection
as a single-node run of the same config, after the storage check passed on all three nodes. And
the check's failing side, for real: each node's raylet (so each of its workers) runs in its own
folder, and ``BASE/nodelocal`` is a symlink to ``/proc/self/cwd``, so ``BASE/nodelocal/out`` is
one path that is a different folder on every node, like a ``/mnt/shared`` with no shared volume
behind it; ``check_shared_storage`` (tasks write on each node, the driver reads back, nothing
patched) must stop in one line naming a worker node. (It is called directly: ``pdray run``
resolves the output folder on the driver first, which turns this symlink into the driver's
own folder.)"""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path

    import numpy as np
    import ray
    from ray.cluster_utils import Cluster

    from pdray.data import synthetic_pairs
    from pdray.errors import StorageError
    from pdray.io import read_table, write_table
    from pdray.pipeline import run_pipeline
    from pdray.selection.scores import read_scores
    from pdray.storage_check import CHECK_DIR, check_shared_storage
    from tests.pipeline.helpers import tiny_pipeline

    base = Path(sys.argv[1])
    src = base / "pairs.jsonl"
    write_table(synthetic_pairs(48, aspects=["helpfulness", "honesty"], seed=4), src)
    STORE = 100 * 1024**2

    def run(out):
        lines = []
        res = run_pipeline(tiny_pipeline(src, out, "select.strategies=[pd]"), echo=lines.append)
        scores = read_scores(res.manifests["score"].scores).to_pandas()
        sel = res.manifests["select"].selections["pd"]
        ids = sorted(read_table(f"{sel}/selected.parquet")["id"].to_pylist())
        return scores.sort_values("id").reset_index(drop=True), ids, lines

    result = {}
    # 1. one node
    ray.init(num_cpus=2, object_store_memory=STORE, include_dashboard=False,
             log_to_driver=False)
    single_scores, single_ids, single_lines = run(base / "single")
    ray.shutdown()

    # 2. a head without CPUs and two worker nodes; each node's raylet (and so each of its
    #    workers) keeps the working directory it was started in
    for tag in ("head", "w1", "w2"):
        (base / tag).mkdir()
    (base / "nodelocal").symlink_to("/proc/self/cwd")
    def agent_ports():
        # every agent port chosen here: the default dashboard-agent port (52365) may be held
        # by another Ray on the machine, and the raylet dies waiting for an agent that cannot
        # bind it
        import socket
        ports = {}
        for key in ("dashboard_agent_listen_port", "metrics_agent_port",
                    "runtime_env_agent_port", "metrics_export_port"):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                ports[key] = sock.getsockname()[1]
        return ports

    os.chdir(base / "head")
    c = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 0, "object_store_memory": STORE, "include_dashboard": False,
        **agent_ports()})
    workers = {}
    for tag in ("w1", "w2"):
        os.chdir(base / tag)
        workers[tag] = c.add_node(num_cpus=2, object_store_memory=STORE, **agent_ports())
    os.chdir(base / "head")                         # the driver's own view
    c.wait_for_nodes()
    ray.init(address=c.address, log_to_driver=False)
    try:
        assert len([n for n in ray.nodes() if n["Alive"]]) == 3
        multi_scores, multi_ids, multi_lines = run(base / "multi")
        result["shared_line"] = [ln for ln in multi_lines if "shared by all" in ln]
        result["single_shared_line"] = [ln for ln in single_lines if "shared by all" in ln]
        result["ids_single"], result["ids_multi"] = single_ids, multi_ids
        result["score_columns"] = list(multi_scores.columns)
        assert list(single_scores["id"]) == list(multi_scores["id"])
        num = [c for c in single_scores.columns if single_scores[c].dtype.kind == "f"]
        result["float_columns"] = num
        a = single_scores[num].to_numpy(dtype=float)
        b = multi_scores[num].to_numpy(dtype=float)
        result["same_nans"] = bool((np.isnan(a) == np.isnan(b)).all())
        result["finite_values"] = int(np.isfinite(a).sum())
        result["max_abs_diff"] = float(np.abs(a - b)[np.isfinite(a)].max())
        result["n_scores"] = len(multi_scores)

        # 3. one path, a different folder on each node: the real check fails on the workers
        local = base / "nodelocal" / "out"
        try:
            check_shared_storage(local)
            result["error"] = None
        except StorageError as e:
            result["error"] = str(e)
        result["worker_node_ids"] = [n.node_id for n in workers.values()]
        result["written"] = sorted(tag for tag in ("head", "w1", "w2")
                                   if (base / tag / "out" / CHECK_DIR).is_dir())
        result["tokens_left"] = [str(p) for tag in ("head", "w1", "w2")
                                 for p in (base / tag / "out" / CHECK_DIR).glob("*/*")]
    finally:
        ray.shutdown()
        c.shutdown()
    Path(sys.argv[2]).write_text(json.dumps(result))
""")


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_pipeline_on_a_head_and_two_worker_nodes_matches_one_node(tmp_path):
    out = tmp_path / "result.json"
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", PYTHONPATH=str(REPO))
    env.pop("RAY_ADDRESS", None)
    r = subprocess.run([sys.executable, "-c", SCRIPT, str(tmp_path), str(out)], cwd=REPO,
                       env=env, capture_output=True, text=True, check=False, timeout=580)
    assert r.returncode == 0 and out.exists(), r.stdout[-3000:] + r.stderr[-5000:]
    res = json.loads(out.read_text())

    # the storage check ran on the three nodes, and on one node there was nothing to check
    assert len(res["shared_line"]) == 1 and "shared by all 3 nodes" in res["shared_line"][0]
    assert res["single_shared_line"] == []
    # the same scores (every pair, every float column) and the same PD selection
    assert res["n_scores"] > 40 and "id" in res["score_columns"] and res["float_columns"]
    assert res["same_nans"] and res["finite_values"] >= res["n_scores"]
    assert res["max_abs_diff"] <= 1e-5, res["max_abs_diff"]
    assert res["ids_multi"] == res["ids_single"] and len(res["ids_single"]) > 0

    # one path, a different folder on each node: one line naming a worker node, 2 of 3 nodes
    err = res["error"]
    assert err is not None and "\n" not in err, err
    assert err.startswith(f"{tmp_path / 'nodelocal' / 'out'}: not shared across the cluster"), err
    assert "(2 of 3 nodes)" in err and "run.output_dir" in err, err
    assert any(node_id[:12] in err for node_id in res["worker_node_ids"]), err
    assert res["written"] == ["head", "w1", "w2"]   # every node wrote, each in its own folder
    assert res["tokens_left"] == []                 # and every node removed its token
