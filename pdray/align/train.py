"""``train_dpo``: DPO or DMPO on (selected) pairs with TRL under Ray Train.

Any number of workers (gloo on CPU, NCCL on GPUs), DeepSpeed ZeRO-2/3 (also on CPU), LoRA,
gradient accumulation, bf16 on GPU, checkpoints and resume through Ray Train. The final model is
a plain HF folder (safetensors) with a manifest: data hash, the selection manifest it came from,
config, metrics.
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from pdray.align.config import DPOConfig
from pdray.align.data import check_rows, split_eval, to_dpo_rows
from pdray.align.evaluate import implicit_reward_accuracy, sample_lengths
from pdray.align.worker import train_dpo_worker
from pdray.errors import ConfigError, PdrayError
from pdray.fingerprint import table_hash
from pdray.io import read_table
from pdray.models.smollm import smollm2_path
from pdray.models.tiny import build_tiny_causal_lm
from pdray.ray_train import fit_on_ray, storage_path
from pdray.raysetup import init_ray
from pdray.trainer_args import deepspeed_config


@dataclass
class DPOResult:
    model_dir: Path
    manifest: dict
    metrics: dict


def resolve_policy(name: str, workdir: Path, texts=()) -> str:
    if name == "tiny":
        d = workdir / "tiny-lm"
        if not (d / "config.json").exists():
            build_tiny_causal_lm(d, texts=list(texts)[:4000])
        return str(d)
    if name == "smollm2":
        return smollm2_path()
    return name


def infer_kappa(table: pa.Table, selection: dict | None) -> int:
    """κ = number of aspects of D: the selector's per-aspect quantiles q_k when the selection
    manifest has them (a subset may miss an aspect), else the aspects present in the pairs."""
    q = (selection or {}).get("q")
    if isinstance(q, dict) and q:
        return len(q)
    return len(pc.unique(table["aspect"])) if "aspect" in table.column_names else 1


def evaluate_policy(model_dir, ref_dir, eval_table: pa.Table, cfg: DPOConfig) -> dict:
    """Held-out implicit-reward accuracy (by aspect, conflicting / not, against the consensus)
    and sample length on the run's own eval split, recorded in its manifest; the caller prints
    it (``pdray dpo``), so a number is printed once."""
    t0 = time.time()
    ev = implicit_reward_accuracy(model_dir, ref_dir, eval_table, beta=cfg.beta,
                                  max_length=cfg.max_length, trust_remote_code=cfg.trust_remote_code)
    prompts = eval_table["prompt"].to_pylist()[: cfg.eval_sample_prompts]
    if prompts:
        ev["mean_generated_length"] = sample_lengths(
            model_dir, prompts, max_new_tokens=cfg.eval_max_new_tokens,
            trust_remote_code=cfg.trust_remote_code)
    ev["seconds"] = round(time.time() - t0, 1)
    return ev


def train_dpo(pairs: pa.Table | str, cfg: DPOConfig, output_dir: str, *, echo=print) -> DPOResult:
    from transformers import AutoTokenizer

    ds = deepspeed_config(cfg.deepspeed)
    if cfg.lora and ds and ds.get("zero_optimization", {}).get("stage") == 3:
        raise ConfigError("lora with DeepSpeed ZeRO-3 is not supported (the adapter is merged on "
                          "rank 0, which needs unsharded weights): use deepspeed=zero2")
    init_ray()
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    src = str(pairs) if not isinstance(pairs, pa.Table) else None
    table = read_table(pairs) if src else pairs
    if table.num_rows == 0:
        raise PdrayError(f"{src or 'pairs'}: no pairs to train on")
    full = table
    check_rows(full, need_pd=cfg.loss == "dmpo", file=src)  # row numbers of the input file
    table, eval_table = split_eval(full, cfg.eval_fraction, cfg.seed)
    texts = table["prompt"].to_pylist()[:1000] + table["chosen"].to_pylist()[:1000]
    model = resolve_policy(cfg.model, out.parent / "_base", texts)
    ref = resolve_policy(cfg.ref_model, out.parent / "_base", texts) if cfg.ref_model else None
    tok = AutoTokenizer.from_pretrained(model, trust_remote_code=cfg.trust_remote_code)
    sel_manifest = None
    if src and "://" not in src and (Path(src).parent / "manifest.json").exists():
        sel_manifest = json.loads((Path(src).parent / "manifest.json").read_text())
    kappa = cfg.kappa or infer_kappa(full, sel_manifest)
    rows = to_dpo_rows(table, tok, need_pd=cfg.loss == "dmpo", file=src,
                       max_prompt_length=cfg.max_prompt_length)
    data_hash = table_hash(full.select([c for c in ("id", "prompt", "chosen", "rejected")
                                        if c in full.column_names]))
    name = cfg.name or f"dpo-{data_hash.split(':')[1][:8]}"
    spec = {"cfg": cfg.model_dump(mode="json"), "name": name, "model": model, "ref_model": ref,
            "rows": rows, "kappa": kappa, "fail_marker": str(out / f".{name}.failed-once")}
    echo(f"[dpo:{name}] {cfg.loss} on {table.num_rows} pairs ({full.num_rows - table.num_rows} "
         f"held out), {cfg.num_workers} worker(s), "
         f"model {cfg.model}{', DeepSpeed ' + str(cfg.deepspeed) if cfg.deepspeed else ''}")
    t0 = time.time()
    result = fit_on_ray(train_dpo_worker, spec, label=f"dpo:{name}", name=name,
                        storage=storage_path(cfg.storage_path, out / "_ray"),
                        num_workers=cfg.num_workers, cpus_per_worker=cfg.cpus_per_worker,
                        use_gpu=cfg.use_gpu, max_failures=cfg.max_failures)
    model_dir = out / "model"
    if model_dir.exists():
        shutil.rmtree(model_dir)
    result.checkpoint.to_directory(str(model_dir))
    metrics = {k: v for k, v in (result.metrics or {}).items() if k != "final"}
    evaluation = None
    if eval_table is not None:
        evaluation = evaluate_policy(model_dir, ref or model, eval_table, cfg)
        metrics["eval_implicit_reward_accuracy"] = evaluation["accuracy"]
    manifest = {"data_hash": data_hash, "pairs": src, "rows": full.num_rows,
                "train_rows": table.num_rows, "eval_rows": 0 if eval_table is None
                else eval_table.num_rows, "evaluation": evaluation,
                "selection": sel_manifest, "config": cfg.model_dump(mode="json"),
                "model": model, "ref_model_dir": ref or model, "kappa": kappa,
                "metrics": metrics, "wall_seconds": round(time.time() - t0, 2),
                "model_dir": str(model_dir)}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, default=str))
    echo(f"[dpo:{name}] done: {metrics.get('steps')} steps, loss "
         f"{metrics.get('train_loss', float('nan')):.4f} -> {model_dir}")
    return DPOResult(model_dir, manifest, metrics)
