"""DPOConfig → trl.DPOConfig / DMPOConfig (pdray.align.config.trl_args), the ``trainer``
pass-through, and DMPOConfig carrying κ."""

import pytest

from pdray.align.config import DPOConfig, trl_args
from pdray.align.dmpo import DMPOConfig, DMPOTrainer
from pdray.errors import ConfigError

HAND = {"beta": 0.2, "epochs": 2.0, "lr": 1e-6, "batch_size": 4, "grad_accum": 8,
        "warmup_ratio": 0.05, "scheduler": "constant_with_warmup", "max_length": 512, "seed": 11,
        "bf16": False, "save_steps": 25, "gradient_checkpointing": True,
        "trainer": {"adam_epsilon": 1e-6, "loss_type": ["sigmoid"]}}


def test_every_trl_argument_of_a_dpo_run():
    args = trl_args(DPOConfig(**HAND), output_dir="/o", kappa=3)
    assert args == {
        "learning_rate": 1e-6, "beta": 0.2, "num_train_epochs": 2.0,
        "per_device_train_batch_size": 4, "gradient_accumulation_steps": 8,
        "warmup_steps": 0.05, "lr_scheduler_type": "constant_with_warmup", "max_length": 512,
        "save_steps": 25, "seed": 11, "precompute_ref_log_probs": False,
        "gradient_checkpointing": True, "output_dir": "/o", "max_steps": -1,
        "logging_steps": 1, "save_strategy": "steps", "save_total_limit": 1,
        "report_to": "none", "use_cpu": True, "bf16": False, "deepspeed": None,
        "disable_tqdm": True, "dataloader_num_workers": 0,
        "include_num_input_tokens_seen": "non_padding",
        "adam_epsilon": 1e-6, "loss_type": ["sigmoid"]}      # no kappa: loss is dpo


def test_dmpo_zero2_on_gpus_and_max_steps():
    args = trl_args(DPOConfig(loss="dmpo", use_gpu=True, deepspeed="zero2", max_steps=9),
                    output_dir="/o", kappa=4)
    assert args["kappa"] == 4 and args["max_steps"] == 9
    assert (args["use_cpu"], args["bf16"]) == (False, True)      # bf16 defaults on with GPUs
    assert args["deepspeed"]["zero_optimization"]["stage"] == 2


def test_trl_builds_the_args_and_dmpo_config_carries_kappa(tmp_path):
    from trl import DPOConfig as TRLDPOConfig

    a = TRLDPOConfig(**trl_args(DPOConfig(**HAND), output_dir=str(tmp_path), kappa=None))
    assert a.get_warmup_steps(100) == 5 and a.beta == 0.2 and a.adam_epsilon == 1e-6
    assert a.lr_scheduler_type.value == "constant_with_warmup" and a.num_train_epochs == 2.0
    d = DMPOConfig(**trl_args(DPOConfig(**{**HAND, "loss": "dmpo"}), output_dir=str(tmp_path),
                              kappa=3))
    assert isinstance(d, TRLDPOConfig) and d.kappa == 3 and d.beta == 0.2
    assert DMPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none").kappa == 1
    with pytest.raises(ValueError, match="kappa must be an integer ≥ 1"):
        DMPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none", kappa=0)


def test_dmpo_trainer_refuses_args_without_kappa(tmp_path):
    from trl import DPOConfig as TRLDPOConfig

    args = TRLDPOConfig(output_dir=str(tmp_path), use_cpu=True, report_to="none")
    with pytest.raises(TypeError, match="DMPOTrainer needs args=DMPOConfig"):
        DMPOTrainer(model="never-loaded", args=args)


@pytest.mark.parametrize("trainer, message", [
    ({"kappa": 2}, "trainer.kappa: not an argument of trl.DPOConfig"),
    ({"beta": 0.5}, "trainer.beta: pdray sets beta itself: set dpo.beta"),
    ({"num_train_epochs": 3},
     "trainer.num_train_epochs: pdray sets num_train_epochs itself: set dpo.epochs"),
    ({"output_dir": "x"}, "trainer.output_dir: pdray sets output_dir itself"),
    ({"deepspeed": {}}, "trainer.deepspeed: pdray sets deepspeed itself"),
    ({"loss_type": 3}, "trainer.loss_type=3: DPOConfig expects"),
])
def test_bad_trainer_keys_are_one_line_errors(trainer, message):
    with pytest.raises(ConfigError) as e:
        DPOConfig(trainer=trainer)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_presets_keep_their_fields_and_take_a_pass_through():
    cfg = DPOConfig.tiny(trainer={"max_grad_norm": 0.3})
    assert cfg.trainer == {"max_grad_norm": 0.3} and cfg.max_steps == 4
    assert trl_args(cfg, output_dir="/o", kappa=None)["max_grad_norm"] == 0.3
    assert "trainer" not in DPOConfig.paper().model_dump()
