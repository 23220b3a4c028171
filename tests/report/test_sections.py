"""The report's reader-facing sections: captioned figures (one gap figure per aspect), the
examples of kept and dropped pairs, the data counts and the downstream DPO / eval tables."""

import html
import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from pdray.length_modes import NO_LENGTH
from pdray.report import build_report
from pdray.report.datacounts import data_counts
from pdray.report.downstream import dpo_html, dpo_table, eval_html, pick_baseline
from pdray.report.examples import shorten
from pdray.selection import compute_pd, select
from tests.selection.helpers import hand_scores, pku_scores

FIGURE = re.compile(r"<figure><img src=\"([^\"]+)\"[^>]*><figcaption>(.*?)</figcaption></figure>",
                    re.DOTALL)


@pytest.fixture(scope="module")
def pku_report(pku_pairs, tmp_path_factory):
    scores = pku_scores(pku_pairs, noise=0.3)
    same = np.zeros(scores.num_rows, dtype=bool)
    same[[3, 50, 700]] = True
    scores = scores.append_column("same_input", pa.array(same))
    sels = {s: select(scores, s, length=NO_LENGTH, budget=0.3, pairs=pku_pairs)
            for s in ("pd", "random", "high")}
    out = tmp_path_factory.mktemp("rep")
    data = {"rows": 1200, "train_rows": 1000, "test_rows": 200, "dropped": 2, "quarantined": 7,
            "quarantine": "/data/bad.parquet", "source": "pku.jsonl", "aspects": ["x"]}
    page = build_report(scores, sels, out, pairs=pku_pairs, data_manifest=data, gamma=0.95,
                        length=NO_LENGTH, ranked=compute_pd(scores, length=NO_LENGTH, gamma=0.95))
    return scores, sels, page.read_text(), json.loads((out / "metrics.json").read_text()), out


def test_every_figure_is_captioned_in_words(pku_report):
    _, _, text, _, out = pku_report
    figs = FIGURE.findall(text)
    assert len(figs) == text.count("<img") == 6   # PD, 2 aspects, Δlen, 2 budget curves
    for src, caption in figs:
        assert (out / src).stat().st_size > 1000
        words = re.sub(r"<[^>]+>", "", caption)
        assert len(words.split()) > 25 and src.rsplit(".", 1)[0] not in words
    assert [s for s, _ in figs if s.startswith("gap_")] == ["gap_harmlessness.png",
                                                           "gap_helpfulness.png"]
    gap_caps = dict(figs)
    assert "helpfulness reward model" in gap_caps["gap_helpfulness.png"]
    # 1000 PKU pairs: 500 labelled per aspect
    assert "on the 500 pairs labelled for harmlessness" in gap_caps["gap_harmlessness.png"]


def test_examples_are_the_pairs_the_selection_ranked(pku_report, pku_pairs):
    scores, sels, text, m, _ = pku_report
    ex = m["examples"]
    assert ex["selection"] == "pd"
    kept = set(sels["pd"].selected_ids)
    chosen_pd = dict(zip(sels["pd"].table["id"].to_pylist(), sels["pd"].table["pd"].to_pylist()))
    pdr = compute_pd(scores, length=NO_LENGTH, gamma=0.95)
    pd = dict(zip(scores["id"].to_pylist(), pdr.pd))
    for side in ("selected", "dropped"):
        cons, conf = ex[side]["consensual"], ex[side]["conflicting"]
        assert len(cons) == len(conf) == 5
        on_side = sorted(pd[i] for i in pd if (i in kept) == (side == "selected"))
        assert [r["pd"] for r in cons] == pytest.approx(on_side[:5], abs=1e-12)
        assert [r["pd"] for r in conf] == pytest.approx(on_side[::-1][:5], abs=1e-12)
        for r in cons + conf:
            assert (r["id"] in kept) == (side == "selected")
            if side == "selected":     # the very PD the selection wrote beside the id
                assert r["pd"] == pytest.approx(chosen_pd[r["id"]], abs=1e-12)
            other = next(k for k in r["gaps"] if k != r["aspect"])
            assert r["pd"] == pytest.approx(-r["gaps"][other], abs=1e-12)   # Eq. 15, κ = 2
            assert r["gaps"][other] == pytest.approx(
                np.clip(scores[f"gap_{other}"].to_numpy()[_row(scores, r["id"])]
                        / sels["pd"].manifest["q"][other], -1, 1), abs=1e-12)
    # kept pairs are consensual, dropped ones less so: the boundary shows in the examples
    assert ex["selected"]["conflicting"][0]["pd"] <= ex["dropped"]["consensual"][0]["pd"]
    # the texts: shortened and escaped in the page
    prompts = dict(zip(pku_pairs["id"].to_pylist(), pku_pairs["prompt"].to_pylist()))
    first = ex["dropped"]["conflicting"][0]
    assert first["prompt"] == shorten(prompts[first["id"]])
    assert html.escape(first["prompt"]) in text and f"{first['pd']:+.3f}" in text
    assert all(len(r[c]) <= 200 for s in ("selected", "dropped") for k in ex[s].values()
               for r in k for c in ("prompt", "chosen", "rejected"))
    assert text.count("<table class=\"examples\">") == 4


