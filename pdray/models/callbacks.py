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
