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
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Literal, get_args

from pdray.errors import PdrayError
from pdray.io import _one_line, write_json  # one line of an exception's text
from pdray.length_modes import LENGTH_MODES, LengthDebias, LengthTerm

Mode = Literal["separate", "all_in_one", "multi_head"]
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
    # the length term the models were trained with (Eq. 17); the scores carry it on (Eq. 18)
    rho: float = field(kw_only=True)
    length_debias: LengthDebias = field(kw_only=True)
    max_length: int = 1024
    response_share: float = 0.75
    holistic_path: str | None = None
    extra: dict = field(default_factory=dict)

    @property
    def length(self) -> LengthTerm:
        """The length term of Eq. 18 these models were trained with (the scores carry it)."""
        return LengthTerm.of(self.length_debias, self.rho)

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
    def load(cls, root: str | Path) -> RewardModelSet:
        path = Path(root) / MANIFEST
        if not path.exists() and path.with_name(MANIFEST + ".stale").exists():
            raise PdrayError(f"{path}: this reward-model set is being retrained (or its "
                             f"retraining was interrupted); finish `pdray rm train` first")
        if not path.exists():
            raise PdrayError(f"{path}: not a reward-model set (run `pdray rm train` first)")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise PdrayError(f"{path}: unreadable reward-model manifest: {_one_line(e)}") from None
        if not isinstance(data, dict):
            raise PdrayError(f"{path}: unreadable reward-model manifest: expected a JSON object, "
                             f"got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        missing = [k for k in ("mode", "aspects", "paths", "rho", "length_debias")
                   if k not in data]
        if unknown or missing:
            raise PdrayError(f"{path}: unreadable reward-model manifest: "
                             + (f"unknown key {unknown[0]!r}" if unknown
                                else f"missing key {missing[0]!r}"))
        rm_set = cls(**data)
        problem = rm_set._field_problem()
        if problem:
            raise PdrayError(f"{path}: {problem}")
        return rm_set

    def _field_problem(self) -> str | None:
        if self.mode not in get_args(Mode):
            return f"mode {self.mode!r} is not one of {', '.join(get_args(Mode))}"
        if (not isinstance(self.aspects, list) or not self.aspects
                or not all(isinstance(a, str) and a for a in self.aspects)):
            return f"'aspects' must be a non-empty list of names, got {self.aspects!r:.60}"
        if not isinstance(self.paths, dict):
            return f"'paths' must map each aspect to a folder, got {self.paths!r:.60}"
        for a in self.aspects:
            if not isinstance(self.paths.get(a), str) or not self.paths[a]:
                return f"'paths' has no folder for aspect {a!r}"
        if self.length_debias not in LENGTH_MODES:
            return (f"length_debias {self.length_debias!r} is not one of "
                    f"{', '.join(LENGTH_MODES)}")
        return None

    def folders(self, root: str | Path) -> dict[str, list[str]]:
        """Every model folder the set uses: folder -> the aspects it scores (holistic included)."""
        out: dict[str, list[str]] = {}
        for a in list(self.aspects) + ([HOLISTIC] if self.holistic_path else []):
            out.setdefault(str(self.model_dir(root, a)), []).append(a)
        return out

    def check_files(self, root: str | Path) -> None:
        """One :class:`PdrayError` line naming the first model folder (or its file) that cannot
        load: missing, no or garbled ``config.json``, no or truncated weights, no or garbled
        tokenizer. Run on the driver before any actor starts (an actor's error is a traceback)."""
        for folder, aspects in self.folders(root).items():
            problem = folder_problem(Path(folder))
            if problem:
                raise PdrayError(f"{problem} (the reward model of {', '.join(map(repr, aspects))}"
                                 f" in {Path(root) / MANIFEST})")


WEIGHTS = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
           "pytorch_model.bin.index.json")
TOKENIZER = ("tokenizer.json", "vocab.json", "vocab.txt", "tokenizer.model", "spiece.model",
             "sentencepiece.bpe.model")


def folder_problem(folder: Path) -> str | None:
    """Why the HF model folder ``folder`` cannot be loaded for scoring, or ``None`` (files only:
    what a load would fail on before any weight is read, plus a truncated safetensors file)."""
    if not folder.exists():
        return f"{folder}: model folder is missing"
    if not folder.is_dir():
        return f"{folder}: expected a model folder, found a file"
    for name in ("config.json", "tokenizer_config.json", "tokenizer.json"):
        f = folder / name
        if name == "config.json" and not f.is_file():
            return f"{f}: missing (not a saved model folder)"
        if f.is_file():
            try:
                json.loads(f.read_text(encoding="utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as e:
                return f"{f}: not valid JSON: {_one_line(e)}"
    weights = [folder / w for w in WEIGHTS if (folder / w).is_file()]
    if not weights:
        return f"{folder}: no model weights ({' or '.join(WEIGHTS[::2])})"
    if weights[0].name == "model.safetensors":
        problem = safetensors_problem(weights[0])
        if problem:
            return f"{weights[0]}: {problem}"
    if not any((folder / t).is_file() for t in TOKENIZER):
        return f"{folder}: no tokenizer files ({', '.join(TOKENIZER[:3])}, ...)"
    return None


def safetensors_problem(path: Path) -> str | None:
    """Why a ``.safetensors`` file is not whole (its header is 8 bytes of length, a JSON table of
    tensors with their byte offsets), or ``None``."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n < 2 or 8 + n > size:
            return "not a safetensors file (bad header)"
        try:
            table = json.loads(f.read(n))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "not a safetensors file (bad header)"
    ends = [v["data_offsets"][1] for k, v in table.items()
            if k != "__metadata__" and isinstance(v, dict) and "data_offsets" in v]
    if ends and 8 + n + max(ends) > size:
        return f"truncated ({size} bytes, its header needs {8 + n + max(ends)})"
    return None

