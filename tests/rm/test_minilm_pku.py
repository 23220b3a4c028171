"""Real-backbone check: MiniLM-L6 (from its PyPI package) helpfulness and harmlessness reward
models on real PKU-SafeRLHF pairs, trained concurrently on Ray Train with the preset's recipe
(mean pooling, zero-initialised head with its own learning rate, learned length coefficient),
evaluated on held-out prompts. Correctness only: how *well* these models rank is a real-model
accuracy question for benchmarks/selection_quality.py (flaky on 2 shared cores, so not a test)."""

import json
import math

import pytest

from pdray.data.pku import load_pku_saferlhf
from pdray.rm import RMConfig, train_reward_models


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_minilm_reward_models_train_on_pku(ray_local, shared_data, tmp_path):
    pairs = load_pku_saferlhf(str(shared_data / "preference" / "pku_saferlhf_500.jsonl"),
                              aspect_assignment="split").table
    assert pairs.num_rows == 500
    cfg = RMConfig(backbone="minilm", max_steps=8, lr=3e-5, head_lr=2e-3, batch_size=8,
                   max_length=128, holdout_fraction=0.2, cpus_per_worker=0.9, eval_steps=4)
    s = train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=print)
    own = s.extra["metrics"]["own"]
    for a in ("helpfulness", "harmlessness"):
        u = s.extra["units"][a]["train"]
        assert u["steps"] <= 8 and u["pooling"] == "mean"          # MiniLM: mean pooling
        assert math.isfinite(u["train_loss"]) and u["eval_losses"]    # early-stopping evals ran
        assert len(u["learned_rho_per_token"]) == 1
        cfgj = json.loads((tmp_path / "rm" / a / "config.json").read_text())
        assert cfgj["pdray_pooling"] == "mean"
        m = own[a]
        lo, hi = m["accuracy_ci95"]
        assert 0 <= lo <= m["heldout_accuracy"] <= hi <= 1 and m["n"] >= 40
        assert 0 <= m["length_only_accuracy"] <= 1
        print(f"MiniLM {a}: held-out accuracy {m['heldout_accuracy']:.3f} "
              f"(95% CI {lo:.2f}–{hi:.2f}, n={m['n']}), length-only "
              f"{m['length_only_accuracy']:.3f}")
    # strict JSON on disk (no bare NaN), and the quality gate's warnings are plain sentences
    json.loads((tmp_path / "rm" / "rm_set.json").read_text(),
               parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))
    assert all(isinstance(w, str) for w in s.extra["metrics"]["warnings"])
