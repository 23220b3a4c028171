"""The ``trainer`` pass-through of the rm and dpo configs: any other argument of TRL's config class,
and the DeepSpeed settings both share (:func:`deepspeed_config`, :func:`init_deepspeed_on_cpu`).

A stage config (:class:`pdray.rm.RMConfig`, :class:`pdray.align.DPOConfig`) keeps pdray's own
knobs and the common trainer fields; its ``trl_args(cfg, **runtime)`` (beside the config) maps
them to the arguments of TRL's config class, and ``trainer: {key: value}`` adds any other one.
:func:`check_trainer_args` validates the pass-through when the config loads: a key that is not an
argument of the TRL class, or one pdray sets itself, is a one-line :class:`ConfigError` naming
``trainer.<key>``; a bad value fails when the TRL class is built once with it.

Importing this module stays free of trl and deepspeed: the TRL class is imported only when
``trainer`` is not empty, deepspeed only by :func:`init_deepspeed_on_cpu` (in a worker).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from pydantic import Field, model_serializer

from pdray.config import StrictModel
from pdray.errors import ConfigError

# Validation builds the TRL class on the driver, which may have no GPU: these device settings
# (pdray's own, checked by the worker's TRL config) are replaced while the pass-through is checked.
DEVICE_NEUTRAL = {"use_cpu": True, "bf16": False, "deepspeed": None}


class WithTrainerArgs(StrictModel):
    """A stage config with the ``trainer`` pass-through (its validator, beside the config,
    calls :func:`check_trainer_args` with the stage's TRL class and pdray's own arguments)."""

    trainer: dict[str, Any] = Field(
        default_factory=dict, description="any other argument of TRL's config class "
        "(trl.RewardConfig for rm, trl.DPOConfig for dpo), passed through as is; the ones pdray "
        "sets itself (learning rate, steps, batch, output_dir, report_to, ...) are refused")

    @model_serializer(mode="wrap")
    def _omit_empty_trainer(self, handler):
        """An empty ``trainer`` is left out of dumps, so manifests and cache keys of configs
        without a pass-through are what they were before it existed."""
        data = handler(self)
        if isinstance(data, dict) and not self.trainer:
            data.pop("trainer", None)
        return data


# ``model_validate(data, context=CHECKED)``: a worker re-reads a config the driver validated,
# without building the TRL class again before its own.
CHECKED = {"trainer_checked": True}


def checked_before(info) -> bool:
    """Whether the pass-through was validated already (a pydantic ``ValidationInfo`` whose
    context is :data:`CHECKED`)."""
    return bool((info.context or {}).get("trainer_checked"))


def init_fields(trl_class: type) -> set[str]:
    """The constructor arguments of a TRL / transformers config dataclass."""
    return {f.name for f in dataclasses.fields(trl_class) if f.init}


def check_trainer_args(trainer: dict, trl_class: type, pdray_args: dict,
                       sources: dict[str, str]) -> None:
    """Raise a one-line :class:`ConfigError` naming ``trainer.<key>`` when a key is one pdray
    sets (``pdray_args``, or one ``sources`` names: TRL argument → the pdray field to use
    instead), is not an argument of ``trl_class``, or ``trl_class`` rejects the values when
    built with pdray's arguments."""
    known = init_fields(trl_class)
    for key in trainer:
        if key in pdray_args or key in sources:
            use = f": set {sources[key]} instead" if key in sources else ""
            raise ConfigError(f"trainer.{key}: pdray sets {key} itself{use}")
        if key not in known:
            raise ConfigError(f"trainer.{key}: not an argument of {trl_class.__module__.split('.')[0]}"
                              f".{trl_class.__name__}")
    hints = field_types(trl_class)
    for key, value in trainer.items():
        if key in hints and not value_fits(value, hints[key]):
            raise ConfigError(f"trainer.{key}={value!r}: {trl_class.__name__} expects "
                              f"{getattr(hints[key], '__name__', None) or hints[key]}")
    try:
        trl_class(**{**pdray_args, **trainer, **DEVICE_NEUTRAL})
    except (ValueError, TypeError, KeyError) as e:
        where = ", ".join(f"trainer.{k}" for k in trainer)
        raise ConfigError(f"{where}: {trl_class.__name__} rejects "
                          f"{', '.join(f'{k}={v!r}' for k, v in trainer.items())}: "
                          f"{first_line(e)}") from None


