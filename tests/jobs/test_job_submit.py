"""Submit a real Ray job (JobSubmissionClient against a local head) that runs the demo."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

DRIVER = textwrap.dedent("""
    import json, os, socket, sys, time
    import ray
    from ray.job_submission import JobSubmissionClient, JobStatus

    out, port = sys.argv[1], int(sys.argv[2])
    ray.init(num_cpus=2, include_dashboard=True, dashboard_host="127.0.0.1",
             dashboard_port=port, object_store_memory=300 * 1024**2)
    client = JobSubmissionClient(f"http://127.0.0.1:{port}")
    entry = (f"{sys.executable} jobs/pipeline.py demo --output {out} "
             "data.n_pairs=240 rm.epochs=1 rm.sample_ratio=0.6 "
             "run.stages=[data,rm,score,select,report] "
             "run.tracking=none")
    runtime_env = {
        "working_dir": os.getcwd(),
        "excludes": [".git", ".venv", "venv", "pdray_runs", "benchmarks/_runs", "*.parquet"],
        "env_vars": {"RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1",
                     "OMP_NUM_THREADS": "1"}}
    for attempt in range(60):  # the job agent comes up a little after the head
        try:
            job = client.submit_job(entrypoint=entry, runtime_env=runtime_env)
            break
        except RuntimeError as e:
            if "No available agent" not in str(e) or attempt == 59:
                raise
            time.sleep(2)
    deadline = time.time() + 600
    status = None
    while time.time() < deadline:
        status = client.get_job_status(job)
        if status in (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.STOPPED):
            break
        time.sleep(2)
    logs = client.get_job_logs(job)
    with open(sys.argv[3], "w") as fh:
        json.dump({"status": str(status), "logs": logs[-6000:]}, fh)
    ray.shutdown()
""")


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_submit_demo_job_to_local_head(tmp_path):
    import ray

    # Two Ray instances on one machine fight over the dashboard agent's port (52365), without
    # which no job can be submitted: stop the test session's Ray first (later tests restart it).
    if ray.is_initialized():
        ray.shutdown()
    env = dict(os.environ, RAY_USAGE_STATS_ENABLED="0", RAY_ADDRESS="")
    env.pop("RAY_ADDRESS")
    result_file = tmp_path / "result.json"
    proc = subprocess.run([sys.executable, "-c", DRIVER, str(tmp_path / "run"), str(_free_port()),
                           str(result_file)],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=850,
                          check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(result_file.read_text())
    assert result["status"].endswith("SUCCEEDED"), result["logs"]
    assert "CP" in result["logs"] and "report" in result["logs"]
    assert (tmp_path / "run" / "summary.txt").exists()
