"""The shared-storage check on a real multi-node Ray cluster (head + a worker node, in a
subprocess: ray.cluster_utils.Cluster cannot share the suite's local Ray)."""

import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import tempfile
    from pathlib import Path

    import ray
    from ray.cluster_utils import Cluster

    import pdray.storage_check as sc
    from pdray.errors import StorageError

    base = Path(tempfile.mkdtemp())
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    c.add_node(num_cpus=1)
    ray.init(address=c.address, log_to_driver=False)
    try:
        assert sc.check_shared_storage(base / "out") == 2
        assert not any((base / "out" / sc.CHECK_DIR).iterdir())       # tokens removed
        head = ray.get_runtime_context().get_node_id()
        sc._seen = lambda folder, token: token == head   # the driver misses the worker's token
        try:
            sc.check_shared_storage(base / "local")
            raise SystemExit("no error")
        except StorageError as e:
            msg = str(e)
            assert "\\n" not in msg and msg.startswith(str(base / "local") + ": not shared"), msg
            assert "1 of 2 nodes" in msg and "run.output_dir" in msg, msg
            assert not any((base / "local" / sc.CHECK_DIR).iterdir())  # cleaned up anyway
        print("OK")
    finally:
        ray.shutdown()
        c.shutdown()
""")


@pytest.mark.timeout(300)
def test_two_node_cluster_checks_every_node_and_fails_in_one_line():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, check=False,
                       timeout=280)
    assert r.returncode == 0 and r.stdout.strip().endswith("OK"), r.stdout + r.stderr[-3000:]


def test_a_single_node_has_nothing_to_check(ray_local, tmp_path):
    from pdray.storage_check import check_shared_storage

    assert check_shared_storage(tmp_path / "out") == 0 and not (tmp_path / "out").exists()
