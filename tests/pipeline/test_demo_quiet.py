"""A quiet terminal (issue #25, item 1): ``pdray demo`` prints pdray's own lines only (no Ray,
transformers, DeepSpeed or vLLM line), at most 40 of them; what is kept off the terminal is in
a log (OUTPUT/pdray.log, the scorers' logs folder, Ray's session logs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from pdray.cli.common import pipeline_echo
from pdray.raysetup import NOTICES_LOG, RAY_NOTICES, quiet_raylet_notices, stderr_to

SMALL = ["data.n_pairs=240", "rm.epochs=1", "dpo.max_steps=4"]
STRATEGIES = ("pd", "random", "high", "mid")
PDRAY_LINE = [re.compile(p) for p in (
    r"\[[a-z_]+(:[\w.-]+)?\] \S",                       # [stage] … / [stage:unit] …
    r"$",                                               # the blank line before the table
    r"strategy +kept +CP ",                             # the strategies table
    r"-+( +-+)+ *$",
    rf"({'|'.join(STRATEGIES)}) +\d+ +\d\.\d{{3}} ",
    r"reward models \(held-out pairs\):$",               # the reward models' quality
    r"  \w+ +accuracy \d\.\d{3} \(95% CI ",
    r"  warning: ",
    r"report: \S+index\.html$",
)]


def foreign(lines: list[str]) -> list[str]:
    return [ln for ln in lines if not any(p.match(ln) for p in PDRAY_LINE)]


@pytest.mark.timeout(900)
def test_demo_prints_only_pdray_lines(tmp_path):
    out = tmp_path / "run"
    # its own quiet local Ray (not one a test of this process started: RAY_ADDRESS)
    env = {k: v for k, v in os.environ.items() if k not in ("PDRAY_VERBOSE", "RAY_ADDRESS")}
    r = subprocess.run([sys.executable, "-c", "from pdray.cli import main; main()", "demo",
                        "--output", str(out), *SMALL], capture_output=True, text=True,
                       env=env, timeout=880, check=False)
    lines = (r.stdout + r.stderr).splitlines()
    assert r.returncode == 0, "\n".join(lines[-30:])
    assert foreign(lines) == [], "\n".join(lines)
    # at most 40 lines; warnings are never cut (this config's few held-out pairs make the rm
    # stage warn, and the summary repeats it; the demo config's models do not warn)
    assert len([ln for ln in lines if "warning: " not in ln]) <= 40, "\n".join(lines)
    assert lines[-1] == f"report: {next((out / 'stages').glob('report-*'))}/index.html"
    assert sum(ln.startswith(f"{s} ") for ln in lines for s in STRATEGIES) == 4   # the table
    # the per-unit detail is in the run's log, not on the terminal
    log = (out / "pdray.log").read_text(encoding="utf-8").splitlines()
    units = [ln for ln in log if re.match(r"\[(rm|dpo):", ln)]
    assert units and not any(ln in lines for ln in units if "warning" not in ln)
    assert set(lines) <= set(log)
    # Ray Data's actor-pool line of the driver's core worker went to the scorers' logs folder
    err = next((out / "stages").glob("score-*")) / "scores" / "logs" / "driver.err"
    assert "constructor arguments in the object store" in err.read_text(encoding="utf-8")


def test_pipeline_echo_routes_unit_lines_and_prints_to_the_log(tmp_path, monkeypatch,
                                                               capsys):
    monkeypatch.delenv("PDRAY_VERBOSE", raising=False)
    with pipeline_echo(tmp_path) as echo:
        echo("[rm] training")
        print("[rm:honesty] training on 171 pairs")     # a stage that prints, not echoes
        print("[rm:honesty] warning: loss did not fall")
        echo("[dpo:dpo-1a2b] done: 35 steps")
    shown = capsys.readouterr().out.splitlines()
    assert shown == ["[rm] training", "[rm:honesty] warning: loss did not fall"]
    assert (tmp_path / "pdray.log").read_text().splitlines() == [
        "[rm] training", "[rm:honesty] training on 171 pairs",
        "[rm:honesty] warning: loss did not fall", "[dpo:dpo-1a2b] done: 35 steps"]
    monkeypatch.setenv("PDRAY_VERBOSE", "1")
    with pipeline_echo(None) as echo:
        echo("[dpo:dpo-1a2b] done: 35 steps")
    assert capsys.readouterr().out == "[dpo:dpo-1a2b] done: 35 steps\n"


def test_ray_notices_go_to_a_log_other_messages_print(tmp_path, monkeypatch):
    import ray._private.worker as ray_worker

    class Node:
        def get_logs_dir_path(self):
            return str(tmp_path)

    shown = []
    monkeypatch.setattr(ray_worker, "print_to_stdstream",
                        lambda data, ignore_prefix: shown.append(data["lines"]))
    monkeypatch.setattr(ray_worker.global_worker, "node", Node(), raising=False)
    quiet_raylet_notices()
    quiet_raylet_notices()   # once is enough: not wrapped twice
    notice = (f"WARNING: 8 {RAY_NOTICES[0]}: f89 with address: 192.0.2.2, which is 4x the "
              "maximum expected startup concurrency (2).")
    retry = (f"Task MapWorker(MapBatches(ShardWorker)).submit failed. There are infinite "
             f"{RAY_NOTICES[1]}. Error: Traceback (most recent call last):\n  File ...")
    oom = "Task was killed due to the node running low on memory."
    for line in (notice, retry, oom):
        ray_worker.print_to_stdstream({"lines": [line], "pid": "raylet", "is_err": False},
                                      False)
    assert shown == [[oom]]
    assert (tmp_path / NOTICES_LOG).read_text() == f"(raylet) {notice}\n(raylet) {retry}\n"


def test_stderr_to_a_file_for_a_block(tmp_path, capfd):
    path = tmp_path / "logs" / "driver.err"
    line = b"[2026-12-07 20:06:24,465 E 1 1] core_worker.cc:2465: Actor with ...\n"
    with stderr_to(path):
        os.write(2, line)   # what Ray's C++ core worker does
    os.write(2, b"after the block\n")
    with stderr_to(None):
        os.write(2, b"left alone\n")
    assert path.read_bytes() == line
    assert capfd.readouterr().err == "after the block\nleft alone\n"
