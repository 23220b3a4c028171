"""Trainer callbacks shared by the Ray Train workers (reward models, DPO).

Built inside the worker (they subclass ``transformers.TrainerCallback``, so importing this
module stays free of transformers until a callback is made).
"""

from __future__ import annotations

from pathlib import Path


def fail_once_callback(label: str, fail_step: int | None, marker: str | None):
    """A callback that raises once, at optimizer step ``fail_step``, to test that Ray Train
    restarts the worker from its last checkpoint (``fail_once_at_step`` in the rm / dpo
    configs). ``marker`` (a file) records that it fired, so the restarted run goes through.
    ``None`` when no failure is asked for."""
    if not fail_step or not marker:
        return None
    from transformers import TrainerCallback

    class FailOnce(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            if state.global_step == fail_step and not Path(marker).exists():
                Path(marker).write_text("failed once")
                raise RuntimeError(f"[{label}] injected failure at step {fail_step}")

    return FailOnce()


def ray_report_callback():
    """Ray Train's ``RayTrainReportCallback`` for a trainer whose workers share one
    ``output_dir`` per node (:func:`pdray.ray_train.shared_output_dir`): at every save, once all
    workers have written their part, the first worker of each node reports the node's
    checkpoint folder and the others only the metrics — not every worker a copy of a folder
    that another one may still be writing. Ray Train merges the nodes' folders into one
    checkpoint."""
    import ray.train
    from ray.train.collective import barrier
    from ray.train.huggingface.transformers import RayTrainReportCallback

    class NodeReport(RayTrainReportCallback):
        def on_save(self, args, state, control, **kwargs):
            barrier()
            if ray.train.get_context().get_local_rank() == 0:
                return super().on_save(args, state, control, **kwargs)
            metrics = {}
            for log in state.log_history:
                metrics.update(log)
            ray.train.report(metrics=metrics, checkpoint=None)

    return NodeReport()