def _row(scores, i):
    return scores["id"].to_pylist().index(i)


def test_examples_by_hand_escape_the_text(tmp_path):
    s = hand_scores()    # PD (γ = 1) = (0, −7/12, 0.75, 0); pd at λ = 0.5 keeps z2, z1
    pairs = pa.table({"id": ["z1", "z2", "z3", "z4"], "aspect": ["A", "B", "C", "A"],
                      "prompt": ["<b>bold</b> & co", "p2", "p3", "p4"],
                      "chosen": ["y" * 300, "c2", "c3", "c4"],
                      "rejected": ["r1", "r2", "r3", "same"]})
    page = build_report(s, {"pd": select(s, "pd", length=NO_LENGTH, budget=0.5, gamma=1.0)},
                        tmp_path / "r", gamma=1.0, pairs=pairs, budgets=(0.5,), length=NO_LENGTH,
                        ranked=compute_pd(s, length=NO_LENGTH, gamma=1.0))
    ex = json.loads((tmp_path / "r" / "metrics.json").read_text())["examples"]
    assert [(r["id"], r["pd"]) for r in ex["selected"]["consensual"]] == \
        [("z2", pytest.approx(-7 / 12)), ("z1", 0.0)]
    assert [r["id"] for r in ex["selected"]["conflicting"]] == ["z1", "z2"]
    assert [(r["id"], r["pd"]) for r in ex["dropped"]["conflicting"]] == \
        [("z3", pytest.approx(0.75)), ("z4", 0.0)]
    assert [r["id"] for r in ex["dropped"]["consensual"]] == ["z4", "z3"]
    z1 = ex["selected"]["conflicting"][0]
    assert z1["chosen"] == "y" * 199 + "…" and z1["aspect"] == "A"
    text = page.read_text()
    assert "&lt;b&gt;bold&lt;/b&gt; &amp; co" in text and "<b>bold</b>" not in text


def test_shorten():
    assert shorten("a  b\n\t c") == "a b c" and shorten(None) == ""
    assert shorten("word " * 100, width=12) == "word word w…"
    assert len(shorten("x" * 201)) == 200 and shorten("x" * 200) == "x" * 200


def test_data_counts_are_shown(pku_report, pku_pairs):
    _, _, text, m, _ = pku_report
    d = m["data"]
    prompts = Counter(pku_pairs["prompt"].to_pylist())
    same_text = sum(c == r for c, r in zip(pku_pairs["chosen"].to_pylist(),
                                           pku_pairs["rejected"].to_pylist()))
    assert d["quarantined"] == 7 and d["dropped"] == 2 and d["rows"] == 1200
    assert d["same_input"] == 3 == m["same_input"]
    assert d["prompts"] == len(prompts)
    assert d["shared_prompt_pairs"] == sum(n for n in prompts.values() if n > 1)
    assert d["identical_responses"] == same_text
    assert "aspects" not in d
    assert ("<td class=\"text\">bad source rows quarantined (set aside, counted)</td><td>7</td>"
            in text)
    assert "<td>3</td>" in text and "/data/bad.parquet" in text


def test_data_counts_without_manifest_or_pairs():
    assert data_counts(hand_scores()) == {"scored": 4}


