"""Data checks, config presets and the implicit-reward evaluation (no Ray)."""

import math

import numpy as np
import pyarrow as pa
import pytest
import torch

from pdray.align import DPOConfig, deepspeed_config, implicit_reward_accuracy, sequence_logprobs
from pdray.align.data import check_rows, split_eval, to_dpo_rows
from pdray.align.evaluate import accuracy_report
from pdray.align.train import infer_kappa
from pdray.config import load_config
from pdray.errors import ConfigError, DataError
from tests.align.lm_helpers import perturbed_copy

RT = pa.map_(pa.string(), pa.float64())


def _pairs(n=4, **extra):
    cols = {"id": [f"p{i}" for i in range(n)], "prompt": [f"Question {i}?" for i in range(n)],
            "chosen": [f"A good answer {i}." for i in range(n)],
            "rejected": [f"Bad {i}." for i in range(n)], "aspect": ["a", "a", "b", "b"][:n]}
    cols.update(extra)
    return pa.table(cols)


def test_check_rows_names_file_row_field():
    t = _pairs().set_column(2, "chosen", pa.array(["x", "y", "  ", "z"]))
    with pytest.raises(DataError, match=r"^sel\.parquet: row 2, field 'chosen': missing or empty"):
        check_rows(t, file="sel.parquet")
    with pytest.raises(DataError, match=r"field 'pd'.*DMPO needs the per-pair PD column"):
        check_rows(_pairs(), need_pd=True, file="x.parquet")
    with pytest.raises(DataError, match=r"row 1, field 'pd': PD must be a finite number, got nan"):
        check_rows(_pairs(pd=[0.1, float("nan"), 0.0, 1.0]), need_pd=True)
    with pytest.raises(DataError, match=r"row 3, field 'prompt'"):
        check_rows(_pairs().set_column(1, "prompt", pa.array(["a", "b", "c", None])))


def test_to_dpo_rows_conversational_pd_and_prompt_truncation(tiny_lm):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    assert tok.chat_template
    t = _pairs(pd=[-1.0, 0.5, 0.0, 2.0])
    rows = to_dpo_rows(t, tok, need_pd=True)
    assert rows["prompt"][1] == [{"role": "user", "content": "Question 1?"}]
    assert rows["chosen"][0] == [{"role": "assistant", "content": "A good answer 0."}]
    assert rows["pd"] == [-1.0, 0.5, 0.0, 2.0]
    long = "one two three four five six seven eight nine ten eleven twelve"
    t2 = _pairs(1).set_column(1, "prompt", pa.array([long]))
    p = to_dpo_rows(t2, tok, max_prompt_length=3)["prompt"][0][0]["content"]
    assert len(tok(p, add_special_tokens=False)["input_ids"]) <= 3 and long.endswith(p.strip())


def test_split_eval_is_seeded_and_disjoint():
    t = pa.table({"id": [f"r{i}" for i in range(20)]})
    tr, ev = split_eval(t, 0.25, seed=3)
    assert (tr.num_rows, ev.num_rows) == (15, 5)
    assert not set(tr["id"].to_pylist()) & set(ev["id"].to_pylist())
    assert split_eval(t, 0.25, seed=3)[1]["id"].to_pylist() == ev["id"].to_pylist()
    assert split_eval(t, 0.0, seed=3)[1] is None
    with pytest.raises(DataError, match="eval_fraction"):
        split_eval(pa.table({"id": ["a"]}), 0.9, seed=0)


def test_accuracy_report_by_aspect_and_conflict_hand_computed():
    # ratings: pair 0 all aspects agree; pair 1 label 'a' but mean says rejected (conflict);
    # pair 2 agrees; pair 3 conflict.
    cr = [{"a": 5, "b": 4}, {"a": 4, "b": 1}, {"a": 3, "b": 5}, {"a": 1, "b": 3}]
    rr = [{"a": 1, "b": 2}, {"a": 3, "b": 5}, {"a": 3, "b": 2}, {"a": 5, "b": 2}]
    t = _pairs(chosen_ratings=pa.array(cr, RT), rejected_ratings=pa.array(rr, RT))
    rep = accuracy_report(np.array([1.0, -1.0, 2.0, 0.5]), t)
    assert rep["accuracy"] == 0.75 and rep["n"] == 4 and rep["mean_margin"] == pytest.approx(0.625)
    assert rep["by_aspect"] == {"a": 0.5, "b": 1.0}
    assert rep["conflicting"] == 0.5 and rep["n_conflicting"] == 2
    assert rep["non_conflicting"] == 1.0 and rep["n_non_conflicting"] == 2
    assert "conflicting" not in accuracy_report(np.array([1.0, -1.0, 2.0, 0.5]), _pairs())


