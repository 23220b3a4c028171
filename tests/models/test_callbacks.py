"""The shared failure-injection callback of the Ray Train workers."""

from types import SimpleNamespace

import pytest

from pdray.models.callbacks import fail_once_callback


def test_fail_once_callback_fires_once_then_lets_the_restart_through(tmp_path):
    marker = tmp_path / "failed"
    assert fail_once_callback("rm:a", None, str(marker)) is None
    assert fail_once_callback("rm:a", 2, None) is None
    cb = fail_once_callback("rm:a", 2, str(marker))
    state = SimpleNamespace(global_step=1)
    cb.on_step_end(None, state, None)
    assert not marker.exists()
    state.global_step = 2
    with pytest.raises(RuntimeError, match=r"\[rm:a\] injected failure at step 2"):
        cb.on_step_end(None, state, None)
    assert marker.read_text() == "failed once"
    cb.on_step_end(None, state, None)  # the restarted worker passes the same step
