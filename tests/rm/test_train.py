import json

import pyarrow as pa
import pytest
from transformers import AutoModelForSequenceClassification

from pdray.data import synthetic_pairs
from pdray.errors import DataError, PdrayError
from pdray.rm import RMConfig, train_reward_models
from pdray.rm.model_set import RewardModelSet

FAST = dict(backbone="tiny", lr=3e-3, batch_size=16, max_length=96, cpus_per_worker=0.25,
            sample_ratio=0.6, save_steps=1)


@pytest.mark.timeout(600)
def test_separate_concurrent_with_failure_and_resume(ray_local, tmp_path):
    pairs = synthetic_pairs(300, aspects=["helpfulness", "honesty"], seed=1)
    cfg = RMConfig(**FAST, max_steps=4, fail_once_at_step=2)
    logs = []
    s = train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=logs.append)
    assert s.mode == "separate" and s.aspects == ["helpfulness", "honesty"]
    units = s.extra["units"]
    for a in s.aspects:
        m = units[a]["train"]
        assert m["steps"] == 4 and m["resumed"] is True       # crashed at step 2, resumed
        model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "rm" / a)
        assert model.config.num_labels == 1
    # the two aspects train concurrently: both runs were launched before either finished
    launched = [units[a]["launched_at"] for a in s.aspects]
    finished = [units[a]["finished_at"] for a in s.aspects]
    assert max(launched) < min(finished)
    met = json.loads((tmp_path / "rm" / "metrics.json").read_text())
    assert set(met["cross_accuracy"]) == {"helpfulness", "honesty"}
    assert all(0 <= v <= 1 for row in met["cross_accuracy"].values() for v in row.values())
    assert RewardModelSet.load(tmp_path / "rm").rho == 0.001
    # the per-aspect manifest: data hash, config, ρ, τ, p_r, achieved D⁺/D⁻ shares, metrics, path
    man = json.loads((tmp_path / "rm" / "honesty" / "manifest.json").read_text())
    assert man["rho"] == 0.001 and man["tau"] == 1.0 and man["sample_ratio"] == 0.6
    assert len(man["data_hash"]) >= 16 and man["config"]["backbone"] == "tiny"
    sp = man["sampling"]
    assert sp["sampled_plus"] + sp["sampled_minus"] == sp["sampled"] == man["pairs"]
    assert sp["sampled_plus_share"] + sp["sampled_minus_share"] == pytest.approx(1.0)
    assert man["metrics"]["honesty"]["heldout_accuracy"] == met["own"]["honesty"]["heldout_accuracy"]
    assert man["model_path"] == str((tmp_path / "rm" / "honesty").resolve())
    assert any("[rm] 2 training units" in line for line in logs)
    # a re-run with the same data and config skips both units
    again = []
    train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=again.append)
    assert sum("already trained" in line for line in again) == 2


@pytest.mark.timeout(600)
def test_multi_head_all_in_one_and_ablations(ray_local, tmp_path):
    pairs = synthetic_pairs(240, aspects=["helpfulness", "honesty"], seed=2)
    s = train_reward_models(pairs, RMConfig(**FAST, max_steps=2, mode="multi_head",
                                            train_holistic=True, train_no_debias=True),
                            str(tmp_path / "mh"), echo=lambda *_: None)
    m = AutoModelForSequenceClassification.from_pretrained(tmp_path / "mh" / "multi_head")
    assert m.config.num_labels == 2 and m.config.id2label == {0: "helpfulness", 1: "honesty"}
    assert s.holistic_path == "holistic" and (tmp_path / "mh" / "holistic" / "config.json").exists()
    nd = RewardModelSet.load(tmp_path / "mh" / "no_debias")
    assert nd.rho == 0.0 and nd.length_debias == "none"
    assert nd.extra["units"]["multi_head"]["sampling"]["helpfulness"]["balanced"] is False
    # all_in_one through the CLI: `pdray rm train PAIRS --output DIR key=value ...`
    from typer.testing import CliRunner

    from pdray.cli import app
    from pdray.io import write_table

    write_table(pairs, str(tmp_path / "pairs.parquet"))
    res = CliRunner().invoke(app, ["rm", "train", str(tmp_path / "pairs.parquet"), "--output",
                                   str(tmp_path / "aio"), "mode=all_in_one", "max_steps=2"]
                             + [f"{k}={v}" for k, v in FAST.items()])
    assert res.exit_code == 0, res.output
    assert "reward-model set (all_in_one, aspects helpfulness, honesty)" in res.output
    a = RewardModelSet.load(tmp_path / "aio")
    assert a.paths == {"helpfulness": "all_in_one", "honesty": "all_in_one"}
    aio = AutoModelForSequenceClassification.from_pretrained(tmp_path / "aio" / "all_in_one")
    assert aio.config.num_labels == 1
    assert (tmp_path / "aio" / "all_in_one" / "model.safetensors").exists()
    assert a.system_prompts["honesty"].startswith("You are an honest AI assistant")


