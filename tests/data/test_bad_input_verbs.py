"""Bad input through the verbs that read it (issue #25, item 4): each run ends in one
``error: …`` line naming the file, row and field (or the folder), exit 2, no traceback — or in a
counted quarantine. Driven through ``pdray.cli.main``, the CLI's error boundary; every case
fails before Ray starts."""

from __future__ import annotations

import contextlib
import io
import json
import shutil

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pdray.cli import main
from pdray.rm.model_set import RewardModelSet

ASPECTS = ["helpfulness", "honesty"]
KNOWN = ["--known-aspects", "helpfulness,honesty"]


def pair(i: int, **kw) -> dict:
    row = {"id": f"p{i}", "aspect": ASPECTS[i % 2], "prompt": f"prompt {i}",
           "chosen": f"good answer {i}", "rejected": f"bad answer {i}",
           "chosen_ratings": {"helpfulness": 4.0, "honesty": 3.0},
           "rejected_ratings": {"helpfulness": 2.0, "honesty": 1.0}}
    row.update(kw)
    return row


def jsonl(path, rows) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def run_cli(args: list[str]) -> tuple[int, str]:
    """(exit code, stdout + stderr) of ``pdray ARGS`` through its error boundary."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
            code = 0
        except SystemExit as e:
            code = e.code
    return code, out.getvalue() + err.getvalue()


def one_error(args: list[str]) -> str:
    """The single ``error:`` line of a run that must fail with exit 2."""
    code, text = run_cli(args)
    assert code == 2, text
    assert "Traceback" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1, text
    return errors[0]


# --- 1. the keys of a ratings map -----------------------------------------------------------

RATINGS_CASES = [  # id, row 1 changed to, args beyond the file, expected error after "row 1, "
    ("unknown-key-chosen", pair(1, chosen_ratings={"helpfulness": 4.0, "style": 2.0}), KNOWN,
     "field 'chosen_ratings': unknown aspect 'style' (known: helpfulness, honesty)"),
    ("unknown-key-rejected", pair(1, rejected_ratings={"tone": 1.0}), KNOWN,
     "field 'rejected_ratings': unknown aspect 'tone' (known: helpfulness, honesty)"),
    ("unsafe-key", pair(1, chosen_ratings={"../x": 1.0}), [],
     "field 'chosen_ratings': unsafe aspect name '../x' (aspects name files and folders"),
    ("non-numeric", pair(1, rejected_ratings={"honesty": "high"}), [],
     "field 'rejected_ratings': rating for aspect 'honesty' must be a number, got text 'high'"),
    ("not-a-map", pair(1, chosen_ratings=[4, 3]), [],
     "field 'chosen_ratings': expected an object of aspect -> number, got list [4, 3]"),
]


@pytest.mark.parametrize("row,args,expected", [c[1:] for c in RATINGS_CASES],
                         ids=[c[0] for c in RATINGS_CASES])
def test_ratings_map_is_checked_key_by_key(tmp_path, row, args, expected):
    p = jsonl(tmp_path / "p.jsonl", [pair(0), row, pair(2)])
    line = one_error(["data", "validate", p, *args])
    assert line.startswith(f"error: {p}: row 1, {expected}"), line


def test_unknown_ratings_key_is_quarantined_and_counted(tmp_path):
    p = jsonl(tmp_path / "p.jsonl", [pair(0), pair(1, chosen_ratings={"style": 1.0}), pair(2)])
    q, good = tmp_path / "q.jsonl", tmp_path / "good.jsonl"
    code, text = run_cli(["data", "validate", p, *KNOWN, "--quarantine", q, "--output", good])
    assert code == 0, text
    assert f"{p}: 2 valid, 1 quarantined -> {q}" in text
    assert ("quarantined: row 1, field 'chosen_ratings': unknown aspect 'style' (known: "
            "helpfulness, honesty)") in text
    kept = [json.loads(ln)["id"] for ln in good.read_text().splitlines()]
    assert kept == ["p0", "p2"]


def test_ratings_map_from_parquet_nan_and_key_twice(tmp_path):
    maps = pa.array([[("helpfulness", 1.0)], [("helpfulness", float("nan"))],
                     [("honesty", 1.0), ("honesty", 2.0)]], pa.map_(pa.string(), pa.float64()))
    rows = [pair(i) for i in range(3)]
    t = pa.table({k: [r[k] for r in rows] for k in ("id", "aspect", "prompt", "chosen",
                                                    "rejected")}).append_column(
        "chosen_ratings", maps)
    p = tmp_path / "p.parquet"
    pq.write_table(t, p)
    assert one_error(["data", "validate", p]) == (
        f"error: {p}: row 1, field 'chosen_ratings': non-finite rating for aspect "
        "'helpfulness': nan (1 more problems)")
    q = tmp_path / "q.jsonl"
    code, text = run_cli(["data", "validate", p, "--quarantine", q])
    assert code == 0 and f"{p}: 1 valid, 2 quarantined" in text, text
    assert "quarantined: row 2, field 'chosen_ratings': aspect 'honesty' rated twice" in text


# --- 2. duplicate ids, in every verb that reads pairs -----------------------------------------

def _dup_rows():
    return [pair(0), pair(1), pair(2, id="p0"), pair(3)]


def test_duplicate_id_names_file_and_both_rows_in_data_verbs(tmp_path):
    p = jsonl(tmp_path / "p.jsonl", _dup_rows())
    want = f"error: {p}: row 2, field 'id': duplicate id 'p0' (first at row 0)"
    assert one_error(["data", "validate", p]) == want
    assert one_error(["data", "build", p, "--format", "pairs",
                      "-o", tmp_path / "out.parquet"]) == want
    assert one_error(["lossdiff", "warmup", p, "-o", tmp_path / "w"]) == want
    trl = jsonl(tmp_path / "trl.jsonl", [
        {"id": "a", "prompt": "p", "chosen": "c", "rejected": "r", "aspect": "helpfulness"},
        {"id": "b", "prompt": "p", "chosen": "c", "rejected": "r", "aspect": "honesty"},
        {"id": "a", "prompt": "p2", "chosen": "c", "rejected": "r", "aspect": "honesty"}])
    assert one_error(["data", "build", trl, "--format", "trl",
                      "-o", tmp_path / "out2.parquet"]) == (
        f"error: {trl}: row 2, field 'id': duplicate id 'a' (first at row 0)")


@pytest.fixture(scope="module")
def rm_set(tmp_path_factory, tiny_rm):
    """A whole reward-model set (two aspects, real tiny model folders) to break one file at a
    time."""
    root = tmp_path_factory.mktemp("rmset") / "rm"
    for a in ASPECTS:
        shutil.copytree(tiny_rm, root / a)
    RewardModelSet("separate", ASPECTS, {a: a for a in ASPECTS}, max_length=64,
                   length_debias="penalty", rho=0.0).save(root)
    return root


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_duplicate_id_in_score_names_file_and_both_rows(tmp_path, rm_set, fmt):
    rows = [{k: r[k] for k in ("id", "aspect", "prompt", "chosen", "rejected")}
            for r in _dup_rows()]
    if fmt == "jsonl":
        p = jsonl(tmp_path / "p.jsonl", rows)
    else:
        p = str(tmp_path / "p.parquet")
        pq.write_table(pa.Table.from_pylist(rows), p)
    assert one_error(["score", p, "--rm", rm_set, "-o", tmp_path / "s"]) == (
        f"error: {p}: row 2, field 'id': duplicate id 'p0' (first at row 0)")


# --- 3. a reward-model set with a missing or garbled file -------------------------------------

def _set_json(d):
    return d / "rm_set.json"


RM_CASES = [  # id, how to break the copy, expected error ({rm}: the set's folder)
    ("rm-set-missing", lambda d: _set_json(d).unlink(),
     "{rm}/rm_set.json: not a reward-model set (run `pdray rm train` first)"),
    ("rm-set-garbled", lambda d: _set_json(d).write_text('{"mode": "separate", '),
     ("{rm}/rm_set.json: unreadable reward-model manifest: Expecting property name enclosed in "
      "double quotes: line 1 column 22 (char 21)")),
    ("rm-set-list", lambda d: _set_json(d).write_text("[1, 2]"),
     "{rm}/rm_set.json: unreadable reward-model manifest: expected a JSON object, got list"),
    ("rm-set-unknown-key", lambda d: _set_json(d).write_text(json.dumps(
        {**json.loads(_set_json(d).read_text()), "colour": "red"})),
     "{rm}/rm_set.json: unreadable reward-model manifest: unknown key 'colour'"),
    ("rm-set-no-path", lambda d: _set_json(d).write_text(json.dumps(
        {**json.loads(_set_json(d).read_text()), "paths": {"helpfulness": "helpfulness"}})),
     "{rm}/rm_set.json: 'paths' has no folder for aspect 'honesty'"),
    ("rm-set-bad-mode", lambda d: _set_json(d).write_text(json.dumps(
        {**json.loads(_set_json(d).read_text()), "mode": "sparse"})),
     "{rm}/rm_set.json: mode 'sparse' is not one of separate, all_in_one, multi_head"),
    ("folder-missing", lambda d: shutil.rmtree(d / "honesty"),
     ("{rm}/honesty: model folder is missing (the reward model of 'honesty' in "
      "{rm}/rm_set.json)")),
    ("config-missing", lambda d: (d / "honesty" / "config.json").unlink(),
     ("{rm}/honesty/config.json: missing (not a saved model folder) (the reward model of "
      "'honesty' in {rm}/rm_set.json)")),
    ("config-garbled", lambda d: (d / "helpfulness" / "config.json").write_text("{oops"),
     ("{rm}/helpfulness/config.json: not valid JSON: Expecting property name enclosed in double "
      "quotes: line 1 column 2 (char 1) (the reward model of 'helpfulness' in {rm}/rm_set.json)")),
    ("weights-missing", lambda d: (d / "honesty" / "model.safetensors").unlink(),
     ("{rm}/honesty: no model weights (model.safetensors or pytorch_model.bin) (the reward model "
      "of 'honesty' in {rm}/rm_set.json)")),
    ("weights-truncated", lambda d: (d / "honesty" / "model.safetensors").write_bytes(
        (d / "honesty" / "model.safetensors").read_bytes()[:5000]),
     "{rm}/honesty/model.safetensors: truncated (5000 bytes, its header needs"),
    ("weights-garbage", lambda d: (d / "honesty" / "model.safetensors").write_bytes(b"x" * 64),
     "{rm}/honesty/model.safetensors: not a safetensors file (bad header)"),
    ("tokenizer-missing", lambda d: (d / "honesty" / "tokenizer.json").unlink(),
     ("{rm}/honesty: no tokenizer files (tokenizer.json, vocab.json, vocab.txt, ...) (the reward "
      "model of 'honesty' in {rm}/rm_set.json)")),
    ("tokenizer-garbled", lambda d: (d / "honesty" / "tokenizer.json").write_text("not json"),
     ("{rm}/honesty/tokenizer.json: not valid JSON: Expecting value: line 1 column 1 (char 0) "
      "(the reward model of 'honesty' in {rm}/rm_set.json)")),
]


@pytest.mark.parametrize("breaks,expected", [c[1:] for c in RM_CASES],
                         ids=[c[0] for c in RM_CASES])
def test_broken_reward_model_set_is_one_line_before_ray(tmp_path, rm_set, breaks, expected):
    rm = tmp_path / "rm"
    shutil.copytree(rm_set, rm)
    breaks(rm)
    p = jsonl(tmp_path / "p.jsonl", [pair(0), pair(1)])
    line = one_error(["score", p, "--rm", rm, "-o", tmp_path / "s"])
    assert line.startswith("error: " + expected.format(rm=rm)), line


def test_whole_reward_model_set_passes_the_file_checks(rm_set):
    s = RewardModelSet.load(rm_set)
    s.check_files(rm_set)   # no error: the cases above each break one thing of this set
    assert {k: v for k, v in s.folders(rm_set).items()} == {
        str(rm_set / a): [a] for a in ASPECTS}


# --- 4. scoring actors that keep dying --------------------------------------------------------

@pytest.mark.timeout(400)
def test_restarts_used_up_is_one_line_without_ray_tracebacks(tmp_path, rm_set):
    """The scoring actor dies at its second shard and no restart is allowed: one error line,
    Ray's retry and worker-death messages (with the actor's traceback) in the logs only."""
    import os
    import subprocess
    import sys

    p = jsonl(tmp_path / "p.jsonl", [pair(i) for i in range(20)])
    out = tmp_path / "s"
    # its own quiet local Ray (not one a test of this process started: RAY_ADDRESS)
    env = {k: v for k, v in os.environ.items() if k not in ("PDRAY_VERBOSE", "RAY_ADDRESS")}
    r = subprocess.run([sys.executable, "-c", "from pdray.cli import main; main()", "score", p,
                        "--rm", str(rm_set), "-o", str(out), "shard_rows=5",
                        "fail_once_at_batch=2", "max_restarts=0"],
                       capture_output=True, text=True, env=env, timeout=380, check=False)
    text = r.stdout + r.stderr
    assert r.returncode == 2, text
    assert "Traceback" not in text and "(raylet)" not in text, text
    errors = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert errors == [(f"error: [score] scoring actor restarts used up (max_restarts=0): see "
                       f"{out}/logs; committed shards are kept, a re-run resumes")], text
    assert all(ln.startswith(("[score] ", "error: ")) for ln in text.splitlines()), text
    assert "restarts used up" in (out / "logs" / "driver.err").read_text()