def test_dpo_table_from_a_manifest():
    metrics = {
        "pd": {"steps": 40, "train_loss": 0.61,
               "heldout": {"consensus_accuracy": 0.712, "consensus_ci": [0.65, 0.77], "n": 200,
                           "conflict_pairs_accuracy": 0.4, "mean_generated_length": 88.5}},
        "random": {"steps": 40, "train_loss": 0.66,
                   "heldout": {"consensus_accuracy": 0.652, "consensus_ci": [0.59, 0.71],
                               "n": 200}},
        "high": {"heldout": {"accuracy": 0.5, "n": 150, "conflicting": 0.45}},
    }
    t = dpo_table(metrics)
    assert t["baseline"] == "random" and t["headline"] == "consensus_accuracy"
    assert [r["strategy"] for r in t["rows"]] == ["random", "pd", "high"]
    assert [r["baseline"] for r in t["rows"]] == [True, False, False]
    assert t["rows"][1]["delta"] == pytest.approx(0.06) and t["rows"][2]["delta"] is None
    # high's legacy "conflicting" is not shown beside consensus accuracies; its "accuracy" is
    # the own-label accuracy
    assert [k for k, _ in t["columns"]] == [
        "consensus_accuracy", "consensus_ci", "conflict_pairs_accuracy", "own_label_accuracy",
        "n", "mean_generated_length", "steps", "train_loss"]
    page = dpo_html(t)
    rows = re.findall(r"<tr[^>]*>(.*?)</tr>", page)
    assert len(rows) == 4
    assert rows[1] == ("<td class=\"text\">random <b>(baseline)</b></td><td>0.652</td>"
                       "<td>0.590–0.710</td><td>—</td><td>—</td><td>200</td><td>—</td>"
                       "<td>40</td><td>0.660</td><td>—</td>")
    assert rows[2] == ("<td class=\"text\">pd</td><td>0.712</td><td>0.650–0.770</td>"
                       "<td>0.400</td><td>—</td><td>200</td><td>88.500</td><td>40</td>"
                       "<td>0.610</td><td>+0.060</td>")
    assert rows[3] == ("<td class=\"text\">high</td><td>—</td><td>—</td><td>—</td>"
                       "<td>0.500</td><td>150</td><td>—</td><td>—</td><td>—</td><td>—</td>")


def test_dpo_table_of_an_older_manifest_and_of_the_current_keys():
    old = {"random": {"heldout": {"accuracy": 0.6, "n": 50, "conflicting": 0.3,
                                  "non_conflicting": 0.7, "mean_sample_tokens": 31.0}},
           "pd": {"heldout": {"accuracy": 0.64, "n": 50, "conflicting": 0.2,
                              "non_conflicting": 0.8, "mean_sample_tokens": 40.0}}}
    t = dpo_table(old)
    assert t["headline"] == "own_label_accuracy"
    assert [k for k, _ in t["columns"]] == ["own_label_accuracy", "n", "non_conflicting",
                                           "conflicting", "mean_generated_length"]
    assert t["rows"][1]["values"] == {"own_label_accuracy": 0.64, "n": 50, "non_conflicting": 0.8,
                                      "conflicting": 0.2, "mean_generated_length": 40.0}
    assert t["rows"][1]["delta"] == pytest.approx(0.04)
    # what align.evaluate writes today: accuracy and own_label_accuracy are one number, one column
    new = {"random": {"heldout": {"accuracy": 0.6, "own_label_accuracy": 0.6, "n": 50,
                                  "consensus_accuracy": 0.55, "n_consensus": 40}}}
    assert [k for k, _ in dpo_table(new)["columns"]] == [
        "consensus_accuracy", "n_consensus", "own_label_accuracy", "n"]


def test_dpo_baseline_choice():
    assert pick_baseline(["pd", "random", "overall"]) == "overall"
    assert pick_baseline(["pd", "all", "random"]) == "all"
    assert pick_baseline(["pd", "high"]) is None
    assert pick_baseline(["pd", "random"], "pd") == "pd"
    t = dpo_table({"pd": {"heldout": {"accuracy": 0.7}}, "high": {"heldout": {"accuracy": 0.6}}})
    assert t["baseline"] is None and all(r["delta"] is None for r in t["rows"])
    assert "vs baseline" not in dpo_html(t)


