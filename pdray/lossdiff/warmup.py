"""Step 1 of "Second seed" (METHOD.md): the seeded validation split and the two warm-up DPO runs.

The policy θ is trained with DPO for one epoch on D minus the validation set, the auxiliary
θ_val the same way on the validation set; both start from the same reference model π_ref.
Both runs go through the alignment stage's trainer, ``pdray.align.train_dpo`` (TRL's
DPOTrainer under Ray Train), so the scorer's encoding (:mod:`pdray.align.logprobs`) is the one
they were trained on.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa

from pdray.align.config import DPOConfig
from pdray.errors import ConfigError, DataError
from pdray.fingerprint import table_hash
from pdray.io import write_json, write_table
from pdray.lossdiff.config import LossDiffConfig

log = logging.getLogger("pdray.lossdiff")


@dataclass
class WarmupResult:
    policy_dir: Path
    aux_dir: Path
    reference: str
    train_ids: list[str]
    val_ids: list[str]
    manifest: dict = field(default_factory=dict)


def split_validation(pairs: pa.Table, cfg: LossDiffConfig) -> tuple[pa.Table, pa.Table]:
    """(D minus validation, validation): a seeded sample of ``val_size`` pairs (or
    ``val_fraction`` of D), drawn per aspect in proportion when ``stratify_aspect``.

    The result depends only on the ids and the seed, not on the row order.
    """
    n = pairs.num_rows
    n_val = cfg.val_size if cfg.val_size is not None else round(cfg.val_fraction * n)
    if not 1 <= n_val < n:
        raise ConfigError(f"validation split: {n_val} of {n} pairs leaves no training or no "
                          "validation data (set val_size or val_fraction)")
    ids = np.asarray(pairs["id"].to_pylist(), dtype=object)
    order = np.argsort(ids.astype(str), kind="stable")
    rng = np.random.default_rng(cfg.split_seed)
    u = np.empty(n)
    u[order] = rng.random(n)  # one uniform per id, in id order: row order does not matter
    val = np.zeros(n, dtype=bool)
    if cfg.stratify_aspect:
        aspects = np.asarray(pairs["aspect"].to_pylist(), dtype=object)
        groups = sorted(set(aspects))
        quota = {a: (aspects == a).sum() * n_val / n for a in groups}
        take = {a: int(np.floor(q)) for a, q in quota.items()}
        rest = n_val - sum(take.values())
        for a in sorted(groups, key=lambda a: (-(quota[a] - take[a]), a))[:rest]:
            take[a] += 1
        for a in groups:
            idx = np.flatnonzero(aspects == a)
            val[idx[np.argsort(u[idx], kind="stable")[: take[a]]]] = True
    else:
        val[np.argsort(u, kind="stable")[:n_val]] = True
    return pairs.filter(pa.array(~val)), pairs.filter(pa.array(val))


def align_config(cfg: LossDiffConfig, reference: str, name: str):
    """The :class:`pdray.align.DPOConfig` of one warm-up run, field by field from ``cfg``.

    Every pair given is trained on (``eval_fraction=0``: the held-out set of the method is the
    validation split, not a slice of the run's pairs); gradient accumulation makes up the
    effective ``warmup.batch_size``; the training workers get ``warmup.cpus_per_worker`` CPUs
    (the scoring actors' ``cpus_per_actor`` is a separate budget).
    """
    w = cfg.warmup
    return DPOConfig(
        model=reference, beta=cfg.beta, epochs=w.epochs, max_steps=w.max_steps,
        lr=w.learning_rate, batch_size=w.per_device_batch_size,
        grad_accum=w.batch_size // (w.per_device_batch_size * w.num_workers),
        warmup_ratio=w.warmup_ratio, scheduler=w.lr_scheduler, max_length=w.max_length,
        seed=w.seed, bf16=w.bf16,
        use_gpu=w.use_gpu if w.use_gpu is not None else cfg.gpus_per_actor > 0,
        num_workers=w.num_workers, cpus_per_worker=w.cpus_per_worker,
        trust_remote_code=cfg.trust_remote_code, eval_fraction=0.0, eval_sample_prompts=0,
        name=name)


def _train(pairs: pa.Table, reference: str, output_dir: Path, cfg: LossDiffConfig, echo) -> dict:
    """One warm-up run through ``pdray.align.train_dpo``; its metrics and model folder."""
    from pdray.align import train_dpo  # torch, trl, ray: only when a warm-up runs

    acfg = align_config(cfg, reference, f"lossdiff-{output_dir.name}")
    echo(f"[lossdiff] DPO via pdray.align (Ray Train) on {pairs.num_rows} pairs -> {output_dir}")
    res = train_dpo(pairs, acfg, str(output_dir), echo=echo)
    return dict(res.metrics or {}, pairs=pairs.num_rows, model_dir=str(res.model_dir))


def warmup(pairs: pa.Table, cfg: LossDiffConfig, output_dir: str | Path, *,
           echo=print) -> WarmupResult:
    """Split off the validation set; train θ on the rest and θ_val on it (both from
    ``cfg.reference``). Writes ``policy/`` and ``aux/`` (each a ``train_dpo`` output folder: the
    model in ``model/``, its manifest), ``train_ids.parquet``, ``val_ids.parquet`` and
    ``manifest.json`` under ``output_dir``."""
    if not cfg.reference:
        raise ConfigError("lossdiff warm-up needs reference=<model folder> (the SFT model)")
    for c in ("id", "prompt", "chosen", "rejected"):
        if c not in pairs.column_names:
            raise DataError("required column is missing", field=c)
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    train, val = split_validation(pairs, cfg)
    echo(f"[lossdiff] warm-up: {train.num_rows} training pairs, {val.num_rows} validation "
         f"pairs (seed {cfg.split_seed})")
    write_table(pa.table({"id": train["id"]}), out / "train_ids.parquet")
    write_table(pa.table({"id": val["id"]}), out / "val_ids.parquet")
    m_pol = _train(train, cfg.reference, out / "policy", cfg, echo)
    m_aux = _train(val, cfg.reference, out / "aux", cfg, echo)
    policy_dir, aux_dir = Path(m_pol["model_dir"]), Path(m_aux["model_dir"])
    manifest = {"reference": cfg.reference, "policy_dir": str(policy_dir), "aux_dir": str(aux_dir),
                "pairs_hash": table_hash(pairs), "n_train": train.num_rows,
                "n_val": val.num_rows, "policy_metrics": m_pol, "aux_metrics": m_aux,
                "config": json.loads(cfg.model_dump_json())}
    write_json(manifest, out / "manifest.json")
    return WarmupResult(policy_dir, aux_dir, cfg.reference, train["id"].to_pylist(),
                        val["id"].to_pylist(), manifest)
