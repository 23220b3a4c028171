"""The shared Ray Train launcher (pdray.ray_train) of the reward-model and DPO trainers."""

from pathlib import Path

import pytest

import pdray.ray_train as RT
from pdray.errors import ConfigError, PdrayError
from pdray.ray_train import (
    fit_on_ray,
    one_line,
    root_cause,
    storage_path,
    unplaceable,
    worker_resources,
)


def test_storage_path_keeps_uris_and_makes_local_paths_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert storage_path("s3://bucket/runs", Path("unused")) == "s3://bucket/runs"
    assert storage_path(None, Path("out/_ray")) == str(tmp_path / "out" / "_ray")
    assert storage_path("ckpt", Path("out/_ray")) == str(tmp_path / "ckpt")


def test_worker_resources_and_the_one_line_root_cause():
    assert worker_resources(0.5, False) == {"CPU": 0.5}
    assert worker_resources(2, True) == {"CPU": 2, "GPU": 1}

    class WorkerGroupError(Exception):          # the shape of Ray Train's wrapper
        def __init__(self, failures):
            super().__init__("Training failed due to worker errors:\n[Rank 0 Error Snippet]")
            self.worker_failures = failures

    inner = ValueError("bad row 3\nTraceback (most recent call last): ...")
    wrapped = WorkerGroupError({1: KeyError("other rank"), 0: inner})
    assert root_cause(wrapped) is inner
    assert one_line(wrapped) == "ValueError: bad row 3"
    try:
        try:
            raise OSError("disk full")
        except OSError as e:
            raise RuntimeError("checkpoint failed") from e
    except RuntimeError as chained:
        assert one_line(chained) == "OSError: disk full"


def test_workers_that_cannot_be_placed_on_a_local_ray_are_refused_up_front(monkeypatch):
    """Ray Train would wait forever for a worker that no node can hold: on a local Ray (which
    never grows) fit_on_ray refuses it before any trainer exists; on a cluster it does not."""
    assert unplaceable(1, {"CPU": 2}, {"CPU": 2.0}) is None
    assert unplaceable(2, {"CPU": 1}, {"CPU": 2.0}) is None
    assert unplaceable(3, {"CPU": 1}, {"CPU": 2.0}) == \
        "3 worker(s) × 1 CPU need 3 CPU, but this local Ray has 2"
    assert unplaceable(1, {"CPU": 0.5, "GPU": 1}, {"CPU": 2.0}) == \
        "1 worker(s) × 1 GPU need 1 GPU, but this local Ray has 0"

    monkeypatch.setattr(RT, "_cluster_resources", lambda: {"CPU": 1.0})
    monkeypatch.setattr(RT, "started_locally", lambda: True)
    with pytest.raises(ConfigError, match=r"^\[rm:helpfulness\] 1 worker\(s\) × 2 CPU need 2 "
                       r"CPU, but this local Ray has 1: lower its cpus_per_worker"):
        fit_on_ray(lambda c: None, {}, label="rm:helpfulness", name="x", storage="/nonexistent",
                   num_workers=1, cpus_per_worker=2, use_gpu=False, max_failures=0)
    monkeypatch.setattr(RT, "started_locally", lambda: False)   # a cluster
    RT.check_fits("rm:helpfulness", 1, 2, False)


@pytest.mark.timeout(600)
def test_fit_returns_the_result_and_a_failed_run_is_a_one_line_error(ray_local, tmp_path):
    def report(cfg):
        import tempfile

        import ray.train

        d = tempfile.mkdtemp()
        Path(d, "model.txt").write_text(str(cfg["value"]))
        ray.train.report({"value": cfg["value"]}, checkpoint=ray.train.Checkpoint.from_directory(d))

    def crash(cfg):
        raise RuntimeError(f"injected at step {cfg['step']}\nsecond line")

    kw = {"storage": storage_path(None, tmp_path / "_ray"), "num_workers": 1,
          "cpus_per_worker": 0.25, "use_gpu": False, "max_failures": 0}
    result = fit_on_ray(report, {"value": 7}, label="t:ok", name="ok", **kw)
    with result.checkpoint.as_directory() as d:
        assert Path(d, "model.txt").read_text() == "7"
    with pytest.raises(PdrayError) as e:
        fit_on_ray(crash, {"step": 3}, label="t:crash", name="crash", **kw)
    assert str(e.value) == "[t:crash] training failed: RuntimeError: injected at step 3"
