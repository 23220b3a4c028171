"""Experiment tracking: MLflow (local file store by default) or Weights & Biases, or nothing.

Every stage logs its parameters and metrics through :class:`Tracker`; when the backend is not
installed the run goes on and says so once, instead of failing after hours of work.

A run ends ``FINISHED`` only when the pipeline returned; an exception, Ctrl-C or SIGTERM ends it
``FAILED`` (:meth:`Tracker.close` with ``status``; the runner turns SIGTERM into an exception).
A process killed outright (SIGKILL) cannot say so: its MLflow run id and pid are kept in
``<output_dir>/tracking_run.json``, and the next run in that folder marks a run still
``RUNNING`` there whose process is gone as ``FAILED``.
"""

from __future__ import annotations

import json
import math
import os
import platform
from pathlib import Path
from typing import Any


def _flat(d: dict, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in (d or {}).items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flat(v, key + "."))
        else:
            out[key] = v
    return out


class Tracker:
    """No-op base; subclasses forward to a tracking backend."""

    def log_params(self, stage: str, params: dict) -> None:
        pass

    def log_metrics(self, stage: str, metrics: dict) -> None:
        pass

    def log_artifact(self, path: str) -> None:
        pass

    def close(self, status: str = "FINISHED") -> None:
        """End the run: ``FINISHED``, or ``FAILED`` after an error or interruption."""


class MLflowTracker(Tracker):
    def __init__(self, uri: str, experiment: str, run_name: str, output_dir: str | None = None,
                 echo=print):
        import mlflow

        self.mlflow = mlflow
        self.closed = False
        mlflow.set_tracking_uri(uri)
        mlflow.set_experiment(experiment)
        self.record = Path(output_dir) / "tracking_run.json" if output_dir else None
        self._fail_orphan(echo)
        self.run = mlflow.start_run(run_name=run_name)
        if self.record is not None:
            self.record.write_text(json.dumps({"run_id": self.run.info.run_id, "pid": os.getpid(),
                                               "host": platform.node(), "uri": uri}),
                                   encoding="utf-8")

    def _fail_orphan(self, echo) -> None:
        """Mark FAILED the run a killed process left RUNNING in this output folder."""
        if self.record is None or not self.record.is_file():
            return
        try:
            rec = json.loads(self.record.read_text(encoding="utf-8"))
            if rec.get("host") != platform.node() or _alive(int(rec["pid"])):
                return
            client = self.mlflow.tracking.MlflowClient()
            if client.get_run(rec["run_id"]).info.status == "RUNNING":
                client.set_terminated(rec["run_id"], status="FAILED")
                echo(f"[tracking] run {rec['run_id']} was left RUNNING by a killed process: "
                     "marked FAILED")
        except Exception:  # noqa: BLE001 - best effort: never block a new run on this
            return

    def log_params(self, stage, params):
        flat = {f"{stage}.{k}": str(v)[:500] for k, v in _flat(params).items()}
        self.mlflow.log_params(flat)

    def log_metrics(self, stage, metrics):
        flat = {f"{stage}.{k}": float(v) for k, v in _flat(metrics).items()
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)}
        if flat:
            self.mlflow.log_metrics(flat)

    def log_artifact(self, path):
        self.mlflow.log_artifact(path)

    def close(self, status: str = "FINISHED"):
        if self.closed:
            return
        self.closed = True
        self.mlflow.end_run(status=status)


class WandbTracker(Tracker):
    def __init__(self, project: str, run_name: str):
        import wandb

        self.wandb = wandb
        self.run = wandb.init(project=project, name=run_name)

    def log_params(self, stage, params):
        self.run.config.update({f"{stage}.{k}": v for k, v in _flat(params).items()},
                               allow_val_change=True)

    def log_metrics(self, stage, metrics):
        self.run.log({f"{stage}.{k}": v for k, v in _flat(metrics).items()
                      if isinstance(v, (int, float))})

    def close(self, status: str = "FINISHED"):
        self.run.finish(exit_code=0 if status == "FINISHED" else 1)


def make_tracker(kind: str, output_dir: str, experiment: str, run_name: str,
                 uri: str | None = None, echo=print) -> Tracker:
    if kind == "none":
        return Tracker()
    try:
        if kind == "mlflow":
            # A local file store needs no server; MLflow 3 keeps it behind this opt-in.
            os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
            uri = uri or (Path(output_dir).resolve() / "mlruns").as_uri()
            return MLflowTracker(uri, experiment, run_name, output_dir, echo=echo)
        if kind == "wandb":
            return WandbTracker(experiment, run_name)
    except ImportError:
        echo(f"[tracking] {kind} is not installed (pip install 'pdray[tracking]'); "
             "continuing without tracking")
        return Tracker()
    raise ValueError(f"unknown tracking backend {kind!r}")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
