"""``run.output_dir`` as an object-store URI (issue 26, items 2 and 6), on an S3-compatible
server the test starts itself (moto's server mode on 127.0.0.1, a free port), with the same tiny
data → rm → score → select pipeline as the other pipeline tests; Ray Train's ``storage_path``
is in the store too.

1. A run is SIGKILLed (the whole driver, with the local Ray it started) in the middle of a sync
   pass, right after the first score shard reached the store; the local mirror is then deleted.
2. The rerun, with the same URI, pulls the store into a fresh mirror: data and rm are cached,
   the score stage resumes (the shards the store holds are not rescored), select runs.
3. A third run, again from an empty mirror, is fully cached.
4. No object holds the secret key; the credentials and endpoint came from the environment only.

Each run is a subprocess (its own local Ray, which inherits the AWS environment: the Ray Train
workers reach the store through it), so a SIGKILL kills a real driver.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
BUCKET = "pdray-test-runs"
URI = f"s3://{BUCKET}/tiny/run"
KEY_ID = "pdraytestaccesskey"
SECRET = "pdray-test-secret-" + uuid.uuid4().hex   # must appear in no object

SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path

    import pdray.object_store as store
    from pdray.pipeline import run_pipeline
    from tests.pipeline.helpers import tiny_pipeline

    src, uri, mode = sys.argv[1], sys.argv[2], sys.argv[3]
    store.SYNC_S = 0.3
    if mode == "kill":
        # a hard kill of this driver in the middle of a sync pass, right after the first score
        # shard reached the store (its failures file went up before it)
        upload = store.Mirror._upload
        def upload_then_die(self, rel):
            upload(self, rel)
            if "/scores/shards/part-" in rel:
                print("KILLING after 1 shard(s) in the store", flush=True)
                os.kill(os.getpid(), 9)
        store.Mirror._upload = upload_then_die
    lines = []
    cfg = tiny_pipeline(src, uri, "select.strategies=[pd]", "score.shard_rows=2",
                        "score.num_actors=1", "rm.storage_path=s3://BUCKET/ray-train")
    res = run_pipeline(cfg, echo=lambda s: (lines.append(s), print(s, flush=True)))
    print("RESULT " + json.dumps({"store": res.store, "out": str(res.output_dir),
                                  "scores": res.manifests["score"].scores}), flush=True)
""").replace("s3://BUCKET/", f"s3://{BUCKET}/")


def _free_server():
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    return server, f"http://{host}:{port}"


@pytest.fixture
def s3(tmp_path):
    """A moto S3 server on 127.0.0.1 with one bucket; the environment a run gets."""
    import urllib.request

    import pyarrow.fs as pafs

    server, endpoint = _free_server()
    # moto keeps its buckets in the process, across servers: start from an empty store
    urllib.request.urlopen(urllib.request.Request(f"{endpoint}/moto-api/reset", method="POST"))
    env = {**os.environ, "AWS_ACCESS_KEY_ID": KEY_ID, "AWS_SECRET_ACCESS_KEY": SECRET,
           "AWS_ENDPOINT_URL": endpoint, "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true", "PDRAY_CACHE": str(tmp_path / "cache"),
           "PYTHONPATH": str(REPO), "RAY_USAGE_STATS_ENABLED": "0"}
    env.pop("RAY_ADDRESS", None)
    fs = pafs.S3FileSystem(access_key=KEY_ID, secret_key=SECRET, endpoint_override=endpoint,
                           region="us-east-1", allow_bucket_creation=True)
    fs.create_dir(BUCKET)
    try:
        yield {"env": env, "fs": fs, "endpoint": endpoint}
    finally:
        server.stop()


def _run(env, src, mode, cwd, timeout=300):
    """One pipeline run in its own process group; its output and return code (tried again
    once when the local Ray it starts times out starting, as it may on a loaded machine)."""
    rc, out = _run_once(env, src, mode, cwd, timeout)
    if rc == 1 and "node timed out during startup" in out:
        rc, out = _run_once(env, src, mode, cwd, timeout)
    return rc, out


