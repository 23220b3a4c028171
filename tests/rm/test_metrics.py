"""Reward-model metrics: hand-computed accuracy / conflict / length correlation, the cross-aspect
matrix of a tiny saved set checked against a direct per-text forward pass, and ``pdray rm eval``."""

import json

import numpy as np
import pytest
import torch
from transformers import AutoModelForSequenceClassification, AutoTokenizer

from pdray.models.formatting import pair_text
from pdray.models.tiny import build_tiny_reward_model
from pdray.rm import conflict_matrix, evaluate_set
from pdray.rm.metrics import (
    accuracy,
    length_correlation,
    length_only_accuracy,
    length_slope,
    quality_gate,
    wilson_interval,
)
from pdray.rm.model_set import RewardModelSet
from pdray.schema import pairs_from_rows


def test_hand_computed_metrics():
    assert accuracy(np.array([0.5, -1.0, 2.0, 0.0])) == 0.625        # a tie counts one half
    lo, hi = wilson_interval(0.5, 20)                                  # hand-computed Wilson
    assert (lo, hi) == (pytest.approx(0.2993, abs=1e-4), pytest.approx(0.7007, abs=1e-4))
    assert length_only_accuracy(np.array([3, -1, 5, 0])) == 0.625
    assert length_slope(2 * np.arange(5.0) + 1, np.arange(5.0)) == pytest.approx(2.0)
    assert np.isnan(accuracy(np.array([])))
    # margins = 2·Δlen + 1 → correlation exactly 1; reversed → −1
    dl = np.array([-3.0, 0.0, 4.0, 10.0])
    assert length_correlation(2 * dl + 1, dl) == pytest.approx(1.0)
    assert length_correlation(-dl, dl) == pytest.approx(-1.0)
    assert np.isnan(length_correlation(np.ones(4), dl))
    assert conflict_matrix({"a": {"a": 0.9, "b": 0.25}}) == {"a": {"a": pytest.approx(0.1),
                                                                   "b": 0.75}}


ROWS = [("helpfulness", "How do I boil an egg?", "Put it in boiling water for nine minutes.", "No."),
        ("helpfulness", "Name a prime.", "Seven is prime.", "Nine, I think, or maybe ten."),
        ("helpfulness", "Say hi.", "Hi!", "Hello there, how are you doing today, friend?"),
        ("honesty", "Are you human?", "No, I am an AI model.", "Yes, I am a person."),
        ("honesty", "What is 2+2?", "4", "5, definitely, and I am sure of it."),
        ("honesty", "Capital of France?", "Paris.", "Lyon.")]


def _pairs():
    return pairs_from_rows([{"id": f"p{i}", "aspect": a, "prompt": p, "chosen": c, "rejected": r}
                            for i, (a, p, c, r) in enumerate(ROWS)])


def _direct_margin(folder, table, head=0):
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModelForSequenceClassification.from_pretrained(folder).eval()
    out = []
    for p, c, r in zip(table["prompt"].to_pylist(), table["chosen"].to_pylist(),
                       table["rejected"].to_pylist()):
        with torch.no_grad():
            rc, rr = (model(**tok(pair_text(tok, p, y), return_tensors="pt", truncation=True,
                                  max_length=128)).logits[0, head].item() for y in (c, r))
        out.append(rc - rr)
    return np.array(out)


