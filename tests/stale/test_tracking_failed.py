"""A failed, interrupted (SIGTERM) or killed `pdray run` ends FAILED in MLflow, not RUNNING."""

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from pdray.config import load_config
from pdray.errors import PdrayError
from pdray.pipeline import PipelineConfig, run_pipeline
from pdray.pipeline import stages as S
from pdray.pipeline.runner import Terminated
from pdray.pipeline.tracking import make_tracker


def _status(out):
    from mlflow.tracking import MlflowClient

    rec = json.loads((out / "tracking_run.json").read_text())
    return MlflowClient(tracking_uri=rec["uri"]).get_run(rec["run_id"]).info.status


@pytest.mark.timeout(400)
def test_failed_and_terminated_runs_are_marked_failed(ray_local, tmp_path, monkeypatch):
    out = tmp_path / "run"
    cfg = load_config(PipelineConfig, None, [f"data.source={tmp_path / 'missing.jsonl'}",
                                             f"run.output_dir={out}", "run.tracking=mlflow",
                                             "run.stages=[data]"])
    with pytest.raises(PdrayError):
        run_pipeline(cfg, echo=lambda *_: None)
    assert _status(out) == "FAILED"

    before = signal.getsignal(signal.SIGTERM)

    def killed(*_a, **_k):
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)
        raise AssertionError("SIGTERM did not interrupt the run")

    monkeypatch.setitem(S.STAGES, "data", dataclasses.replace(S.STAGES["data"], run=killed))
    with pytest.raises(Terminated):
        run_pipeline(cfg, echo=lambda *_: None)
    assert _status(out) == "FAILED"
    assert signal.getsignal(signal.SIGTERM) == before  # the handler is restored


@pytest.mark.timeout(300)
def test_run_left_running_by_a_killed_process_is_marked_failed(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    code = ("import os, signal; from pdray.pipeline.tracking import make_tracker; "
            f"make_tracker('mlflow', {str(out)!r}, 'pdray', 't'); "
            "os.kill(os.getpid(), signal.SIGKILL)")
    proc = subprocess.run([sys.executable, "-c", code], check=False, env=dict(os.environ), timeout=280)
    assert proc.returncode == -signal.SIGKILL
    assert _status(out) == "RUNNING"  # nothing could end it
    rec = json.loads((out / "tracking_run.json").read_text())
    lines: list[str] = []
    fresh = make_tracker("mlflow", str(out), "pdray", "t", echo=lines.append)
    from mlflow.tracking import MlflowClient

    assert MlflowClient(tracking_uri=rec["uri"]).get_run(rec["run_id"]).info.status == "FAILED"
    assert any("marked FAILED" in ln for ln in lines)
    fresh.close()
    assert _status(out) == "FINISHED"