def _run_once(env, src, mode, cwd, timeout):
    p = subprocess.Popen([sys.executable, "-c", SCRIPT, str(src), URI, mode], cwd=cwd, env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    finally:
        try:   # what it started (its local Ray) goes with it
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return p.returncode, out


def _objects(fs, prefix: str = BUCKET) -> dict[str, int]:
    import pyarrow.fs as pafs

    infos = fs.get_file_info(pafs.FileSelector(prefix, recursive=True, allow_not_found=True))
    return {i.path: i.size for i in infos if i.type == pafs.FileType.File}


@pytest.mark.timeout(600)
def test_object_store_output_resumes_a_killed_score_and_reruns_cached(s3, tmp_path):
    from pdray.data import synthetic_pairs
    from pdray.io import write_table
    from pdray.object_store import default_mirror

    src = tmp_path / "pairs.jsonl"
    write_table(synthetic_pairs(48, aspects=["helpfulness", "honesty"], seed=4), src)
    env, fs = s3["env"], s3["fs"]
    os.environ["PDRAY_CACHE"] = env["PDRAY_CACHE"]
    try:
        mirror = default_mirror(URI)
    finally:
        os.environ.pop("PDRAY_CACHE")
    assert str(mirror).startswith(str(tmp_path / "cache"))
    cwd = tmp_path / "cwd"
    cwd.mkdir()

    # 1. killed while scoring, once the store holds some shards
    t0 = time.time()
    rc, out1 = _run(env, src, "kill", cwd)
    assert rc == -signal.SIGKILL, out1[-3000:]
    killed_at = int(re.search(r"KILLING after (\d+) shard", out1).group(1))
    objs = _objects(fs)
    shards = [k for k in objs if "/scores/shards/part-" in k]
    markers = sorted(k.split("/")[-2].split("-")[0] for k in objs if k.endswith("/_stage.json"))
    assert markers == ["data", "rm"], markers     # score was not finished in the store
    assert len(shards) == killed_at == 1
    assert any(k.endswith("/scores/plan.json") for k in objs)
    assert any(k.startswith(f"{BUCKET}/ray-train/") for k in objs)   # Ray Train's storage_path
    assert f"[run] output: {URI} (local mirror: {mirror}" in out1
    assert mirror.is_dir()
    shutil.rmtree(mirror)
    t1 = time.time()

    # 2. the rerun from an empty mirror: data and rm cached, score resumes, select runs
    rc, out2 = _run(env, src, "run", cwd)
    assert rc == 0, out2[-3000:]
    assert "[data] cached" in out2 and "[rm] cached" in out2, out2[-3000:]
    m = re.search(r"\[score\] (\d+) pairs in (\d+) shards: (\d+) already scored, (\d+) to score",
                  out2)
    assert m, out2[-3000:]
    total, already, todo = int(m.group(2)), int(m.group(3)), int(m.group(4))
    assert already == len(shards) and already + todo == total and todo > 0, (m.group(0),
                                                                             len(shards))
    assert "[score] cached" not in out2 and "[select] cached" not in out2
    res = json.loads(out2.split("RESULT ", 1)[1].splitlines()[0])
    assert res["store"] == URI and res["out"] == str(mirror)
    assert f"[score] uploaded: {URI}/stages/score-" in out2
    objs = _objects(fs)
    markers = sorted(k.split("/")[-2].split("-")[0] for k in objs if k.endswith("/_stage.json"))
    assert markers == ["data", "rm", "score", "select"], markers
    for name in ("config.yaml", "run.json", "summary.txt", "summary.json"):
        assert f"{BUCKET}/tiny/run/{name}" in objs, name
    assert len([k for k in objs if "/scores/shards/part-" in k]) == total
    shutil.rmtree(mirror)
    t2 = time.time()

    # 3. again from an empty mirror: every stage cached, nothing rescored
    rc, out3 = _run(env, src, "run", cwd)
    assert rc == 0, out3[-3000:]
    for stage in ("data", "rm", "score", "select"):
        assert f"[{stage}] cached" in out3, (stage, out3[-3000:])
    assert "to score with" not in out3 and "finished in" not in out3
    res3 = json.loads(out3.split("RESULT ", 1)[1].splitlines()[0])
    assert res3 == res

    # 4. no object holds the secret; the config the run wrote names no credential
    secret = SECRET.encode()
    for key in _objects(fs):
        assert SECRET not in key and KEY_ID not in key
        with fs.open_input_stream(key) as f:
            assert secret not in f.read(), key
    config = fs.open_input_stream(f"{BUCKET}/tiny/run/config.yaml").read().decode()
    assert URI in config and SECRET not in config and KEY_ID not in config
    assert s3["endpoint"] not in config
    for text in (out1, out2, out3):
        assert SECRET not in text
    print(f"killed run {t1 - t0:.0f}s ({len(shards)} of {total} shards in the store), resume "
          f"{t2 - t1:.0f}s ({todo} scored), cached {time.time() - t2:.0f}s")


def test_bad_stores_fail_in_one_line_naming_the_uri(s3, monkeypatch, tmp_path):
    """A missing bucket, a refused secret, an unreachable endpoint: one line naming the URI;
    a URI with a key in it is refused when the config loads."""
    from pdray.config import load_config
    from pdray.errors import ConfigError, StorageError
    from pdray.object_store import Mirror
    from pdray.pipeline import PipelineConfig

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
              "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED", "PDRAY_CACHE"):
        monkeypatch.setenv(k, s3["env"][k])
    with pytest.raises(StorageError) as e:
        Mirror("s3://no-such-pdray-bucket/run").check()
    assert str(e.value).startswith("s3://no-such-pdray-bucket/run: bucket 'no-such-pdray-bucket' "
                                   "does not exist") and "\n" not in str(e.value)
    Mirror(f"s3://{BUCKET}/ok").check()    # the right bucket and keys: no error
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")   # nothing listens there
    with pytest.raises(StorageError) as e:
        Mirror(f"s3://{BUCKET}/run").check()
    msg = str(e.value)
    assert msg.startswith(f"s3://{BUCKET}/run: ") and "\n" not in msg and SECRET not in msg
    assert "AWS_ENDPOINT_URL" in msg
    for uri in (f"s3://{KEY_ID}:{SECRET}@{BUCKET}/run", f"s3://{BUCKET}/run?secret_key={SECRET}"):
        with pytest.raises(ConfigError) as e:
            load_config(PipelineConfig, None, [f"run.output_dir={uri}"])
        assert SECRET not in str(e.value) and "environment" in str(e.value)
        assert "\n" not in str(e.value)
    cfg = load_config(PipelineConfig, None, [f"run.output_dir=s3://{BUCKET}/run"])
    assert cfg.run.output_dir == f"s3://{BUCKET}/run"


