"""Storage in the cluster manifests: every path a job config writes (``run.output_dir``, any
``storage_path``) is a URI or lies on a ReadWriteMany volume that the head and every worker
group mount, in each KubeRay manifest, and on the NFS share of the ``ray up`` config."""

from __future__ import annotations

from pathlib import Path, PurePosixPath

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
KUBERAY = REPO / "cluster" / "kuberay"
JOB_CONFIGS = sorted((REPO / "jobs" / "configs").glob("*.yaml"))


def _load(p: Path) -> dict:
    doc = yaml.safe_load(p.read_text())
    assert isinstance(doc, dict), p
    return doc


def rwx_claims() -> dict[str, dict]:
    """The PersistentVolumeClaims under cluster/kuberay, by name."""
    claims = {}
    for p in sorted(KUBERAY.glob("*.yaml")):
        for doc in yaml.safe_load_all(p.read_text()):
            if isinstance(doc, dict) and doc.get("kind") == "PersistentVolumeClaim":
                claims[doc["metadata"]["name"]] = doc
    return claims


def shared_mounts(pod_spec: dict, claims: dict[str, dict]) -> set[str]:
    """Mount paths of the Ray container (the first) backed by a ReadWriteMany claim or NFS."""
    shared_volumes = set()
    for v in pod_spec.get("volumes", []):
        pvc = v.get("persistentVolumeClaim")
        if pvc is not None:
            claim = claims.get(pvc["claimName"])
            if claim is not None and "ReadWriteMany" in claim["spec"]["accessModes"]:
                shared_volumes.add(v["name"])
        elif "nfs" in v:
            shared_volumes.add(v["name"])
    container = pod_spec["containers"][0]
    return {m["mountPath"] for m in container.get("volumeMounts", [])
            if m["name"] in shared_volumes}


def cluster_shared_paths(cluster_spec: dict, claims: dict[str, dict]) -> set[str]:
    """Paths mounted from shared storage on the head AND on every worker group."""
    groups = [cluster_spec["headGroupSpec"], *cluster_spec["workerGroupSpecs"]]
    per_group = [shared_mounts(g["template"]["spec"], claims) for g in groups]
    return set.intersection(*per_group)


def ray_up_shared_paths(doc: dict) -> set[str]:
    """Paths of the ``ray up`` config mounted from NFS on each host (initialization_commands)
    and bound into the Ray container (``docker.run_options`` ``-v HOST:CONTAINER``)."""
    mounted = {c.split()[-1] for c in doc.get("initialization_commands", [])
               if " mount -t nfs" in c}
    bound = set()
    for opt in doc.get("docker", {}).get("run_options", []):
        parts = opt.split()
        if parts[0] in ("-v", "--volume") and len(parts) == 2:
            host, container = parts[1].split(":")[:2]
            if host in mounted:
                bound.add(container)
    return bound


def kuberay_specs() -> dict[str, dict]:
    rc = _load(KUBERAY / "raycluster.yaml")
    rj = _load(KUBERAY / "rayjob.yaml")
    return {"raycluster.yaml": rc["spec"], "rayjob.yaml": rj["spec"]["rayClusterSpec"]}


def storage_paths(doc: dict, prefix: str = "") -> dict[str, str]:
    """``run.output_dir`` and every ``storage_path`` (at any depth) of a job config."""
    found = {}
    for key, value in doc.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            found.update(storage_paths(value, f"{name}."))
        elif key == "storage_path" and value is not None or name == "run.output_dir":
            found[name] = str(value)
    return found


def under(path: str, mounts: set[str]) -> bool:
    p = PurePosixPath(path)
    return any(p == PurePosixPath(m) or PurePosixPath(m) in p.parents for m in mounts)


def is_uri(path: str) -> bool:
    return "://" in path and path.split("://", 1)[0].isalnum()


def test_shared_pvc_is_read_write_many():
    claims = rwx_claims()
    assert set(claims) == {"pdray-shared"}
    spec = claims["pdray-shared"]["spec"]
    assert spec["accessModes"] == ["ReadWriteMany"]
    assert spec["storageClassName"] and spec["resources"]["requests"]["storage"]