def test_downstream_sections_in_the_page(tmp_path):
    s = hand_scores()
    dpo = {"random": {"heldout": {"accuracy": 0.55, "n": 20}},
           "pd": {"heldout": {"accuracy": 0.65, "n": 20}}}
    ev = {"pd": {"AW": 1.1, "baseline": "random", "dir": "x",
                 "sets": {"hh": {"n": 10, "win": 5, "loss": 4, "tie": 1, "win_score": 1.1}}}}
    one = {"pd": select(s, "pd", length=NO_LENGTH, budget=0.5)}
    pd = {"ranked": compute_pd(s, length=NO_LENGTH, gamma=0.95), "length": NO_LENGTH,
          "gamma": 0.95}
    page = build_report(s, one, tmp_path / "r", budgets=(0.5,), dpo_metrics=dpo,
                        eval_results=ev, **pd).read_text()
    assert "<h2>Downstream: DPO</h2>" in page and "random <b>(baseline)</b>" in page
    assert "<td>0.650</td><td>20</td><td>+0.100</td>" in page
    assert "<h2>Downstream: pairwise evaluation</h2>" in page
    assert ("<td class=\"text\">hh</td><td>10</td><td>5</td><td>4</td><td>1</td><td>1.100</td>"
            "<td>1.100</td>") in page
    m = json.loads((tmp_path / "r" / "metrics.json").read_text())
    assert m["dpo"]["baseline"] == "random" and m["eval"]["pd"]["AW"] == 1.1
    assert eval_html(None) == "" and "Downstream" not in build_report(
        s, one, tmp_path / "r2", budgets=(0.5,), **pd).read_text()


def test_stage_run_passes_data_dpo_and_eval(pku_pairs, tmp_path):
    """The pipeline's report stage hands the data manifest's counts, the dpo manifest's metrics
    and (when given) the eval manifest's results to the page."""
    from pdray.align.stage import DPOManifest
    from pdray.data.stage import DataManifest
    from pdray.eval.stage import EvalManifest
    from pdray.io import write_pairs, write_table
    from pdray.report.stage import run
    from pdray.scoring.stage import ScoreManifest
    from pdray.selection.api import write_selection
    from pdray.selection.config import SelectStageConfig
    from pdray.selection.stage import SelectManifest

    scores = pku_scores(pku_pairs, noise=0.3)
    write_table(scores, tmp_path / "scores.parquet")
    write_pairs(pku_pairs, tmp_path / "train.parquet")
    dirs = {s: str(write_selection(select(scores, s, length=NO_LENGTH, budget=0.3,
                                          pairs=pku_pairs), tmp_path / "sel" / s))
            for s in ("random", "pd")}
    pdr = compute_pd(scores, length=NO_LENGTH, gamma=0.95)
    write_table(pa.table({"id": scores["id"], "pd": pdr.pd}), tmp_path / "pd.parquet")
    data = DataManifest(dir=str(tmp_path), pairs="", train=str(tmp_path / "train.parquet"),
                        test="", rows=1000, train_rows=1000, test_rows=0, aspects=[],
                        source="pku", quarantined=4, quarantine="/q.parquet")
    inputs = {
        "data": data,
        "score": ScoreManifest.from_path(tmp_path / "scores.parquet", NO_LENGTH),
        "select": SelectManifest(dir=str(tmp_path), strategies=list(dirs), selections=dirs,
                                 counts={}, length=NO_LENGTH, gamma=0.95, q=pdr.q,
                                 pd=str(tmp_path / "pd.parquet")),
        "dpo": DPOManifest(dir=str(tmp_path), models={"pd": "m/pd", "random": "m/random"},
                           metrics={"pd": {"heldout": {"consensus_accuracy": 0.8, "n": 10}},
                                    "random": {"heldout": {"consensus_accuracy": 0.7, "n": 10}}}),
        "eval": EvalManifest(dir=str(tmp_path), results={"pd": {"AW": 1.2, "baseline": "random",
                                                               "sets": {}}})}
    m = run(SelectStageConfig(), inputs, tmp_path / "rep", echo=lambda s: None)
    page = Path(m.html).read_text(encoding="utf-8")
    assert ("<td class=\"text\">bad source rows quarantined (set aside, counted)</td><td>4</td>"
            in page)
    assert "random <b>(baseline)</b></td><td>0.700</td>" in page and "<td>+0.100</td>" in page
    assert ("<td class=\"text\">pd</td><td class=\"text\">random</td><td class=\"text\">—</td>"
            "<td>—</td><td>—</td><td>—</td><td>—</td><td>—</td><td>1.200</td>") in page
    metrics = json.loads((tmp_path / "rep" / "metrics.json").read_text())
    assert metrics["examples"]["selection"] == "pd"
    assert len(metrics["examples"]["selected"]["consensual"]) == 5