def test_mirror_uploads_marker_last_prunes_syncs_and_relocates(s3, monkeypatch, tmp_path):
    """The mirror's protocol on its own (no Ray): a stage folder goes up with ``_stage.json``
    last, without staging files, locks or ``_ray``; what the stage removed is removed from the
    store; a running stage's files are synced without its marker; a pull into another mirror
    folder moves the marker's paths there."""
    import pdray.object_store as store
    from pdray.io import write_json

    for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
              "AWS_DEFAULT_REGION", "AWS_EC2_METADATA_DISABLED"):
        monkeypatch.setenv(k, s3["env"][k])
    fs, uri = s3["fs"], f"s3://{BUCKET}/unit"
    a = tmp_path / "a"
    d = a / "stages" / "score-0123456789ab"
    (d / "scores" / "shards").mkdir(parents=True)
    (d / "_ray").mkdir()
    (d / "scores" / "plan.json").write_text("{}")
    (d / "scores" / "shards" / "part-00000-x.parquet").write_bytes(b"shard")
    (d / "scores" / ".staging-part-00001-y.parquet").write_bytes(b"half")
    (d / "_ray" / "checkpoint").write_bytes(b"ckpt")
    (a / "stages" / ".score-0123456789ab.lock").write_text("")
    m = store.Mirror(uri, a)
    order = []
    upload = m._upload
    monkeypatch.setattr(m, "_upload", lambda r: (order.append(r), upload(r)))
    with m.syncing(d):   # a running stage: its files go up, its marker does not
        monkeypatch.setattr(store, "SYNC_S", 0.1)
        write_json({"stage": "score", "key": "0123456789ab", "dir": str(d),
                    "scores": str(d / "scores")}, d / store.MARKER)
        deadline = time.time() + 10
        plan = f"{BUCKET}/unit/stages/score-0123456789ab/scores/plan.json"
        while plan not in _objects(fs, f"{BUCKET}/unit"):
            assert time.time() < deadline, "the running stage was not synced"
            time.sleep(0.1)
    objs = _objects(fs, f"{BUCKET}/unit")
    assert not any(k.endswith(store.MARKER) for k in objs)
    assert order.index("stages/score-0123456789ab/scores/plan.json") < order.index(
        "stages/score-0123456789ab/scores/shards/part-00000-x.parquet")
    order.clear()
    (d / "scores" / "plan.json").unlink()   # the stage removed it: so does the finished push
    (d / "scores" / "shards" / "part-00000-x.parquet").write_bytes(b"shard, rescored")
    m.push(d)
    assert order == ["stages/score-0123456789ab/scores/shards/part-00000-x.parquet",
                     "stages/score-0123456789ab/_stage.json"], order
    objs = sorted(k.removeprefix(f"{BUCKET}/unit/stages/score-0123456789ab/")
                  for k in _objects(fs, f"{BUCKET}/unit"))
    assert objs == ["_stage.json", "scores/shards/part-00000-x.parquet"], objs
    # another mirror folder: the marker's paths follow it
    b = tmp_path / "b"
    assert store.Mirror(uri, b).pull("stages") == 2
    rec = json.loads((b / "stages" / "score-0123456789ab" / store.MARKER).read_text())
    assert rec["dir"] == str(b / "stages" / "score-0123456789ab")
    assert rec["scores"] == str(b / "stages" / "score-0123456789ab" / "scores")
    assert (b / "stages" / "score-0123456789ab" / "scores" / "shards" /
            "part-00000-x.parquet").read_bytes() == b"shard, rescored"
    store.Mirror(uri, b).pull("stages")   # again: the marker still names this mirror
    assert json.loads((b / "stages" / "score-0123456789ab" / store.MARKER).read_text()) == rec
    assert store.default_mirror(uri) == store.default_mirror(uri + "/")
    # a stage that fails: what it committed goes up, and its own error is the one raised
    d2 = a / "stages" / "select-0123456789ab"
    d2.mkdir()
    with pytest.raises(RuntimeError, match="the stage failed"), m.syncing(d2):
        (d2 / "committed.parquet").write_bytes(b"part")
        raise RuntimeError("the stage failed")
    assert f"{BUCKET}/unit/stages/select-0123456789ab/committed.parquet" in _objects(
        fs, f"{BUCKET}/unit")
