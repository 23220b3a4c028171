"""Paths a Ray Job can keep: a relative run.output_dir is refused in a Ray Job (it would land in
Ray's temporary copy of the working dir), and resolved to an absolute path elsewhere."""

import pytest

import pdray.raysetup
from pdray.errors import ConfigError
from pdray.pipeline import PipelineConfig, run_pipeline
from pdray.raysetup import job_output_dir


def test_relative_output_dir_is_refused_in_a_ray_job_before_ray_starts(tmp_path, monkeypatch):
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    monkeypatch.chdir(tmp_path)
    assert job_output_dir("runs/demo") == str(tmp_path / "runs" / "demo")   # not a job: absolute
    monkeypatch.setenv(RAY_JOB_CONFIG_JSON_ENV_VAR, "{}")
    monkeypatch.setattr(pdray.raysetup, "init_ray", lambda *a, **k: pytest.fail("Ray started"))
    cfg = PipelineConfig.model_validate({"run": {"output_dir": "runs/demo", "tracking": "none"}})
    with pytest.raises(ConfigError) as e:
        run_pipeline(cfg, echo=lambda _: None)
    msg = str(e.value)
    assert "\n" not in msg and "run.output_dir='runs/demo' is relative" in msg
    assert "Ray Job" in msg and "absolute path that every node sees" in msg
    assert not (tmp_path / "runs").exists()
    assert job_output_dir(str(tmp_path / "abs")) == str(tmp_path / "abs")   # absolute: kept


def test_object_store_output_dir_is_refused_in_one_line():
    """run.output_dir takes no URI yet (a Ray Job would have written a local 's3:' folder)."""
    import pytest

    from pdray.config import load_config
    from pdray.errors import ConfigError
    from pdray.pipeline import PipelineConfig

    with pytest.raises(ConfigError, match=r"run.output_dir 's3://bucket/run': an object-store "
                                          r"URI is not supported yet"):
        load_config(PipelineConfig, None, ["run.output_dir=s3://bucket/run"])
