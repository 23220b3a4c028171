import json

import numpy as np
import pyarrow as pa
import pytest
from typer.testing import CliRunner

from pdray.cli import app
from pdray.io import read_table, write_pairs, write_table
from pdray.length_modes import NO_LENGTH, LengthTerm
from pdray.report import build_report, selection_metrics
from pdray.report.metrics import jaccard
from pdray.selection import compute_pd, select
from tests.selection.helpers import hand_scores, pku_scores

runner = CliRunner()


def test_metrics_by_hand():
    # hand_scores with γ = 1: PD = (0, −7/12, 0.75, 0); Δlen = (0, 4, 0, 0) with dlen2 = 4
    s = hand_scores(dlen2=4)
    sels = {"pd": select(s, "pd", length=NO_LENGTH, budget=0.5, gamma=1.0),          # z2, z1
            "high": select(s, "high", length=NO_LENGTH, budget=0.5, gamma=1.0)}      # z3, z1
    m = selection_metrics(s, sels)
    assert m["strategies"]["pd"]["mean_dlen"] == pytest.approx(2.0)
    assert m["strategies"]["high"]["mean_dlen"] == pytest.approx(0.0)
    assert m["all"]["mean_dlen"] == pytest.approx(1.0)
    assert m["overlap"]["pd|high"] == pytest.approx(1 / 3)           # {z1} / {z1, z2, z3}
    assert jaccard(["a"], ["b"]) == 0.0 and "cp" not in m["strategies"]["pd"]


def test_report_files_and_metrics(pku_pairs, tmp_path):
    scores = pku_scores(pku_pairs, noise=0.3)
    sels = {s: select(scores, s, length=NO_LENGTH, budget=0.3, pairs=pku_pairs) for s in ("pd", "random", "high")}
    page = build_report(scores, sels, tmp_path / "rep", pairs=pku_pairs, length=NO_LENGTH,
                        gamma=0.95, ranked=compute_pd(scores, length=NO_LENGTH, gamma=0.95))
    text = page.read_text()
    assert "CP" in text and "budget_curve.png" in text
    for png in ("pd_hist.png", "gap_helpfulness.png", "gap_harmlessness.png", "dlen.png",
                "budget_curve.png", "budget_dlen.png"):
        assert (tmp_path / "rep" / png).stat().st_size > 1000
    m = _strict_json((tmp_path / "rep" / "metrics.json").read_text())
    st = m["strategies"]
    assert st["pd"]["cp"] > st["random"]["cp"] > st["high"]["cp"]
    # 234 of the 1000 PKU pairs carry disagreeing labels; with two binary aspects their
    # mean-of-aspects preference is a tie (0.5 vs 0.5): neither consensus nor conflict
    assert m["all"]["cp"] == pytest.approx(0.766) and m["all"]["conflict"] == 0.0
    assert st["high"]["cp"] == pytest.approx(66 / 300)
    assert m["true_pd_ceiling_cp"] == 1.0
    assert 0 < m["overlap"]["pd|random"] < 1 and m["overlap"]["pd|high"] == 0.0
    curve = m["budget_curve"]["cp"]
    assert curve["true_pd"][0] == 1.0 and curve["pd"][-1] == pytest.approx(0.766)   # λ = 1: all
    assert set(m["q"]) == {"helpfulness", "harmlessness"}


def _strict_json(text: str):
    def no_constants(c):
        raise AssertionError(f"non-standard JSON constant {c}")
    return json.loads(text, parse_constant=no_constants)


