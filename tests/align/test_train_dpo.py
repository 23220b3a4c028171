import json

import pytest
from transformers import AutoModelForCausalLM

from pdray.align import DPOConfig, implicit_reward_accuracy, train_dpo
from pdray.data import synthetic_pairs
from pdray.io import read_table
from pdray.length_modes import NO_LENGTH
from pdray.selection import select, write_selection


@pytest.mark.timeout(600)
def test_one_worker_with_failure_resume_then_two_workers(ray_local, tmp_path):
    pairs = synthetic_pairs(48, seed=0)
    r = train_dpo(pairs, DPOConfig.tiny(max_steps=4, save_steps=1, fail_once_at_step=2),
                  str(tmp_path / "one"), echo=lambda *_: None)
    assert r.metrics["steps"] == 4 and r.metrics["resumed"] is True
    assert AutoModelForCausalLM.from_pretrained(r.model_dir) is not None
    man = json.loads((tmp_path / "one" / "manifest.json").read_text())
    assert man["rows"] == 48 and man["data_hash"].startswith("xxh3:")
    acc = implicit_reward_accuracy(r.model_dir, r.manifest["ref_model_dir"], pairs.slice(0, 12))
    assert 0 <= acc["accuracy"] <= 1 and acc["n"] == 12 and set(acc["by_aspect"])
    r2 = train_dpo(pairs, DPOConfig.tiny(max_steps=2, num_workers=2), str(tmp_path / "two"),
                   echo=lambda *_: None)
    assert r2.metrics["world_size"] == 2 and r2.metrics["steps"] == 2


@pytest.mark.timeout(600)
def test_dmpo_on_selector_output(ray_local, tmp_path):
    import numpy as np
    import pyarrow as pa

    pairs = synthetic_pairs(60, aspects=["helpfulness", "honesty"], seed=1)
    rng = np.random.default_rng(0)
    scores = pa.table({"id": pairs["id"], "aspect": pairs["aspect"],
                       "chosen_len": pa.array(np.full(60, 10)), "rejected_len": pa.array(np.full(60, 9)),
                       "gap_helpfulness": rng.normal(size=60), "gap_honesty": rng.normal(size=60)})
    sel = write_selection(select(scores, "pd", length=NO_LENGTH, budget=0.5, pairs=pairs), tmp_path / "sel")
    path = str(sel / "selected.parquet")
    assert "pd" in read_table(path).column_names
    r = train_dpo(path, DPOConfig.tiny(loss="dmpo", max_steps=2, cpus_per_worker=1.5),
                  str(tmp_path / "dmpo"), echo=lambda *_: None)
    assert r.manifest["kappa"] == 2 and r.manifest["selection"]["strategy"] == "pd"
    assert r.metrics["torch_threads"] == 2      # round(1.5): the worker's CPUs, not Ray's 1
    assert r.manifest["rows"] == 30


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_deepspeed_zero2_on_cpu(ray_local, tmp_path):
    pairs = synthetic_pairs(32, seed=2)
    r = train_dpo(pairs, DPOConfig.tiny(deepspeed="zero2", max_steps=2, num_workers=2),
                  str(tmp_path / "ds"), echo=lambda *_: None)
    assert r.metrics["world_size"] == 2 and r.metrics["steps"] == 2
    assert AutoModelForCausalLM.from_pretrained(r.model_dir).config.num_hidden_layers == 2


@pytest.mark.timeout(600)
def test_cli_dmpo_lora_precomputed_ref_with_builtin_eval(ray_local, tmp_path):
    """`pdray dpo` on a PD-carrying parquet: DMPO + LoRA + precomputed reference log-probs."""
    import pyarrow as pa
    from typer.testing import CliRunner

    from pdray.cli import app
    from pdray.io import write_table

    pairs = synthetic_pairs(40, aspects=["helpfulness", "honesty", "harmlessness"], seed=3)
    pairs = pairs.append_column("pd", pa.array([(i % 5) / 2 - 1.0 for i in range(40)]))
    write_table(pairs, tmp_path / "in" / "pairs.parquet")
    res = CliRunner().invoke(app, [
        "dpo", str(tmp_path / "in" / "pairs.parquet"), "--output", str(tmp_path / "out"),
        "--loss", "dmpo", "--preset", "tiny", "max_steps=2", "precompute_ref_log_probs=true",
        "eval_fraction=0.25", "lora.r=4", "lora.lora_alpha=8",
        "lora.target_modules=[q_proj,v_proj]", "trainer.max_grad_norm=0.5"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    assert "implicit-reward accuracy" in res.output
    man = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert (man["rows"], man["train_rows"], man["eval_rows"], man["kappa"]) == (40, 30, 10, 3)
    assert man["config"]["loss"] == "dmpo" and man["metrics"]["steps"] == 2
    assert man["config"]["trainer"] == {"max_grad_norm": 0.5}    # the worker built TRL args with it
    ev = man["evaluation"]
    assert ev["n"] == 10 and 0 <= ev["accuracy"] <= 1 and 0 < ev["mean_generated_length"] <= 16
    assert ev["n_conflicting"] + ev["n_non_conflicting"] <= 10
    model = AutoModelForCausalLM.from_pretrained(man["model_dir"])  # LoRA merged: plain HF
    assert not any("lora" in k for k in model.state_dict())
    assert (tmp_path / "out" / "model" / "model.safetensors").exists()