def field_types(trl_class: type) -> dict[str, Any]:
    """The resolved type annotations of a config dataclass (empty when they cannot be resolved)."""
    import typing

    try:
        return typing.get_type_hints(trl_class)
    except Exception:  # noqa: BLE001  (an unresolvable annotation: TRL's own check remains)
        return {}


def value_fits(value: Any, hint: Any) -> bool:
    """Whether ``value`` is of type ``hint`` without conversion (pydantic strict mode; an int
    is a float). True for a type pydantic cannot check."""
    from pydantic import PydanticSchemaGenerationError, TypeAdapter, ValidationError

    try:
        adapter = TypeAdapter(hint)
    except (PydanticSchemaGenerationError, TypeError):
        return True
    try:
        adapter.validate_python(value, strict=True)
    except ValidationError:
        return False
    return True


def first_line(err: BaseException) -> str:
    """The first non-empty line of an error's message (its type name when it has none)."""
    lines = [x.strip() for x in str(err).splitlines() if x.strip()]
    return lines[0] if lines else type(err).__name__


def resolve_bf16(bf16: bool | None, use_gpu: bool) -> bool:
    """``bf16`` as configured; unset, it is on with GPUs and off on CPUs."""
    return bf16 if bf16 is not None else use_gpu


# rm.deepspeed / dpo.deepspeed shorthands: the ZeRO stage of a config built by deepspeed_config
ZERO_STAGES = {"zero2": 2, "zero3": 3}


def deepspeed_config(spec: dict | str | None) -> dict | str | None:
    """The ``deepspeed`` argument of TRL's config class for ``rm.deepspeed`` / ``dpo.deepspeed``:
    ``zero2`` / ``zero3`` become a ZeRO config for HF/TRL (``auto`` values filled from the
    training args; ZeRO-3 gathers the weights when the model is saved); a dict (a full DeepSpeed
    config) or any other string (the path of one) is passed through as is."""
    if spec is None or isinstance(spec, dict) or spec not in ZERO_STAGES:
        return spec
    stage = ZERO_STAGES[spec]
    zero: dict = {"stage": stage, "overlap_comm": False, "contiguous_gradients": True}
    if stage == 3:
        zero["stage3_gather_16bit_weights_on_model_save"] = True
    return {"zero_optimization": zero, "train_micro_batch_size_per_gpu": "auto",
            "gradient_accumulation_steps": "auto", "train_batch_size": "auto",
            "gradient_clipping": "auto", "bf16": {"enabled": "auto"}}


def init_deepspeed_on_cpu(spec: dict | str | None, use_gpu: bool) -> None:
    """In a CPU Ray Train worker with DeepSpeed: point DeepSpeed at its CPU accelerator and
    attach it to the process group Ray Train made (gloo), before the trainer is built. On GPUs
    accelerate does this; with ``use_cpu`` it does not, and under ZeRO-3 the first model that
    transformers loads inside ``deepspeed.zero.Init`` (TRL's reference model) then sees a
    world size of 1 ("train_batch_size is not equal to micro_batch_per_gpu *
    gradient_acc_step * world_size 8 != 4 * 1 * 1")."""
    if use_gpu or spec is None:
        return
    os.environ.setdefault("DS_ACCELERATOR", "cpu")
    import deepspeed  # deferred: deepspeed (workers only)

    deepspeed.init_distributed(dist_backend="gloo", auto_mpi_discovery=False)