def test_report_without_ground_truth(tmp_path):
    s = hand_scores(dlen2=4)
    page = build_report(s, {"pd": select(s, "pd", length=NO_LENGTH, budget=0.5)}, tmp_path / "r",
                        gamma=1.0, length=NO_LENGTH, budgets=(0.1, 0.5, 1.0),
                        ranked=compute_pd(s, length=NO_LENGTH, gamma=1.0))
    m = _strict_json((tmp_path / "r" / "metrics.json").read_text())
    # PD (γ = 1) = (0, −7/12, 0.75, 0); λ = 0.1 keeps round(0.4) = 0 rows → null
    bc = m["budget_curve"]
    assert bc["mean_pd"]["pd"] == [None, pytest.approx(-7 / 24), pytest.approx(1 / 24)]
    assert bc["mean_pd"]["high"][1] == pytest.approx(0.375)            # z3, z1
    assert bc["mean_dlen"]["pd"][1] == pytest.approx(2.0) and "cp" not in bc
    assert (tmp_path / "r" / "budget_curve.png").exists()
    assert "true_pd_ceiling_cp" not in m and "cp" not in m["strategies"]["pd"]
    assert m["pd_mean"] == pytest.approx(1 / 24) == float(np.mean(compute_pd(s, length=NO_LENGTH,
                                                                             gamma=1.0).pd))
    assert page.exists() and (tmp_path / "r" / "pd_hist.png").exists()


