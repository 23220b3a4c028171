"""The consensus label and the downstream accuracy against it (issue #23), hand-computed."""

import math

import numpy as np
import pyarrow as pa
import pytest

from pdray.align.downstream import consensus_report, headline, headline_line
from pdray.align.evaluate import accuracy_report
from pdray.data.stats import conflict_flags
from pdray.intervals import wilson_interval
from pdray.schema import pairs_from_rows


def _pku(rows):
    """PKU-SafeRLHF-shaped pairs: two aspects, a 0/1 rating per side for each."""
    return pairs_from_rows([
        {"id": f"p{i}", "aspect": asp, "prompt": "q", "chosen": "a", "rejected": "b",
         "chosen_ratings": {"helpful": h, "harmless": s},
         "rejected_ratings": {"helpful": 1 - h, "harmless": 1 - s}}
        for i, (asp, h, s) in enumerate(rows)])


def test_consensus_label_on_pku_shaped_pairs():
    # p0: both labels prefer the chosen → consensus agrees (+1)
    # p1: labelled by helpful, but harmless prefers the rejected → mean gap 0: a tie
    # p2: labelled by harmless, both agree → +1
    t = _pku([("helpful", 1, 1), ("helpful", 1, 0), ("harmless", 1, 1)])
    assert conflict_flags(t).tolist() == [1.0, 0.0, 1.0]


def test_consensus_label_by_rating_means_and_ties():
    t = pairs_from_rows([
        {"id": "a", "aspect": "x", "prompt": "q", "chosen": "c", "rejected": "r",
         "chosen_ratings": {"x": 4, "y": 1}, "rejected_ratings": {"x": 2, "y": 4}},  # 2.5 vs 3
        {"id": "b", "aspect": "x", "prompt": "q", "chosen": "c", "rejected": "r",
         "chosen_ratings": {"x": 4, "y": 3}, "rejected_ratings": {"x": 2, "y": 3}},  # 3.5 vs 2.5
        {"id": "c", "aspect": "x", "prompt": "q", "chosen": "c", "rejected": "r",
         "chosen_ratings": {"x": 4, "y": 1}, "rejected_ratings": {"x": 3, "y": 2}}])  # tie
    assert conflict_flags(t).tolist() == [-1.0, 1.0, 0.0]


def test_consensus_report_hand_computed():
    # flags: agree, agree, conflict, conflict, tie, no ratings
    flags = np.array([1, 1, -1, -1, 0, np.nan])
    margin = np.array([0.5, -0.2, -0.1, 0.3, 9.0, 9.0])
    r = consensus_report(margin, flags)
    # correct: p0 (agree, >0), p2 (conflict, <0) → 2 of the 4 labelled pairs
    assert r["consensus_accuracy"] == 0.5 and r["n_consensus"] == 4
    assert r["consensus_ci"] == pytest.approx(list(wilson_interval(0.5, 4)))
    assert r["consensus_pairs_accuracy"] == 0.5 and r["n_consensus_pairs"] == 2
    assert r["conflict_pairs_accuracy"] == 0.5 and r["n_conflict_pairs"] == 2
    assert (r["n_consensus_ties"], r["n_no_ratings"]) == (1, 1)
    # a zero margin is never correct, on either side
    z = consensus_report(np.zeros(2), np.array([1.0, -1.0]))
    assert z["consensus_accuracy"] == 0.0
    with pytest.raises(ValueError, match="2 margins but 1 flags"):
        consensus_report(np.zeros(2), np.ones(1))


def test_accuracy_report_carries_both_labels_and_the_headline():
    t = _pku([("helpful", 1, 1), ("helpful", 1, 0), ("harmless", 1, 1), ("harmless", 0, 1)])
    # flags: +1, 0 (tie), +1, 0 (tie); the own label prefers the chosen everywhere
    rep = accuracy_report(np.array([0.4, -0.1, -0.3, 0.2]), t)
    assert rep["own_label_accuracy"] == rep["accuracy"] == 0.5
    assert rep["mean_abs_margin"] == pytest.approx(0.25)     # (0.4 + 0.1 + 0.3 + 0.2) / 4
    assert rep["consensus_accuracy"] == 0.5 and rep["n_consensus"] == 2
    assert rep["n_consensus_ties"] == 2 and math.isnan(rep["conflict_pairs_accuracy"])
    name, v, ci = headline(rep)
    assert (name, v) == ("consensus accuracy", 0.5) and ci == rep["consensus_ci"]
    rep["mean_generated_length"] = 12.25
    assert headline_line(rep) == ("consensus accuracy 0.500 (95% CI 0.09–0.91, n=2); "
                                  "own-label 0.500; AL 12.2 tokens")


def test_headline_falls_back_to_the_own_label_without_ratings():
    t = pa.table({"id": ["a", "b", "c"], "aspect": ["x"] * 3, "prompt": ["q"] * 3,
                  "chosen": ["c"] * 3, "rejected": ["r"] * 3})
    rep = accuracy_report(np.array([1.0, 1.0, -1.0]), t)
    assert rep["n_consensus"] == 0 and rep["n_no_ratings"] == 3
    name, v, _ = headline(rep)
    assert name == "own-label accuracy" and v == pytest.approx(2 / 3)
    assert headline_line(rep).startswith("own-label accuracy 0.667 (95% CI")
