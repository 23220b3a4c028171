"""Generation with a tiny causal LM (cache skips re-runs), the RM judge, evaluate() and the CLI."""

import json

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from pdray.eval import EvalConfig, GenerationConfig, RewardModelJudge, evaluate, generate_answers
from pdray.eval.pairwise import JudgeRequest

PROMPTS = ["What is the capital of France?", "How do I bake bread?", "Count to five."]


@pytest.mark.timeout(180)
def test_generate_and_cache(tiny_lm, tmp_path):
    gen = GenerationConfig(max_new_tokens=6, batch_size=2)
    ids = ["a", "b", "c"]
    logs = []
    out, stats = generate_answers(str(tiny_lm), ids, PROMPTS, gen, tmp_path, logs.append)
    assert stats == {"generated": 3, "cached": 0, "backend": "hf"}
    assert len(out) == 3 and all(isinstance(o, str) for o in out)
    assert any("generated 3/3" in line for line in logs)
    # greedy is deterministic: unbatched generation gives the same answers
    solo, _ = generate_answers(str(tiny_lm), ids[:1], PROMPTS[:1],
                               gen.model_copy(update={"batch_size": 1}), None)
    assert solo[0] == out[0]
    again, stats2 = generate_answers(str(tiny_lm), ids, PROMPTS, gen, tmp_path)
    assert again == out and stats2["generated"] == 0 and stats2["cached"] == 3
    # a changed parameter or prompt text is a cache miss
    _, s3 = generate_answers(str(tiny_lm), ids, PROMPTS,
                             gen.model_copy(update={"max_new_tokens": 3}), tmp_path)
    assert s3["generated"] == 3
    _, s4 = generate_answers(str(tiny_lm), ids, [PROMPTS[0], PROMPTS[1], "Count to six."], gen,
                             tmp_path)
    assert s4 == {"generated": 1, "cached": 2, "backend": "hf"}


def test_vllm_missing_is_a_clear_error(tiny_lm, tmp_path):
    import importlib.util

    from pdray.errors import PdrayError

    if importlib.util.find_spec("vllm"):
        pytest.skip("vllm installed")
    with pytest.raises(PdrayError, match="needs vLLM"):
        generate_answers(str(tiny_lm), ["a"], ["hi"], GenerationConfig(backend="vllm"), tmp_path)


@pytest.mark.timeout(120)
def test_rm_judge_deterministic_scores(tiny_rm):
    judge = RewardModelJudge(str(tiny_rm), max_length=128)
    r = judge.rewards(["q", "q"], ["alpha answer", "beta answer, longer text"])
    req = [JudgeRequest("q", "alpha answer", "beta answer, longer text"),
           JudgeRequest("q", "beta answer, longer text", "alpha answer")]
    replies = judge.judge(req)
    s1, s2 = judge.score(r[0]), judge.score(r[1])
    assert replies[0].text.splitlines()[0] == f"{s1:.2f} {s2:.2f}"
    assert replies[1].text.splitlines()[0] == f"{s2:.2f} {s1:.2f}"
    assert 1.0 <= s1 <= 10.0 and judge.score(0.0) == 5.5
    assert judge.score(100.0) == 10.0 and judge.score(-100.0) == 1.0
    assert judge.judge(req)[0].text == replies[0].text  # deterministic


