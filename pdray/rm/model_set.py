"""The reward-model set: what ``pdray rm train`` writes and ``pdray score`` reads.

Layout of a reward-model directory ``RM_DIR``::

    RM_DIR/rm_set.json          this manifest (see :class:`RewardModelSet`)
    RM_DIR/<aspect>/            mode "separate": one HF sequence-classification folder per aspect
    RM_DIR/all_in_one/          mode "all_in_one": one folder; aspect k is addressed by
                                system_prompts[k] (paper App. B.3)
    RM_DIR/multi_head/          mode "multi_head": one folder with num_labels = κ; head i scores
                                aspects[i] (config.id2label agrees)
    RM_DIR/holistic/            optional: ablation A1, one RM trained on all of D (scored as
                                aspect "holistic", column gap_holistic)

Every folder loads with plain ``AutoModelForSequenceClassification.from_pretrained`` (safetensors)
and its tokenizer with ``AutoTokenizer.from_pretrained``. Inputs are built with
:func:`pdray.models.formatting.encode_reward_inputs` (prompt cut from the left first) and scored
with :func:`pdray.models.reward.reward_forward` (the pooling saved in each folder's config).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Literal

from pdray.errors import PdrayError
from pdray.io import write_json

Mode = Literal["separate", "all_in_one", "multi_head"]
LengthDebias = Literal["learned", "penalty", "poe", "none"]
MANIFEST = "rm_set.json"
HOLISTIC = "holistic"


@dataclass
class RewardModelSet:
    mode: Mode
    aspects: list[str]
    # aspect -> folder (relative to the set's directory); for all_in_one / multi_head every
    # aspect maps to the same folder.
    paths: dict[str, str]
    system_prompts: dict[str, str] = field(default_factory=dict)
    rho: float = 0.0
    length_debias: LengthDebias = "penalty"
    max_length: int = 1024
    response_share: float = 0.75
    holistic_path: str | None = None
    extra: dict = field(default_factory=dict)

    def model_dir(self, root: str | Path, aspect: str) -> Path:
        if aspect == HOLISTIC and self.holistic_path:
            return Path(root) / self.holistic_path
        try:
            return Path(root) / self.paths[aspect]
        except KeyError:
            raise PdrayError(f"{Path(root) / MANIFEST}: no reward model for aspect {aspect!r} "
                             f"(has: {', '.join(self.aspects)})") from None

    def head_index(self, aspect: str) -> int:
        """Index of the aspect's scalar head (multi_head), else 0."""
        return self.aspects.index(aspect) if self.mode == "multi_head" else 0

    def save(self, root: str | Path) -> Path:
        path = Path(root) / MANIFEST
        write_json(asdict(self), path)   # atomic, strict JSON
        return path

    @classmethod
    def load(cls, root: str | Path) -> "RewardModelSet":
        path = Path(root) / MANIFEST
        if not path.exists() and path.with_name(MANIFEST + ".stale").exists():
            raise PdrayError(f"{path}: this reward-model set is being retrained (or its "
                             f"retraining was interrupted); finish `pdray rm train` first")
        if not path.exists():
            raise PdrayError(f"{path}: not a reward-model set (run `pdray rm train` first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return cls(**data)
        except (json.JSONDecodeError, TypeError) as e:
            raise PdrayError(f"{path}: unreadable reward-model manifest: {e}") from None