@pytest.mark.parametrize("manifest", ["raycluster.yaml", "rayjob.yaml"])
def test_kuberay_head_and_every_worker_group_mount_the_shared_claim(manifest):
    spec = kuberay_specs()[manifest]
    claims = rwx_claims()
    for group in [spec["headGroupSpec"], *spec["workerGroupSpecs"]]:
        pod = group["template"]["spec"]
        claim_refs = {v["persistentVolumeClaim"]["claimName"] for v in pod.get("volumes", [])
                      if "persistentVolumeClaim" in v}
        assert claim_refs == {"pdray-shared"}, group.get("groupName", "head")
        assert shared_mounts(pod, claims) == {"/mnt/shared"}, group.get("groupName", "head")
    assert cluster_shared_paths(spec, claims) == {"/mnt/shared"}


def test_ray_up_config_mounts_the_share_on_every_node():
    doc = _load(REPO / "cluster" / "ray-cluster.yaml")
    assert ray_up_shared_paths(doc) == {"/mnt/shared"}
    # initialization_commands run on every node (head and workers); none overrides them per type
    assert all("initialization_commands" not in t for t in doc["available_node_types"].values())


@pytest.mark.parametrize("path", JOB_CONFIGS, ids=lambda p: p.name)
def test_job_config_storage_is_shared_or_a_uri(path, monkeypatch):
    """An absolute path must be on a volume every node of every manifest mounts; a URI is
    shared by construction (a storage_path only: run.output_dir takes no URI yet); a relative ``run.output_dir`` (the CPU configs, run locally) is
    refused in one line inside a Ray Job, so it cannot silently write node-local outputs."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    from pdray.errors import ConfigError
    from pdray.raysetup import job_output_dir

    claims = rwx_claims()
    mounts = {name: cluster_shared_paths(spec, claims) for name, spec in kuberay_specs().items()}
    mounts["ray-cluster.yaml"] = ray_up_shared_paths(_load(REPO / "cluster" / "ray-cluster.yaml"))
    paths = storage_paths(_load(path))
    assert "run.output_dir" in paths
    for key, value in paths.items():
        if is_uri(value):
            # Ray Train's storage_path takes s3:// / gs://; run.output_dir does not (yet): pdray
            # writes it with local file operations (docs/cluster.md, Storage)
            assert key != "run.output_dir", f"{path.name}: run.output_dir={value} is a URI"
            continue
        if not PurePosixPath(value).is_absolute():
            assert key == "run.output_dir", f"{key}={value!r}: relative"
            monkeypatch.setenv(RAY_JOB_CONFIG_JSON_ENV_VAR, "{}")
            with pytest.raises(ConfigError, match="is relative, and this is a Ray Job"):
                job_output_dir(value, key)
            continue
        for manifest, shared in mounts.items():
            assert under(value, shared), (
                f"{path.name}: {key}={value} is not under a shared mount of {manifest} "
                f"(shared on head and every worker group: {sorted(shared)})")


def test_the_check_fails_without_the_shared_volume():
    """The check bites: a worker group without the claim, a ReadWriteOnce claim, a path outside
    the mount."""
    claims = rwx_claims()
    spec = kuberay_specs()["raycluster.yaml"]
    worker = spec["workerGroupSpecs"][0]["template"]["spec"]
    worker["containers"][0]["volumeMounts"] = [
        m for m in worker["containers"][0]["volumeMounts"] if m["name"] != "shared"]
    assert cluster_shared_paths(spec, claims) == set()

    rwo = {"pdray-shared": {"spec": {"accessModes": ["ReadWriteOnce"]}}}
    assert cluster_shared_paths(kuberay_specs()["rayjob.yaml"], rwo) == set()

    assert not under("/mnt/sharedx/run", {"/mnt/shared"})
    assert not under("/tmp/run", {"/mnt/shared"})
    assert under("/mnt/shared/pdray_runs/x", {"/mnt/shared"})
    assert is_uri("s3://bucket/x") and not is_uri("/mnt/shared/a://b")
