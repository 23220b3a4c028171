"""Before any work on a cluster: is the output folder one that every node sees?

Scoring actors on worker nodes write their shards under the run's output folder and the driver
reads them; Ray Train's workers do the same with checkpoints. A folder that is local to each
node (``/mnt/shared`` without a shared volume behind it, as in a pod with no PVC) loses that
work silently. :func:`check_shared_storage` settles it in seconds: a zero-CPU task pinned to
each alive node writes a token under the folder, the driver reads every token back, and the
tokens are removed. A node whose token the driver cannot read ends the run in one line naming
the node and the path.
"""

from __future__ import annotations

import os
import shutil
import socket
import uuid
from pathlib import Path

from pdray.errors import StorageError

CHECK_DIR = ".pdray-storage-check"


def _write_token(folder: str, token: str) -> str:
    """Write ``token`` under ``folder`` (the driver's absolute path, as the run's tasks get it)."""
    Path(folder).mkdir(parents=True, exist_ok=True)
    (Path(folder) / token).write_text(token, encoding="utf-8")
    return socket.gethostname()


def _remove(folder: str) -> None:
    shutil.rmtree(folder, ignore_errors=True)


def _seen(folder: Path, token: str) -> bool:
    """Whether the driver reads the token a node wrote."""
    f = folder / token
    return f.exists() and f.read_text(encoding="utf-8") == token


def alive_nodes() -> list[dict]:
    """The Ray cluster's alive nodes (``NodeID``, ``NodeManagerAddress``)."""
    import ray

    return [n for n in ray.nodes() if n.get("Alive")]


def check_shared_storage(path: str | Path, *, key: str = "run.output_dir",
                         timeout_s: float = 120.0) -> int:
    """Check that every alive node of the Ray cluster sees ``path``; return the nodes checked
    (0 on a single-node cluster, where there is nothing to check). Raises
    :class:`pdray.errors.StorageError` in one line otherwise."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    nodes = alive_nodes()
    if len(nodes) < 2:
        return 0
    folder = Path(os.path.expandvars(str(path))) / CHECK_DIR / uuid.uuid4().hex[:12]
    write = ray.remote(num_cpus=0, max_retries=0)(_write_token)
    remove = ray.remote(num_cpus=0, max_retries=0)(_remove)

    def pinned(fn, node):
        return fn.options(scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"],
                                                                              soft=False))

    try:
        hosts = ray.get([pinned(write, n).remote(str(folder), n["NodeID"]) for n in nodes],
                        timeout=timeout_s)
    except Exception as e:  # noqa: BLE001 - a node that cannot even write there
        raise StorageError(f"cannot write a storage-check token on every node: "
                           f"{str(e).strip().splitlines()[-1]}; {key} must be writable on every "
                           f"node", path=str(path)) from None
    try:
        missing = [(n, h) for n, h in zip(nodes, hosts) if not _seen(folder, n["NodeID"])]
    finally:
        ray.get([pinned(remove, n).remote(str(folder)) for n in nodes], timeout=timeout_s)
        _remove(str(folder))
    if missing:
        node, host = missing[0]
        raise StorageError(
            f"not shared across the cluster: node {node['NodeID'][:12]} ({host}, "
            f"{node.get('NodeManagerAddress')}) wrote a token under it that the driver cannot "
            f"read ({len(missing)} of {len(nodes)} nodes); put {key} on a volume every node "
            f"mounts (NFS, a ReadWriteMany PVC: cluster/kuberay) before any work starts",
            path=str(path))
    return len(nodes)