@pytest.mark.timeout(120)
def test_cross_matrix_on_tiny_sets(tmp_path):
    t = _pairs()
    aspects = ["helpfulness", "honesty"]
    root = tmp_path / "sep"
    for i, a in enumerate(aspects):
        build_tiny_reward_model(root / a, seed=10 + i)
    RewardModelSet(mode="separate", aspects=aspects, paths={a: a for a in aspects},
                   max_length=128, length_debias="penalty", rho=0.0).save(root)
    m = evaluate_set(root, t, echo=lambda *_: None)
    assert set(m["cross_accuracy"]) == set(aspects) and m["heldout_pairs"] == 6
    for k in aspects:
        for j in aspects:
            sub = t.filter(np.array([a == j for a in t["aspect"].to_pylist()]))
            want = float(np.mean(_direct_margin(root / k, sub) > 0))
            assert m["cross_accuracy"][k][j] == pytest.approx(want)
            assert m["conflict"][k][j] == pytest.approx(1 - want)
        assert m["own"][k]["n"] == 3
        assert m["own"][k]["heldout_accuracy"] == m["cross_accuracy"][k][k]
    saved = json.loads((root / "metrics.json").read_text())
    assert saved["cross_accuracy"] == m["cross_accuracy"]
    assert RewardModelSet.load(root).extra["metrics"]["own"].keys() == set(aspects)

    # multi-head: model k is head k of one folder
    mh = tmp_path / "mh"
    build_tiny_reward_model(mh / "multi_head", seed=3, num_labels=2)
    RewardModelSet(mode="multi_head", aspects=aspects, paths={a: "multi_head" for a in aspects},
                   max_length=128, length_debias="penalty", rho=0.0).save(mh)
    m2 = evaluate_set(mh, t, echo=lambda *_: None, write=False)
    for h, k in enumerate(aspects):
        want = float(np.mean(_direct_margin(mh / "multi_head", t.slice(3 * h, 3), head=h) > 0))
        assert m2["cross_accuracy"][k][k] == pytest.approx(want)
    assert not (mh / "metrics.json").exists()


@pytest.mark.timeout(120)
def test_rm_eval_cli(tmp_path):
    from typer.testing import CliRunner

    from pdray.cli import app
    from pdray.io import write_table

    root = tmp_path / "sep"
    for i, a in enumerate(["helpfulness", "honesty"]):
        build_tiny_reward_model(root / a, seed=10 + i)
    RewardModelSet(mode="separate", aspects=["helpfulness", "honesty"],
                   paths={"helpfulness": "helpfulness", "honesty": "honesty"}, max_length=128,
                   length_debias="penalty", rho=0.0).save(root)
    write_table(_pairs(), str(tmp_path / "held.parquet"))
    res = CliRunner().invoke(app, ["rm", "eval", str(root), str(tmp_path / "held.parquet"),
                                   "--output", str(tmp_path / "m.json")])
    assert res.exit_code == 0, res.output
    assert "held-out accuracy" in res.output and "accuracy (row: model, column: data)" in res.output
    m = json.loads((tmp_path / "m.json").read_text())
    assert set(m["conflict"]["honesty"]) == {"helpfulness", "honesty"}
    bad = CliRunner().invoke(app, ["rm", "eval", str(tmp_path / "nothing"), str(tmp_path / "held.parquet")])
    assert bad.exit_code != 0 and "not a reward-model set" in str(bad.output) + str(bad.exception)


@pytest.mark.timeout(120)
def test_quality_gate_warns_for_an_untrained_model(tmp_path):
    """A reward model that learned nothing (head at zero: every gap exactly 0) is flagged: its
    accuracy interval holds 0.5, and ρ·|Δlen| dominates its gaps under the penalty mode."""
    from safetensors.torch import load_file, save_file

    aspects = ["helpfulness", "honesty"]
    root = tmp_path / "untrained"
    for a in aspects:
        build_tiny_reward_model(root / a, seed=1)
        f = root / a / "model.safetensors"
        w = load_file(str(f))
        save_file({k: (v * 0 if k.startswith("score") else v) for k, v in w.items()}, str(f),
                  metadata={"format": "pt"})
    RewardModelSet(mode="separate", aspects=aspects, paths={a: a for a in aspects}, rho=0.01,
                   length_debias="penalty", max_length=128).save(root)
    m = evaluate_set(root, _pairs(), echo=lambda *_: None)
    for a in aspects:
        assert m["own"][a]["heldout_accuracy"] == 0.5 and m["own"][a]["zero_gap_share"] == 1.0
    w = m["warnings"]
    assert any("'helpfulness'" in x and "not above chance" in x for x in w)
    assert any("ρ·|Δlen|" in x and "'honesty'" in x for x in w)
    # a trained-looking model passes: accuracy 0.9 on 100 pairs, above length-only
    ok = {"a": {"heldout_accuracy": 0.9, "n": 100, "accuracy_ci95": wilson_interval(0.9, 100),
                "length_only_accuracy": 0.6, "median_abs_margin": 2.0, "median_abs_dlen": 30}}
    assert quality_gate(ok, 0.001, "penalty") == []
    ok["a"]["length_only_accuracy"] = 0.95
    assert "does not beat the length-only" in quality_gate(ok, 0.001, "learned")[0]
