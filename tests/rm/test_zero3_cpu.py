"""The GPU recipes' reward-model training (rm.deepspeed: zero3, several Ray Train workers per
aspect) run on 2 CPU workers (gloo): the loss goes down, the saved model holds the gathered
weights, and a worker failure resumes from the ZeRO-3 checkpoint."""

import math

import numpy as np
import pyarrow.compute as pc
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForSequenceClassification

from pdray.data import synthetic_pairs
from pdray.errors import ConfigError
from pdray.models.backbones import load_reward_backbone
from pdray.rm import RMConfig, train_reward_models
from pdray.rm.config import trl_args
from pdray.rm.metrics import pair_margins
from pdray.trainer_args import deepspeed_config

# the recipes' zero3 with every parameter sharded: DeepSpeed keeps a parameter under
# stage3_param_persistence_threshold (default 1e5 elements) whole on every worker, and every
# parameter of a tiny model is that small
ZERO3 = deepspeed_config("zero3")
ZERO3["zero_optimization"]["stage3_param_persistence_threshold"] = 0


def test_rm_deepspeed_takes_the_dpo_shorthands_a_config_or_a_path():
    """The GPU recipes say ``rm.deepspeed: zero3``: TRL gets the ZeRO config that dpo builds
    (before, the word itself reached transformers as the path of a config file)."""
    def ds(spec):
        return trl_args(RMConfig(deepspeed=spec), output_dir="/o", max_steps=10,
                        pooling="native", early_stopping=True)["deepspeed"]

    assert ds("zero3") == deepspeed_config("zero3")
    assert ds("zero3")["zero_optimization"]["stage3_gather_16bit_weights_on_model_save"] is True
    assert ds("zero2")["zero_optimization"]["stage"] == 2
    assert ds({"zero_optimization": {"stage": 1}}) == {"zero_optimization": {"stage": 1}}
    assert ds("/configs/ds.json") == "/configs/ds.json" and ds(None) is None
    with pytest.raises(ConfigError, match="trainer.deepspeed: pdray sets deepspeed itself: set "
                                          "rm.deepspeed instead"):
        RMConfig(trainer={"deepspeed": {}})


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_zero3_on_two_cpu_workers_learns_saves_and_resumes(ray_local, tmp_path):
    both = synthetic_pairs(240, aspects=["helpfulness", "honesty"], seed=7)
    pairs = both.filter(pc.equal(both["aspect"], "helpfulness"))     # one unit
    cfg = RMConfig(backbone="tiny", deepspeed=ZERO3, num_workers_per_aspect=2,
                   cpus_per_worker=0.5, lr=3e-3, batch_size=8, max_length=96, max_steps=8,
                   save_steps=2, fail_once_at_step=3, holdout_fraction=0.0,
                   length_debias="learned")
    s = train_reward_models(pairs, cfg, str(tmp_path / "rm"), echo=lambda *_: None)
    unit = s.extra["units"]["helpfulness"]
    t = unit["train"]
    # crashed at step 3, resumed from the ZeRO-3 checkpoint of step 2 (every rank's shards)
    assert t["steps"] == 8 and t["resumed"] is True
    # training loss and the held-out (dev) Bradley–Terry loss both went down
    assert t["train_loss"] < t["first_loss"]
    assert len(t["eval_losses"]) == 4 and min(t["eval_losses"][1:]) < t["eval_losses"][0]
    # the learned length coefficient was gathered from both shards, not one rank's (empty) part
    assert len(t["learned_rho_per_token"]) == 1 and math.isfinite(t["learned_rho_per_token"][0])

    # the saved folder holds every weight, whole: the same keys and shapes as a fresh model
    d = tmp_path / "rm" / "helpfulness"
    saved = load_file(str(d / "model.safetensors"))
    model, info = AutoModelForSequenceClassification.from_pretrained(d, output_loading_info=True)
    assert not info["missing_keys"] and not info["unexpected_keys"]
    fresh = model.state_dict()
    assert set(saved) == set(fresh)
    assert all(saved[k].shape == fresh[k].shape and saved[k].numel() > 0 for k in saved)
    assert torch.count_nonzero(saved["score.weight"]) > 0        # the head starts at zeros
    # ... and they are the trained weights: the zero head scored every pair 0 (BT loss ln 2)
    m, tok = load_reward_backbone(str(d))
    train = pairs.slice(0, 48)
    margins = pair_margins(m, tok, train, max_length=cfg.max_length)
    bt = float(np.mean(np.logaddexp(0.0, -margins)))
    assert bt < math.log(2) - 0.01
