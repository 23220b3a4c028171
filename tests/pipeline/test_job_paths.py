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


def test_object_store_output_dir_is_accepted_and_a_key_in_it_refused_masked(monkeypatch):
    """run.output_dir takes an s3:// / gs:// URI (a local mirror; tests/pipeline/
    test_object_store.py runs it), also in a Ray Job; one with credentials in it is refused in
    one line that shows them masked; other schemes are refused."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    from pdray.config import load_config

    monkeypatch.setenv(RAY_JOB_CONFIG_JSON_ENV_VAR, "{}")
    for uri in ("s3://bucket/run", "gs://bucket/a/b"):
        assert load_config(PipelineConfig, None, [f"run.output_dir={uri}"]).run.output_dir == uri
        assert job_output_dir(uri) == uri
    with pytest.raises(ConfigError) as e:
        load_config(PipelineConfig, None, ["run.output_dir=s3://AKIAX:hunter2@bucket/run"])
    assert str(e.value) == ("config: run.output_dir='s3://***@bucket/run': the URI carries "
                            "credentials; give them in the environment (AWS_ACCESS_KEY_ID / "
                            "AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL), never in the config")
    with pytest.raises(ConfigError, match=r"run.output_dir='ftp://host/run': .*only s3:// and "
                                          r"gs:// object stores are supported"):
        load_config(PipelineConfig, None, ["run.output_dir=ftp://host/run"])