@pytest.mark.timeout(240)
def test_evaluate_end_to_end_and_cli(tiny_lm, tiny_rm, tmp_path, shared_data):
    cfg = EvalConfig(sets=["vicuna", "koala"], limit=3, data_dir=str(shared_data / "eval"),
                     judge="rm", judge_model=str(tiny_rm), max_new_tokens=5,
                     cache_dir=str(tmp_path / "cache"))
    judge = RewardModelJudge(str(tiny_rm), max_length=256)
    # baseline answers from a file: a fixed short reply per prompt
    base = tmp_path / "base.jsonl"
    ids = ["vicuna_1", "vicuna_2", "vicuna_3", "koala_0", "koala_1", "koala_2"]
    base.write_text("".join(json.dumps({"id": i, "answer": "I do not know."}) + "\n" for i in ids))
    res = evaluate(str(tiny_lm), str(base), cfg.sets, judge, tmp_path / "out", cfg,
                   echo=lambda m: None)
    table = pq.read_table(res.judgments_path).to_pylist()
    assert len(table) == 6 and {r["set"] for r in table} == {"vicuna", "koala"}
    for name, s in res.sets.items():
        rows = [r for r in table if r["set"] == name]
        w = sum(r["outcome"] == "win" for r in rows)
        l_ = sum(r["outcome"] == "loss" for r in rows)
        assert (s["win"], s["loss"], s["n"]) == (w, l_, 3)
        assert s["win_score"] == pytest.approx((w - l_) / 3 + 1)  # no failures with an RM judge
        assert s["AL_baseline"] == 4.0
    for r in table:  # the RM judge is order-consistent: the sums decide
        t = r["target_score_1"] + r["target_score_2"]
        b = r["baseline_score_1"] + r["baseline_score_2"]
        assert r["outcome"] == ("win" if t > b else "loss" if t < b else "tie")
    summary = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert summary["AW"] == pytest.approx((res.sets["vicuna"]["win_score"]
                                           + res.sets["koala"]["win_score"]) / 2)
    assert summary["judge"].startswith("rm:")

    from pdray.cli import app

    out2 = tmp_path / "cli"
    result = CliRunner().invoke(app, [
        "eval", "--model", str(tiny_lm), "--baseline", "reference", "--sets", "alpaca_eval",
        "--judge", "rm", "--judge-model", str(tiny_rm), "--output", str(out2), "--limit", "4",
        "--max-new-tokens", "5", f"data_dir={shared_data / 'eval'}", "rm_judge_max_length=256"])
    assert result.exit_code == 0, result.output
    assert "AW" in result.output and "alpaca_eval" in result.output
    doc = json.loads((out2 / "eval.json").read_text())
    s = doc["sets"]["alpaca_eval"]
    assert s["n"] == 4 and "WR" in s and "LC" in s and 0 <= s["WR"] <= 100
    assert doc["config"]["limit"] == 4 and doc["generation"]["max_new_tokens"] == 5
    # a bad override names the key
    bad = CliRunner().invoke(app, ["eval", "--model", "m", "--output", str(out2), "judge=gpt"])
    assert bad.exit_code != 0 and "judge='gpt'" in str(bad.exception)


@pytest.mark.timeout(180)
def test_evaluate_models_pipeline_entry(tiny_lm, tiny_rm, tmp_path, shared_data):
    """The pipeline's eval stage: each strategy's model vs the 'random' one. A model judged
    against itself gives identical answers, equal RM scores, all ties: win score exactly 1."""
    from pdray.errors import ConfigError
    from pdray.eval import evaluate_models

    cfg = EvalConfig(sets=["vicuna"], limit=2, data_dir=str(shared_data / "eval"), judge="rm",
                     judge_model=str(tiny_rm), max_new_tokens=4, rm_judge_max_length=128)
    res = evaluate_models({"pd": str(tiny_lm), "random": str(tiny_lm)}, cfg, tmp_path)
    assert set(res) == {"pd"} and res["pd"]["baseline"] == "random"
    s = res["pd"]["sets"]["vicuna"]
    assert (s["tie"], s["win"], s["loss"], s["win_score"]) == (2, 0, 0, 1.0)
    assert res["pd"]["AW"] == 1.0
    with pytest.raises(ConfigError, match="eval.baseline is required"):
        evaluate_models({"pd": str(tiny_lm)}, cfg, tmp_path / "x")
    with pytest.raises(ConfigError, match="eval.judge_model"):
        evaluate_models({"pd": str(tiny_lm), "random": str(tiny_lm)},
                        cfg.model_copy(update={"judge_model": None}), tmp_path / "y")