def test_report_cli(pku_pairs, tmp_path):
    write_table(pku_scores(pku_pairs, noise=0.3), tmp_path / "scores.parquet")
    write_pairs(pku_pairs, tmp_path / "pairs.parquet")
    r = runner.invoke(app, ["report", str(tmp_path / "scores.parquet"), "--data",
                            str(tmp_path / "pairs.parquet"), "--output", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    assert "CP ceiling (true_pd): 1.000" in r.output
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert list(m["strategies"]) == ["pd", "random", "high", "mid"]


def test_report_cli_takes_the_selection_config(pku_pairs, tmp_path):
    """``pdray report`` reads the settings the way every verb does: ``--config`` YAML <
    options < ``key=value`` overrides; a bad value is one line and exit 2, before any work."""
    write_table(pku_scores(pku_pairs, noise=0.3), tmp_path / "scores.parquet")
    (tmp_path / "sel.yaml").write_text("budget: 0.5\nseed: 3\n")
    n = pku_pairs.num_rows
    r = runner.invoke(app, ["report", str(tmp_path / "scores.parquet"), "budget=0.2",
                            "--config", str(tmp_path / "sel.yaml"), "--strategies", "pd,random",
                            "--output", str(tmp_path / "rep")])
    assert r.exit_code == 0, r.output
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert {s: v["kept"] for s, v in m["strategies"].items()} == \
        {"pd": round(0.2 * n), "random": round(0.2 * n)}
    r = runner.invoke(app, ["report", str(tmp_path / "scores.parquet"), "--budget", "0.1",
                            "budget=0.2", "--output", str(tmp_path / "rep2")])
    assert r.exit_code == 0, r.output   # the override wins over the option (every verb)
    m = json.loads((tmp_path / "rep2" / "metrics.json").read_text())
    assert m["strategies"]["pd"]["kept"] == round(0.2 * n)
    r = runner.invoke(app, ["report", str(tmp_path / "scores.parquet"), "budget=1.5",
                            "--output", str(tmp_path / "rep3")])
    assert r.exit_code == 2 and "budget=1.5" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "rep3").exists()


def test_verdict_first_lines_by_hand():
    from pdray.report.metrics import verdict

    below = {"strategies": {"pd": {"cp": 0.70}}, "all": {"cp": 0.766}}
    assert verdict(below)[0].startswith("PD is NOT above random: CP(pd) 0.700 ≤ CP(random, expected) 0.766")
    above = {"strategies": {"pd": {"cp": 0.883}}, "all": {"cp": 0.766},
             "true_pd_ceiling_cp": 1.0, "pd_dlen_corr": 0.8, "same_input": 3,
             "reward_models": {"warnings": ["aspect 'a': weak"]}}
    v = verdict(above)
    assert v[0] == ("PD is above random: CP(pd) 0.883 vs CP(random, expected) 0.766 "
                    "(gap to the true-PD ceiling closed: +0.50)")
    assert "strongly correlated with Δlen (+0.80)" in v[1] and v[2].startswith("3 pairs")
    assert v[3] == "aspect 'a': weak"
    assert verdict({"strategies": {"pd": {"cp": None}}, "all": {}})[0].startswith("No ground truth")


@pytest.mark.parametrize("mode", ["learned", "penalty", "poe", "none"])
def test_report_shows_the_pd_that_selected(pku_pairs, tmp_path, mode):
    """Issue #24: the report's q_k, PD histogram, mean PD and budget curve are the select
    stage's, in every length mode — with ``learned`` after the fitted ρ̂_k the selection
    recorded (the report used to compute a PD of its own, without that fit). Both run as
    ``pdray select`` / ``report`` and ``pdray run`` do: the select stage, then the report stage."""
    from pdray.report import stage as report_stage
    from pdray.scoring.stage import ScoreManifest
    from pdray.selection import SelectionResult
    from pdray.selection import stage as select_stage
    from pdray.selection.config import SelectStageConfig

    scores = pku_scores(pku_pairs, noise=0.3)
    text = {r["id"]: r for r in pku_pairs.select(["id", "chosen", "rejected"]).to_pylist()}
    for side in ("chosen", "rejected"):   # real response lengths (words) for the length term
        lens = pa.array([len(text[i][side].split()) for i in scores["id"].to_pylist()], pa.int64())
        scores = scores.set_column(scores.column_names.index(f"{side}_len"), f"{side}_len", lens)
    dlen = np.asarray(scores["chosen_len"], float) - np.asarray(scores["rejected_len"], float)
    assert np.abs(dlen).max() > 10
    k = next(c for c in scores.column_names if c.startswith("gap_"))
    biased = pa.array(scores[k].to_numpy() + 0.05 * dlen)    # a length-biased aspect
    scores = scores.set_column(scores.column_names.index(k), k, biased)
    write_table(scores, tmp_path / "scores.parquet")
    inputs = {"data": None, "lossdiff": None, "score": ScoreManifest.from_path(
        tmp_path / "scores.parquet", LengthTerm.of(mode, 0.001))}
    cfg = SelectStageConfig(strategies=["pd", "random"], budget=0.3)
    ran = select_stage.run(cfg, inputs, tmp_path / "sel", lambda *_: None)
    report_stage.run(cfg, {**inputs, "select": ran}, tmp_path / "rep", lambda *_: None)
    m = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    sel = SelectionResult.load(ran.selections["pd"])
    # the term the selection used travels with it: fitted ρ̂_k exactly when learned
    assert sel.length == ran.length and (ran.length.fitted is not None) == (mode == "learned")
    assert m["q"] == sel.manifest["q"] == ran.q
    stage_pd = dict(zip(*[read_table(ran.pd)[c].to_pylist() for c in ("id", "pd")]))
    pd = np.asarray([stage_pd[i] for i in scores["id"].to_pylist()])
    kept = sel.table["pd"].to_pylist()               # the PD the pd selection ranked by
    assert kept == [stage_pd[i] for i in sel.selected_ids]
    assert max(kept) <= np.quantile(pd, 0.3) + 1e-12  # the most negative PD (Eq. 10)
    assert m["pd_mean"] == pytest.approx(float(np.mean(pd)), rel=1e-12)
    counts, edges = np.histogram(pd, bins=50)
    assert m["pd_histogram"] == {"counts": counts.tolist(), "edges": edges.tolist()}
    i = m["budget_curve"]["budgets"].index(0.3)
    assert m["budget_curve"]["mean_pd"]["pd"][i] == pytest.approx(np.mean(kept), rel=1e-12)
    if mode == "learned":   # and it is not the unfitted PD the report used to show
        raw = compute_pd(scores, length=LengthTerm.of(mode, 0.001), gamma=0.95)
        assert m["q"] != pytest.approx(raw.q, rel=1e-6)
