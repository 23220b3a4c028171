"""The GPU recipes' DPO (dpo.deepspeed: zero3, several Ray Train workers) run on 2 CPU workers
(gloo): the DPO loss goes down, the saved model holds the gathered weights, and a worker failure
resumes from the ZeRO-3 checkpoint."""

import math

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM

from pdray.align import DPOConfig, train_dpo
from pdray.align.evaluate import implicit_margins
from pdray.data import synthetic_pairs
from pdray.trainer_args import deepspeed_config

# the recipes' zero3 with every parameter sharded: DeepSpeed keeps a parameter under
# stage3_param_persistence_threshold (default 1e5 elements) whole on every worker, and every
# parameter of a tiny model is that small
ZERO3 = deepspeed_config("zero3")
ZERO3["zero_optimization"]["stage3_param_persistence_threshold"] = 0


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_zero3_on_two_cpu_workers_learns_saves_and_resumes(ray_local, tmp_path):
    pairs = synthetic_pairs(16, seed=4)
    cfg = DPOConfig.tiny(deepspeed=ZERO3, num_workers=2, lr=2e-3, max_steps=6, save_steps=2,
                         fail_once_at_step=3, eval_fraction=0.0)
    r = train_dpo(pairs, cfg, str(tmp_path / "dpo"), echo=lambda *_: None)
    # crashed at step 3, resumed from the ZeRO-3 checkpoint of step 2 (both ranks' shards)
    assert r.metrics["world_size"] == 2 and r.metrics["steps"] == 6
    assert r.metrics["resumed"] is True

    # the saved folder holds every weight, whole: the same keys and shapes as the base model
    ref_dir = r.manifest["ref_model_dir"]
    base = AutoModelForCausalLM.from_pretrained(ref_dir).state_dict()
    saved = load_file(str(r.model_dir / "model.safetensors"))
    assert set(saved) == set(base)
    assert all(saved[k].shape == base[k].shape and saved[k].numel() > 0 for k in saved)
    _, info = AutoModelForCausalLM.from_pretrained(r.model_dir, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    assert any(not torch.equal(saved[k], base[k]) for k in saved)          # trained
    # ... and trained on the pairs: the DPO loss of the saved policy against its reference is
    # below ln 2, the loss at step 0 (policy = reference, every margin 0)
    margins = implicit_margins(r.model_dir, ref_dir, pairs, beta=cfg.beta,
                               max_length=cfg.max_length)
    loss = float(np.mean(np.logaddexp(0.0, -margins)))
    assert loss < math.log(2) - 0.01