def test_too_few_pairs_and_bad_rows_are_clear_errors(ray_local, tmp_path):
    pairs = synthetic_pairs(20, aspects=["helpfulness", "honesty"], seed=3)
    with pytest.raises(PdrayError, match="aspect '.*': only .* training pairs after sampling"):
        train_reward_models(pairs, RMConfig(**FAST, min_pairs=50), str(tmp_path / "x"))
    bad = pairs.set_column(pairs.schema.get_field_index("chosen"), "chosen",
                           pa.array([""] + pairs["chosen"].to_pylist()[1:]))
    with pytest.raises(DataError) as e:
        train_reward_models(bad, RMConfig(**FAST), str(tmp_path / "y"))
    assert "row 0" in str(e.value) and "chosen" in str(e.value)


def test_step_floor_gives_the_promised_steps_on_40_pairs(ray_local, tmp_path):
    """40 pairs (about 20 per aspect), batch 8: one epoch is 3 steps; the floor makes it 12."""
    pairs = synthetic_pairs(40, aspects=["helpfulness", "honesty"], seed=4)
    cfg = RMConfig(**{**FAST, "batch_size": 8}, min_steps=12, dev_fraction=0.0,
                   holdout_fraction=0.0, length_debias="learned")
    s = train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=lambda *_: None)
    for a in s.aspects:
        t = s.extra["units"][a]["train"]
        assert t["planned_steps"] == 12 and t["steps"] == 12
        assert len(t["learned_rho_per_token"]) == 1            # ρ̂_k of the learned mode
        sp = s.extra["units"][a]["sampling"]
        assert sp["sampled"] == sp["n"] and sp["n"] < 30     # p_r 0.6 floored to all of D_k
    from pdray.rm.train import plan_steps

    assert plan_steps(60_000, RMConfig(batch_size=32)) == 1875   # large D_k: one epoch
    assert plan_steps(250, RMConfig(batch_size=16)) == 60         # small D_k: the floor


@pytest.mark.timeout(600)
def test_deleted_unit_is_retrained_from_scratch_and_the_set_republished(ray_local, tmp_path):
    import shutil

    pairs = synthetic_pairs(120, aspects=["helpfulness", "honesty"], seed=5)
    cfg = RMConfig(**FAST, max_steps=3)
    root = tmp_path / "rm"
    train_reward_models(pairs, cfg, str(root), echo=lambda *_: None)
    shutil.rmtree(root / "honesty")                    # a deleted (or half-written) unit
    logs = []
    s = train_reward_models(pairs, cfg, str(root), echo=logs.append)
    assert any("[rm:helpfulness] already trained" in x for x in logs)
    assert not any("[rm:honesty] already trained" in x for x in logs)
    assert s.extra["units"]["honesty"]["train"]["steps"] == 3
    assert (root / "honesty" / "config.json").exists() and (root / "rm_set.json").exists()
    # a set being replaced is unpublished: readers get a clear error, not a mix of models
    (root / "rm_set.json").replace(root / "rm_set.json.stale")
    with pytest.raises(PdrayError, match="being retrained"):
        RewardModelSet.load(root)
