import numpy as np
import pyarrow as pa
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pdray.data import synthetic_pairs
from pdray.errors import PdrayError
from pdray.models.formatting import pair_text
from pdray.models.reward import token_batches
from pdray.models.tiny import build_tiny_reward_model
from pdray.rm.model_set import RewardModelSet
from pdray.scoring import ScoreConfig, score_pairs

ASPECTS = ["helpfulness", "honesty"]


@pytest.fixture(scope="module")
def rm_sets(tmp_path_factory):
    root = tmp_path_factory.mktemp("rmsets")
    sep = root / "sep"
    for i, a in enumerate(ASPECTS):
        build_tiny_reward_model(sep / a, seed=i)
    build_tiny_reward_model(sep / "holistic", seed=7)
    RewardModelSet("separate", ASPECTS, {a: a for a in ASPECTS}, rho=0.001, max_length=128,
                   holistic_path="holistic", length_debias="penalty").save(sep)
    mh = root / "mh"
    build_tiny_reward_model(mh / "multi_head", seed=3, num_labels=2)
    RewardModelSet("multi_head", ASPECTS, {a: "multi_head" for a in ASPECTS}, max_length=128,
                   length_debias="penalty", rho=0.0).save(mh)
    aio = root / "aio"
    build_tiny_reward_model(aio / "all_in_one", seed=4)
    RewardModelSet("all_in_one", ASPECTS, {a: "all_in_one" for a in ASPECTS},
                   system_prompts={"helpfulness": "Be helpful.", "honesty": "Be honest."},
                   max_length=128, length_debias="penalty", rho=0.0).save(aio)
    return {"separate": sep, "multi_head": mh, "all_in_one": aio}


def _direct(folder, pairs, system=None, head=0, num_labels=1):
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder, num_labels=num_labels).eval()
    out = []
    with torch.inference_mode():
        for r in pairs.to_pylist():
            rc = model(**tok(pair_text(tok, r["prompt"], r["chosen"], system), return_tensors="pt",
                             truncation=True, max_length=128)).logits[0, head].item()
            rr = model(**tok(pair_text(tok, r["prompt"], r["rejected"], system), return_tensors="pt",
                             truncation=True, max_length=128)).logits[0, head].item()
            out.append(rc - rr)
    return np.asarray(out)


@pytest.mark.timeout(300)
@pytest.mark.parametrize("mode", ["separate", "multi_head", "all_in_one"])
def test_scores_equal_direct_model_calls(ray_local, rm_sets, tmp_path, mode):
    pairs = synthetic_pairs(40, aspects=ASPECTS, seed=5)
    run = score_pairs(pairs, str(rm_sets[mode]), str(tmp_path / "s"),
                      ScoreConfig(shard_rows=16, batch_tokens=1024), echo=lambda *_: None)
    t = run.table()
    order = {i: n for n, i in enumerate(t["id"].to_pylist())}
    t = t.take(pa.array([order[i] for i in pairs["id"].to_pylist()]))
    root = rm_sets[mode]
    for h, a in enumerate(ASPECTS):
        if mode == "separate":
            want = _direct(root / a, pairs)
        elif mode == "multi_head":
            want = _direct(root / "multi_head", pairs, head=h, num_labels=2)
        else:
            want = _direct(root / "all_in_one", pairs,
                           system={"helpfulness": "Be helpful.", "honesty": "Be honest."}[a])
        np.testing.assert_allclose(t[f"gap_{a}"].to_numpy(), want, rtol=1e-4, atol=1e-5)
    if mode == "separate":
        np.testing.assert_allclose(t["gap_holistic"].to_numpy(), _direct(root / "holistic", pairs),
                                   rtol=1e-4, atol=1e-5)
    assert run.manifest["rows_in"] == 40 and run.manifest["rows_scored"] == 40


