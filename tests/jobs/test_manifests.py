"""Cluster manifests and job configs: parse every YAML, check the fields each tool requires."""

import importlib.util
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CLUSTER_YAMLS = sorted((REPO / "cluster").rglob("*.yaml"))
JOB_CONFIGS = sorted((REPO / "jobs" / "configs").glob("*.yaml"))


def _load(p: Path) -> dict:
    doc = yaml.safe_load(p.read_text())
    assert isinstance(doc, dict), p
    return doc


def test_all_present():
    names = {p.relative_to(REPO).as_posix() for p in CLUSTER_YAMLS + JOB_CONFIGS}
    assert {"cluster/ray-cluster.yaml", "cluster/kuberay/raycluster.yaml",
            "cluster/kuberay/rayjob.yaml", "jobs/configs/demo.yaml",
            "jobs/configs/ultrafeedback_paper.yaml", "jobs/configs/helpsteer2.yaml",
            "jobs/configs/pku_saferlhf.yaml", "jobs/configs/helpsteer2_gpu.yaml",
            "jobs/configs/pku_saferlhf_gpu.yaml"} <= names
    assert (REPO / "jobs" / "README.md").exists() and (REPO / "docs" / "cluster.md").exists()


def test_ray_up_cluster_yaml():
    doc = _load(REPO / "cluster" / "ray-cluster.yaml")
    for key in ("cluster_name", "provider", "available_node_types", "head_node_type"):
        assert key in doc, key
    types = doc["available_node_types"]
    assert doc["head_node_type"] in types
    assert doc["provider"]["type"] in ("aws", "gcp", "azure", "kubernetes", "local")
    gpu_nodes = [n for n, t in types.items() if t.get("resources", {}).get("GPU", 0) > 0]
    assert gpu_nodes and all(types[n]["max_workers"] >= 1 for n in gpu_nodes)
    for t in types.values():
        assert "node_config" in t and "InstanceType" in t["node_config"]
    assert any("pdray[gpu" in c for c in doc["setup_commands"])
    assert doc["max_workers"] >= sum(types[n]["min_workers"] for n in gpu_nodes)


def _check_cluster_spec(spec: dict):
    head = spec["headGroupSpec"]
    assert head["template"]["spec"]["containers"][0]["image"]
    groups = spec["workerGroupSpecs"]
    assert groups
    for g in groups:
        assert g["groupName"] and g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]
        c = g["template"]["spec"]["containers"][0]
        gpus = c["resources"]["limits"]["nvidia.com/gpu"]
        assert int(gpus) >= 1
        assert c["resources"]["requests"]["nvidia.com/gpu"] == gpus


def _kuberay(doc: dict, kind: str):
    for key in ("apiVersion", "kind", "metadata", "spec"):
        assert key in doc, key
    assert doc["apiVersion"] == "ray.io/v1" and doc["kind"] == kind
    assert doc["metadata"]["name"]


def test_kuberay_raycluster():
    doc = _load(REPO / "cluster" / "kuberay" / "raycluster.yaml")
    _kuberay(doc, "RayCluster")
    _check_cluster_spec(doc["spec"])


def test_kuberay_rayjob():
    doc = _load(REPO / "cluster" / "kuberay" / "rayjob.yaml")
    _kuberay(doc, "RayJob")
    spec = doc["spec"]
    assert spec["entrypoint"] == "python jobs/pipeline.py jobs/configs/ultrafeedback_paper.yaml"
    assert (REPO / "jobs" / "configs" / "ultrafeedback_paper.yaml").exists()
    renv = yaml.safe_load(spec["runtimeEnvYAML"])
    assert renv["working_dir"]
    assert any(p.startswith(("pdray[", "pdray ")) or p == "pdray"
               for p in renv["pip"]), renv["pip"]
    _check_cluster_spec(spec["rayClusterSpec"])


@pytest.mark.parametrize("path", JOB_CONFIGS, ids=lambda p: p.name)
def test_job_configs_validate_against_the_pipeline(path):
    """Every example config is a valid pipeline config, every stage section included (each
    section is its stage's typed config, validated when the file loads)."""
    from pdray.align import DPOConfig
    from pdray.config import load_config
    from pdray.pipeline import PipelineConfig
    from pdray.rm import RMConfig
    from pdray.scoring import ScoreConfig

    doc = _load(path)
    assert {"data", "rm", "score", "select", "dpo", "run"} <= set(doc)
    cfg = load_config(PipelineConfig, path,
                      ["run.stages=[data,rm,score,lossdiff,select,dpo,eval,report]"])
    assert isinstance(cfg.rm, RMConfig) and isinstance(cfg.score, ScoreConfig)
    assert isinstance(cfg.dpo, DPOConfig)
    for key, value in doc["rm"].items():  # every key of the file reached the typed section
        assert getattr(cfg.rm, key) == value or isinstance(value, (dict, list)), key


def test_paper_recipe_hyperparameters():
    """App. B.3: RM 1 epoch lr 2e-5 warmup 0.05; DPO 1 epoch lr 5e-7 warmup 0.1; global batch
    32 for both; cosine; max length 4096; p_r 0.3; λ 0.3 (0.5 swept); γ 0.95; ZeRO-3 on GPUs."""
    doc = _load(REPO / "jobs" / "configs" / "ultrafeedback_paper.yaml")
    rm, dpo, sel = doc["rm"], doc["dpo"], doc["select"]
    assert "Llama-3.2-3B" in rm["backbone"] and "Llama-3.1-8B" in dpo["model"]
    assert (rm["epochs"], rm["lr"], rm["warmup_ratio"], rm["sample_ratio"]) == (1, 2e-5, 0.05, 0.3)
    assert rm["batch_size"] * rm["num_workers_per_aspect"] * rm.get("grad_accum", 1) == 32
    assert (dpo["epochs"], dpo["lr"], dpo["warmup_ratio"]) == (1, 5e-7, 0.1)
    assert dpo["batch_size"] * dpo["num_workers"] == 32
    assert rm["max_length"] == dpo["max_length"] == 4096
    assert rm["scheduler"] == dpo["scheduler"] == "cosine"
    assert rm["use_gpu"] and dpo["use_gpu"] and rm["deepspeed"] == dpo["deepspeed"] == "zero3"
    assert (sel["budget"], sel["gamma"]) == (0.3, 0.95)
    assert doc["tune"]["search_space"]["select.budget"] == [0.3, 0.5]
    assert not doc["run"]["output_dir"].startswith(("s3://", "gs://"))  # stage cache: a shared FS
    assert doc["eval"]["judge"] == "openai" and "api_key" not in str(doc["eval"]).replace(
        "api_key_env", "")


def test_pipeline_entrypoint_forwards_argv():
    spec = importlib.util.spec_from_file_location("pipeline_entry", REPO / "jobs" / "pipeline.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.build_argv(["jobs/configs/demo.yaml", "data.n_pairs=10"]) == [
        "run", "jobs/configs/demo.yaml", "data.n_pairs=10"]
    assert mod.build_argv(["demo", "--output", "x"]) == ["demo", "--output", "x"]
    assert mod.build_argv(["eval", "--model", "m"]) == ["eval", "--model", "m"]
    assert mod.build_argv(["--help"]) == ["--help"]
    from pdray.cli import STAGES

    assert set(STAGES) <= set(mod.SUBCOMMANDS)
    with pytest.raises(SystemExit):
        mod.build_argv([])