def test_implicit_reward_accuracy_matches_direct_margins(tiny_lm, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_lm)
    ref = AutoModelForCausalLM.from_pretrained(tiny_lm).eval()
    perturbed_copy(tiny_lm, tmp_path / "pol", tok)
    pol = AutoModelForCausalLM.from_pretrained(tmp_path / "pol")
    t = _pairs()
    p, c, r = (t[k].to_pylist() for k in ("prompt", "chosen", "rejected"))
    with torch.no_grad():
        m = 0.5 * ((sequence_logprobs(pol.eval(), tok, p, c) - sequence_logprobs(ref, tok, p, c))
                   - (sequence_logprobs(pol, tok, p, r) - sequence_logprobs(ref, tok, p, r)))
    got = implicit_reward_accuracy(tmp_path / "pol", tiny_lm, t, beta=0.5, batch_tokens=24)
    assert got["n"] == 4 and got["n_dropped"] == 0
    assert got["accuracy"] == pytest.approx(float((m > 0).float().mean()))
    assert got["mean_margin"] == pytest.approx(float(m.mean()), rel=1e-4, abs=1e-6)
    assert abs(got["mean_margin"]) > 1e-3  # the perturbed policy really differs from the ref
    # a pair whose prompt fills max_length is left out (TRL drops it from training)
    long = pa.table({"id": ["p4"], "prompt": ["word " * 60], "chosen": ["yes"],
                     "rejected": ["no"], "aspect": ["a"]})
    cut = implicit_reward_accuracy(tmp_path / "pol", tiny_lm, pa.concat_tables([t, long]),
                                   beta=0.5, max_length=64)
    assert (cut["n"], cut["n_dropped"]) == (4, 1)
    assert cut["mean_margin"] == pytest.approx(got["mean_margin"], rel=1e-6)
    same = implicit_reward_accuracy(tiny_lm, tiny_lm, t)
    assert same["mean_margin"] == 0.0 and same["accuracy"] == 0.0  # ties are not correct


def test_config_presets_yaml_and_deepspeed(tmp_path):
    p = DPOConfig.paper()
    assert (p.epochs, p.lr, p.batch_size, p.warmup_ratio, p.scheduler, p.beta) == \
        (1, 5e-7, 32, 0.1, "cosine", 0.1)
    assert DPOConfig.tiny().model == "tiny" and DPOConfig().trust_remote_code is False
    y = tmp_path / "dpo.yaml"
    y.write_text("loss: dmpo\nbeta: 0.2\nlora: {r: 8, lora_alpha: 16}\n")
    cfg = load_config(DPOConfig, y, ["num_workers=2", "deepspeed=zero3", "lora.r=4"],
                      base=DPOConfig.tiny().model_dump())
    assert (cfg.loss, cfg.beta, cfg.num_workers, cfg.lora, cfg.model) == \
        ("dmpo", 0.2, 2, {"r": 4, "lora_alpha": 16}, "tiny")
    ds = deepspeed_config(cfg.deepspeed)
    assert ds["zero_optimization"]["stage"] == 3 and ds["train_micro_batch_size_per_gpu"] == "auto"
    assert deepspeed_config("zero2")["zero_optimization"]["stage"] == 2
    with pytest.raises(ConfigError, match="loss"):
        load_config(DPOConfig, None, ["loss=ipo"])


def test_kappa_from_selection_manifest_or_aspects():
    assert infer_kappa(_pairs(), None) == 2
    assert infer_kappa(_pairs(), {"q": {"a": 1.0, "b": 2.0, "c": 0.5}}) == 3
    assert infer_kappa(pa.table({"prompt": ["x"]}), None) == 1
    assert math.isfinite(DPOConfig().beta)