@pytest.mark.timeout(300)
def test_resume_and_killed_actor_give_identical_table(ray_local, rm_sets, tmp_path):
    pairs = synthetic_pairs(60, aspects=ASPECTS, seed=6)
    clean = score_pairs(pairs, str(rm_sets["separate"]), str(tmp_path / "clean"),
                        ScoreConfig(shard_rows=15), echo=lambda *_: None).table().sort_by("id")
    # interrupted after 2 shards, then resumed: finished shards are not rescored
    out = tmp_path / "resumed"
    part = score_pairs(pairs, str(rm_sets["separate"]), str(out),
                       ScoreConfig(shard_rows=15, stop_after_shards=2), echo=lambda *_: None)
    assert part.manifest == {"complete": False}
    first = {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.parquet")}
    assert len(first) == 2
    logs = []
    done = score_pairs(pairs, str(rm_sets["separate"]), str(out), ScoreConfig(shard_rows=15),
                       echo=logs.append)
    assert any("2 already scored, 2 to score" in line for line in logs)
    assert done.manifest["run"]["newly_scored"] == 30
    assert {p.name: p.stat().st_mtime_ns for p in (out / "shards").glob("*.parquet")
            if p.name in first} == first
    assert done.table().sort_by("id").equals(clean)
    # an actor killed mid-run is restarted and its shard retried
    killed = score_pairs(pairs, str(rm_sets["separate"]), str(tmp_path / "killed"),
                         ScoreConfig(shard_rows=15, fail_once_at_batch=2), echo=lambda *_: None)
    assert (tmp_path / "killed" / "_injected_failure").exists()
    assert killed.table().sort_by("id").equals(clean)
    # with no restarts allowed, the same death ends the run in one line; a re-run resumes
    with pytest.raises(PdrayError, match=r"^\[score\] scoring actor restarts used up "
                                         r"\(max_restarts=0\)[^\n]*a re-run resumes$"):
        score_pairs(pairs, str(rm_sets["separate"]), str(tmp_path / "capped"),
                    ScoreConfig(shard_rows=15, fail_once_at_batch=2, max_restarts=0),
                    echo=lambda *_: None)
    resumed = score_pairs(pairs, str(rm_sets["separate"]), str(tmp_path / "capped"),
                          ScoreConfig(shard_rows=15), echo=lambda *_: None)
    assert resumed.table().sort_by("id").equals(clean)


@pytest.mark.timeout(300)
def test_malformed_rows_are_recorded(ray_local, rm_sets, tmp_path):
    pairs = synthetic_pairs(10, aspects=ASPECTS, seed=8).select(
        ["id", "aspect", "prompt", "chosen", "rejected"]).to_pylist()
    pairs[3]["chosen"] = ""
    pairs[7]["prompt"] = None
    t = pa.Table.from_pylist(pairs)
    run = score_pairs(t, str(rm_sets["separate"]), str(tmp_path / "s"), ScoreConfig(shard_rows=4),
                      echo=lambda *_: None)
    f = run.failures().sort_by("id").to_pylist()
    assert [r["id"] for r in f] == sorted([pairs[3]["id"], pairs[7]["id"]])
    assert {r["error"] for r in f} == {"field 'chosen': empty text", "field 'prompt': null"}
    m = run.manifest
    assert (m["rows_in"], m["rows_scored"], m["rows_failed"]) == (10, 8, 2)


def test_token_batches_cut_padding():
    """The scorer buckets every chosen and rejected input by its own length: less padding than
    batches in input order, and every batch within the token budget."""
    rng = np.random.default_rng(0)
    lens = rng.integers(5, 500, 800)
    batches = token_batches(lens, batch_tokens=8192)
    assert sorted(i for b in batches for i in b) == list(range(800))

    def padding(groups):
        return 1 - sum(lens[g].sum() for g in groups) / sum(len(g) * lens[g].max() for g in groups)
    size = len(batches[0])
    naive = [list(range(i, min(i + size, 800))) for i in range(0, 800, size)]
    assert padding(batches) < 0.1 < padding(naive) - 0.2
    assert all(len(b) * lens[b].max() <= 8192 for b in batches if len(b) > 1)


@pytest.mark.parametrize("mode", ["separate", "multi_head", "all_in_one"])
def test_packed_scorer_loop_equals_the_hf_scorer(rm_sets, mode):
    """The vLLM scorers' shared loop (one engine call per model folder on every chosen and
    rejected input, chosen first) gives the HF scorer's logits when its engine is the same
    model run one unpadded sequence at a time."""
    from pdray.scoring.backends import HFScorer, PackedScorer

    class OneByOne(PackedScorer):
        def __init__(self, rm_set, rm_dir, cfg):
            self._setup(rm_set, rm_dir, cfg)

        def _engine(self, folder):
            return AutoModelForSequenceClassification.from_pretrained(folder).eval()

        def _logits(self, folder, ids):
            with torch.inference_mode():
                return np.concatenate([self.engines[folder](torch.tensor([x])).logits.numpy()
                                       for x in ids]).astype(np.float64)

    rm_set = RewardModelSet.load(rm_sets[mode])
    cfg = ScoreConfig(batch_tokens=1024)
    pairs = synthetic_pairs(12, aspects=ASPECTS, seed=2)
    args = [pairs[c].to_pylist() for c in ("prompt", "chosen", "rejected")]
    seen = {"packed": [], "hf": []}
    one = OneByOne(rm_set, str(rm_sets[mode]), cfg)
    packed, pstats = one.score(*args, progress=lambda d, t: seen["packed"].append((d, t)))
    hf, hstats = HFScorer(rm_set, str(rm_sets[mode]), cfg).score(
        *args, progress=lambda d, t: seen["hf"].append((d, t)))
    passes = len(one.plan)                      # model folders: one engine call each
    one.pairs_per_call = 5                      # and in calls of 5 pairs: the same logits
    chunked, _ = one.score(*args)
    one.pairs_per_call = 128
    assert passes == {"separate": 3, "multi_head": 1, "all_in_one": 2}[mode], one.plan
    # one engine call per folder for 12 pairs (< pairs_per_call); progress in pairs × passes
    assert seen["packed"] == [(12 * (p + 1), 12 * passes) for p in range(passes)]
    hf_done = [d for d, _ in seen["hf"]]        # pairs × passes, one call per forward pass
    assert {t for _, t in seen["hf"]} == {12 * passes} and hf_done[-1] == 12 * passes
    assert hf_done == sorted(hf_done) and len(hf_done) == hstats["forward_passes"]
    assert set(packed) == set(hf) == set(chunked)
    for k in hf:
        np.testing.assert_array_equal(chunked[k][0], packed[k][0])
        np.testing.assert_array_equal(chunked[k][1], packed[k][1])
        np.testing.assert_allclose(packed[k][0], hf[k][0], atol=1e-4)
        np.testing.assert_allclose(packed[k][1], hf[k][1], atol=1e-4)
        assert np.abs(packed[k][0] - packed[k][1]).max() > 0  # chosen and rejected differ
    assert pstats["tokens"] == hstats["tokens"] and pstats["padded"] == pstats["tokens"]
