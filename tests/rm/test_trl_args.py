"""RMConfig → trl.RewardConfig (pdray.rm.config.trl_args) and the ``trainer`` pass-through."""

import subprocess
import sys

import pytest

from pdray.config import load_config
from pdray.errors import ConfigError
from pdray.rm.config import RMConfig, eval_every, trl_args
from pdray.trainer_args import CHECKED

HAND = {"lr": 3e-5, "batch_size": 8, "grad_accum": 4, "warmup_ratio": 0.2, "scheduler": "linear",
        "weight_decay": 0.01, "seed": 7, "bf16": True, "save_steps": 20,
        "length_debias": "penalty", "trainer": {"adam_beta2": 0.98, "max_grad_norm": 0.5}}


def test_every_trl_argument_of_a_unit_with_early_stopping():
    args = trl_args(RMConfig(**HAND), output_dir="/o", max_steps=100, pooling="native",
                    early_stopping=True)
    assert args == {
        "learning_rate": 3e-5, "per_device_train_batch_size": 8, "per_device_eval_batch_size": 8,
        "gradient_accumulation_steps": 4, "warmup_steps": 0.2, "lr_scheduler_type": "linear",
        "weight_decay": 0.01, "seed": 7, "deepspeed": None, "output_dir": "/o",
        "max_steps": 100, "logging_steps": 10, "save_strategy": "steps", "save_steps": 10,
        "save_total_limit": 1, "eval_strategy": "steps", "eval_steps": 10,
        "load_best_model_at_end": True, "metric_for_best_model": "eval_loss",
        "greater_is_better": False, "report_to": "none", "use_cpu": True, "bf16": True,
        "max_length": None, "remove_unused_columns": False, "dataloader_num_workers": 0,
        "disable_tqdm": True, "ddp_find_unused_parameters": False,
        "adam_beta2": 0.98, "max_grad_norm": 0.5}


def test_without_a_dev_split_and_on_gpus():
    cfg = RMConfig(**{**HAND, "bf16": None, "trainer": {}, "length_debias": "learned"},
                   use_gpu=True, eval_steps=3)
    args = trl_args(cfg, output_dir="/o", max_steps=40, pooling="native", early_stopping=False)
    assert (args["save_steps"], args["eval_strategy"], args["eval_steps"]) == (20, "no", None)
    assert args["load_best_model_at_end"] is False and args["logging_steps"] == 3
    assert (args["use_cpu"], args["bf16"]) == (False, True)      # bf16 defaults on with GPUs
    assert args["ddp_find_unused_parameters"] is True            # learned length coefficient
    mean = trl_args(RMConfig(length_debias="none"), output_dir="/o", max_steps=40,
                    pooling="mean", early_stopping=False)
    assert mean["ddp_find_unused_parameters"] is True and mean["bf16"] is False
    assert eval_every(RMConfig(save_steps=50), 1000) == 50 and eval_every(RMConfig(), 20) == 5


def test_trl_builds_the_args_warmup_ratio_and_pass_through_reach_it(tmp_path):
    from trl import RewardConfig

    a = RewardConfig(**trl_args(RMConfig(**HAND), output_dir=str(tmp_path), max_steps=100,
                                pooling="native", early_stopping=True))
    assert a.get_warmup_steps(100) == 20 and a.get_warmup_steps(7) == 2   # ⌈0.2 · steps⌉
    assert a.learning_rate == 3e-5 and a.gradient_accumulation_steps == 4
    assert a.lr_scheduler_type.value == "linear" and a.seed == 7 and a.bf16 is True
    assert (a.adam_beta2, a.max_grad_norm) == (0.98, 0.5)


@pytest.mark.parametrize("trainer, message", [
    ({"no_such_arg": 1}, "trainer.no_such_arg: not an argument of trl.RewardConfig"),
    ({"learning_rate": 1e-3}, "trainer.learning_rate: pdray sets learning_rate itself: set rm.lr"),
    ({"output_dir": "x"}, "trainer.output_dir: pdray sets output_dir itself"),
    ({"report_to": "wandb"}, "trainer.report_to: pdray sets report_to itself"),
    ({"max_steps": 5}, "trainer.max_steps: pdray sets max_steps itself"),
    ({"num_train_epochs": 2},
     "trainer.num_train_epochs: pdray sets num_train_epochs itself: set rm.epochs instead"),
    ({"adam_beta2": "high"}, "trainer.adam_beta2='high': RewardConfig expects float"),
    ({"optim": "no_such_optimizer"}, "trainer.optim: RewardConfig rejects optim="),
])
def test_bad_trainer_keys_and_values_are_one_line_errors(trainer, message):
    with pytest.raises(ConfigError) as e:
        RMConfig(trainer=trainer)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_trainer_keys_as_overrides_and_in_dumps():
    cfg = load_config(RMConfig, None, ["trainer.adam_beta2=0.95", "trainer.optim=sgd"])
    assert cfg.trainer == {"adam_beta2": 0.95, "optim": "sgd"}
    assert RMConfig.model_validate(cfg.model_dump(mode="json")) == cfg
    with pytest.raises(ConfigError, match="trainer.seed: pdray sets seed itself: set rm.seed"):
        load_config(RMConfig, None, ["trainer.seed=3"])
    # a worker re-reads the driver's validated config without building the TRL class again
    assert RMConfig.model_validate({"trainer": {"optim": "nope"}}, context=CHECKED).trainer
    # an empty pass-through is left out of dumps: manifests and cache keys stay as they were
    assert "trainer" not in RMConfig().model_dump() and "trainer" in cfg.model_dump()


def test_a_config_without_pass_through_does_not_import_trl():
    code = ("import sys; from pdray.rm.config import RMConfig; RMConfig(lr=1e-4); "
            "print('trl' in sys.modules, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
