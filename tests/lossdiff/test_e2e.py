"""End to end on real PKU-SafeRLHF pairs with tiny models: warm-up -> Ray Data scoring ->
band selection -> selected.parquet + manifest + report (JSON, PNG) + comparison with PD."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest
from typer.testing import CliRunner

from pdray.io import read_table, write_pairs
from pdray.lossdiff import (
    SCORE_COLUMNS,
    LossDiffConfig,
    lossdiff_irm_selection,
    read_logprob_scores,
    score_logprobs,
    warmup,
)


@pytest.mark.slow
@pytest.mark.timeout(900)  # two Ray Train warm-ups and a Ray Data scoring run on 2 cores
def test_warmup_score_select_report(tmp_path, shared_data, ray_local):
    from pdray.data import load_pku_saferlhf
    from pdray.models.tiny import build_tiny_causal_lm

    pairs = load_pku_saferlhf(str(shared_data / "preference" / "pku_saferlhf_500.jsonl")).table
    pairs = pairs.slice(0, 60)  # 30 source rows, two aspects each
    ref = build_tiny_causal_lm(tmp_path / "ref", texts=pairs["prompt"].to_pylist()[:30])
    cfg = LossDiffConfig(reference=str(ref), val_size=12, beta=0.1, num_actors=1,
                         cpus_per_actor=0.5, batch_tokens=4096, max_length=256, shard_rows=32,
                         warmup={"learning_rate": 5e-3, "batch_size": 8,
                                 "per_device_batch_size": 4, "max_steps": 2, "max_length": 256})
    w = warmup(pairs, cfg, tmp_path / "warm")
    assert len(w.train_ids) == 48 and len(w.val_ids) == 12
    assert set(w.train_ids).isdisjoint(w.val_ids)
    assert (w.policy_dir / "model.safetensors").exists() and (w.aux_dir / "model.safetensors").exists()
    assert w.manifest["policy_metrics"]["steps"] == 2
    # both runs went through pdray.align.train_dpo and trained on every pair they were given
    for run, n in (("policy", 48), ("aux", 12)):
        m = json.loads((tmp_path / "warm" / run / "manifest.json").read_text())
        assert (m["train_rows"], m["eval_rows"]) == (n, 0)
        assert (m["config"]["batch_size"], m["config"]["grad_accum"]) == (4, 2)
        assert m["config"]["cpus_per_worker"] == 1.0 and m["config"]["model"] == str(ref)

    # one unscorable row rides along: it must be recorded, not dropped
    bad = pa.table({c: [pairs[c][0].as_py()] for c in ("aspect", "prompt", "rejected")})
    bad = bad.append_column("id", pa.array(["broken"])).append_column("chosen", pa.array(["  "]))
    table = pa.concat_tables([pairs.select(["id", "aspect", "prompt", "chosen", "rejected"]),
                              bad.select(["id", "aspect", "prompt", "chosen", "rejected"])])
    scores = score_logprobs(table, w.policy_dir, ref, w.aux_dir, tmp_path / "scores", cfg)
    assert tuple(scores.column_names) == SCORE_COLUMNS
    assert scores.num_rows == 60 and sorted(scores["id"].to_pylist()) == sorted(pairs["id"].to_pylist())
    fails = read_table(tmp_path / "scores" / "failures.parquet")
    assert fails["id"].to_pylist() == ["broken"] and "empty text" in fails["error"][0].as_py()
    man = json.loads((tmp_path / "scores" / "manifest.json").read_text())
    assert (man["rows_in"], man["rows_scored"], man["rows_failed"]) == (61, 60, 1)
    assert len(man["shards"]) == 2
    # the warmed-up models moved away from the reference, and the scores follow the formulas
    s = {c: scores[c].to_numpy() for c in SCORE_COLUMNS[2:]}
    assert np.abs(s["policy_chosen_logp"] - s["ref_chosen_logp"]).max() > 1e-3
    assert np.abs(s["aux_chosen_logp"] - s["ref_chosen_logp"]).max() > 1e-3
    m_pol = (s["policy_chosen_logp"] - s["ref_chosen_logp"]) - (s["policy_rejected_logp"] - s["ref_rejected_logp"])
    np.testing.assert_allclose(s["irm"], 0.1 * m_pol, rtol=1e-9, atol=1e-12)
    # a re-run resumes: every shard is already there, nothing is rescored
    again = score_logprobs(table, w.policy_dir, ref, w.aux_dir, tmp_path / "scores", cfg)
    assert again.num_rows == 60
    assert json.loads((tmp_path / "scores" / "manifest.json").read_text())["run"]["newly_scored"] == 0

    # selection through the CLI, with the pairs (CP) and a PD table (hybrids)
    from pdray.cli import app
    from pdray.selection.pd import pd_from_gaps, true_gaps

    write_pairs(pairs, tmp_path / "pairs.parquet")
    ids = np.asarray(pairs["id"].to_pylist(), dtype=object)
    gaps, own = true_gaps(pairs, ids)
    pd_tab = pa.table({"id": ids.tolist(), "pd": pd_from_gaps(gaps, own, gamma=0.95).pd})
    pd_path = tmp_path / "pd.parquet"
    from pdray.io import write_table

    write_table(pd_tab, pd_path)
    out = tmp_path / "sel"
    r = CliRunner().invoke(app, ["lossdiff", "select", str(tmp_path / "scores"), "-o", str(out),
                                 "--data", str(tmp_path / "pairs.parquet"), "--pd", str(pd_path)])
    assert r.exit_code == 0, r.output
    assert "keep rate" in r.output and "pd_irm" in r.output
    sel = read_table(out / "selected.parquet")
    want = lossdiff_irm_selection(read_logprob_scores(tmp_path / "scores"))  # default band
    assert sel["id"].to_pylist() == want.selected_ids
    assert {"prompt", "chosen", "rejected", "lossdiff", "irm"} <= set(sel.column_names)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["strategy"] == "lossdiff_irm"
    assert manifest["counts"]["in"] == 60 and manifest["counts"]["selected"] == sel.num_rows
    assert manifest["info"]["keep_rate"] == pytest.approx(sel.num_rows / 60)
    assert 0.57 <= manifest["info"]["keep_rate"] < 0.65  # the default keep rate (the paper's)
    low, high = manifest["info"]["band"]
    assert high == pytest.approx(1 - low) and 0 < low < 0.5
    rep = json.loads((out / "report" / "report.json").read_text())
    assert rep["keep_rate"] == manifest["info"]["keep_rate"]
    cmp = rep["comparison"]["strategies"]
    assert set(cmp) == {"lossdiff_band", "irm_band", "lossdiff_irm", "pd", "pd_irm",
                        "pd_irm_rank_sum"}
    assert cmp["pd"]["kept"] == 18 and cmp["pd"]["cp"] == 1.0  # true PD keeps consensus pairs
    assert all(0 <= v["cp"] <= 1 for v in cmp.values())
    for png in ("hist_lossdiff.png", "hist_irm.png", "scatter.png"):
        assert (out / "report" / png).read_bytes()[:4] == b"\x89PNG"
    # the selection core reads the same score columns and keeps the same pairs
    r2 = CliRunner().invoke(app, ["select", str(tmp_path / "scores"), "--strategy",
                                  "lossdiff_irm", "-o", str(tmp_path / "sel_core")])
    assert r2.exit_code == 0, r2.output
    core = read_table(tmp_path / "sel_core" / "selected.parquet")
    assert sorted(core["id"].to_pylist()) == want.selected_ids
    assert pc.sum(pc.is_in(sel["id"], value_set=core["id"])).as_py() == sel.num_rows
