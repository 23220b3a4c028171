"""``train_reward_models``: every aspect's reward model, concurrently, on Ray Train.

Each training unit (an aspect in ``separate`` mode, the shared model in ``all_in_one`` /
``multi_head`` mode, the A1 holistic model, the A2 no-mitigation models) is its own
``TorchTrainer`` with fractional CPUs (or GPUs), and all units are launched at once. Checkpoints
go through Ray Train (``RunConfig(storage_path, name)``, ``FailureConfig``), so a failed worker
resumes from the last checkpoint, and a finished unit (same data and config) is skipped on a
re-run.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from pdray.data.loaders import read_pairs
from pdray.errors import PdrayError
from pdray.fingerprint import table_hash
from pdray.io import write_json
from pdray.models.backbones import check_backbone_layers, fix_pad_token, resolve_backbone
from pdray.ray_train import fit_on_ray, storage_path
from pdray.raysetup import init_ray
from pdray.rm import metrics as RM
from pdray.rm.config import RMConfig, eval_every
from pdray.rm.dataset import delta_len, training_rows
from pdray.rm.losses import fit_length_coef, length_scale
from pdray.rm.model_set import HOLISTIC, MANIFEST, RewardModelSet
from pdray.rm.sampling import length_balanced_sample
from pdray.rm.worker import train_unit
from pdray.schema import validate_pairs
from pdray.splits import hash_holdout


@dataclass
class Unit:
    name: str                 # folder name under its set's directory
    set_dir: Path             # the reward-model set it belongs to
    table: pa.Table           # training pairs (already sampled)
    cfg: RMConfig
    num_labels: int = 1
    system_prompts: dict | None = None
    heads: dict | None = None
    sampling: dict | None = None

    @property
    def out(self) -> Path:
        return self.set_dir / self.name


def holdout_mask(table: pa.Table, fraction: float, seed: int) -> np.ndarray:
    """Seeded held-out split by prompt: all pairs of a prompt (every aspect's copy of the same
    pair included) land on the same side, so held-out and cross-aspect metrics never see a
    training prompt."""
    return hash_holdout(table["prompt"].to_pylist(), fraction, f"rm{seed}")


def _sample(table: pa.Table, tok, cfg: RMConfig, seed: int) -> tuple[pa.Table, dict]:
    return length_balanced_sample(table, cfg.tau, cfg.sample_ratio, seed, delta_len(tok, table),
                                  cfg.balanced, cfg.min_sample_pairs)


def plan_units(train: pa.Table, cfg: RMConfig, out: Path, tok, aspects: list[str]) -> list[Unit]:
    """The training units of one reward-model set (see module docstring)."""
    units: list[Unit] = []
    per_aspect: dict[str, tuple[pa.Table, dict]] = {}
    for i, a in enumerate(aspects):
        d_k = train.filter(pc.equal(train["aspect"], a))
        sample, stats = _sample(d_k, tok, cfg, cfg.seed + i)
        if sample.num_rows < cfg.min_pairs:
            raise PdrayError(f"aspect {a!r}: only {sample.num_rows} training pairs after sampling "
                             f"(|D_k| = {d_k.num_rows}, p_r = {cfg.sample_ratio}); at least "
                             f"{cfg.min_pairs} are needed (raise rm.sample_ratio or add data)")
        per_aspect[a] = (sample, stats)
    if cfg.mode == "separate":
        units += [Unit(a, out, s, cfg, sampling=st) for a, (s, st) in per_aspect.items()]
    else:
        union = pa.concat_tables([s for s, _ in per_aspect.values()])
        stats = {a: st for a, (_, st) in per_aspect.items()}
        if cfg.mode == "all_in_one":
            units.append(Unit("all_in_one", out, union, cfg, sampling=stats,
                              system_prompts={a: cfg.system_prompt(a) for a in aspects}))
        else:
            units.append(Unit("multi_head", out, union, cfg, num_labels=len(aspects),
                              heads={a: i for i, a in enumerate(aspects)}, sampling=stats))
    return units


def train_reward_models(pairs: pa.Table | str, cfg: RMConfig, output_dir: str, *,
                        echo=print) -> RewardModelSet:
    """Train the reward-model set (and the requested ablation models); return its manifest."""
    import ray  # noqa: F401  (Ray must be up: pdray.raysetup.init_ray)

    init_ray()
    table = (read_pairs(pairs, min_aspects=1) if isinstance(pairs, str)
             else validate_pairs(pairs, "<pairs table>"))
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    aspects = sorted(pc.unique(table["aspect"]).to_pylist())
    if HOLISTIC in aspects:
        raise PdrayError(f"aspect name {HOLISTIC!r} is reserved for the A1 holistic model")
    texts = table["prompt"].to_pylist()[:1000] + table["chosen"].to_pylist()[:1000]
    n_labels = len(aspects) if cfg.mode == "multi_head" else 1
    backbone = resolve_backbone(cfg.backbone, out / "_backbone", texts=texts, seed=cfg.seed,
                                num_labels=n_labels)
    backbone1 = (resolve_backbone(cfg.backbone, out / "_backbone", texts=texts, seed=cfg.seed)
                 if n_labels > 1 else backbone)
    from transformers import AutoConfig, AutoTokenizer

    if cfg.backbone_layers:   # before any worker starts
        check_backbone_layers(AutoConfig.from_pretrained(
            backbone, trust_remote_code=cfg.trust_remote_code), backbone, cfg.backbone_layers)
    tok = AutoTokenizer.from_pretrained(backbone, trust_remote_code=cfg.trust_remote_code)
    fix_pad_token(tok, echo=lambda m: echo(f"[rm] {m}"))
    hold = holdout_mask(table, cfg.holdout_fraction, cfg.seed)
    train, heldout = table.filter(pa.array(~hold)), table.filter(pa.array(hold))
    data_hash = table_hash(table.select(["id", "aspect", "prompt", "chosen", "rejected"]))

    units = plan_units(train, cfg, out, tok, aspects)
    nd_cfg = None
    if cfg.train_no_debias:
        nd_cfg = cfg.model_copy(update={"balanced": False, "rho": 0.0, "length_debias": "none",
                                        "min_sample_pairs": 0})
        units += plan_units(train, nd_cfg, out / "no_debias", tok, aspects)
    if cfg.train_holistic:
        sample, stats = _sample(train, tok, cfg, cfg.seed + 999)
        units.append(Unit(HOLISTIC, out, sample, cfg, sampling=stats))
    echo(f"[rm] {len(units)} training units ({', '.join(u.name for u in units)}) on "
         f"{train.num_rows} pairs, {heldout.num_rows} held out; launching them concurrently")

    def run(u: Unit) -> dict:
        return _train_unit(u, backbone if u.num_labels > 1 else backbone1, tok, data_hash, echo)

    stale = [u for u in units if not _is_trained(u, data_hash)]
    if stale:  # unpublish: no reader may use a set whose units are being replaced
        for d in {u.set_dir for u in stale}:
            if (d / MANIFEST).exists():
                (d / MANIFEST).replace(d / (MANIFEST + ".stale"))
        for u in stale:  # a half-written unit folder is never "resumed" as a model
            if u.out.exists() and not (u.out / "manifest.json").exists():
                shutil.rmtree(u.out)
    with ThreadPoolExecutor(max_workers=len(units)) as pool:
        manifests = list(pool.map(run, units))
    by_name = {(u.set_dir, u.name): m for u, m in zip(units, manifests)}

    _write_set(out, cfg, aspects, units, by_name)
    if nd_cfg is not None:
        _write_set(out / "no_debias", nd_cfg, aspects, units, by_name)
    if heldout.num_rows:
        echo(f"[rm] evaluating on {heldout.num_rows} held-out pairs")
    _evaluate(out, heldout, units, cfg, echo)
    if nd_cfg is not None:
        _evaluate(out / "no_debias", heldout, units, nd_cfg, echo)
    return RewardModelSet.load(out)


def _unit_key(u: Unit, data_hash: str) -> str:
    """Content key of a unit: data, config, sample and which set it belongs to — never the
    absolute folder, so a copied set is recognised as trained."""
    cfg = u.cfg.model_dump(mode="json", exclude={"storage_path", "fail_once_at_step"})
    blob = json.dumps({"data": data_hash, "name": u.name, "cfg": cfg, "n": u.table.num_rows,
                       "sample": table_hash(u.table.select(["id"])),
                       "set": "no_debias" if u.set_dir.name == "no_debias" else "main"},
                      sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()


def _is_trained(u: Unit, data_hash: str) -> bool:
    """A unit is trained when its folder holds a model and a manifest with the current key."""
    man = u.out / "manifest.json"
    if not (man.exists() and (u.out / "config.json").exists()):
        return False
    try:
        return json.loads(man.read_text()).get("key") == _unit_key(u, data_hash)
    except (OSError, ValueError):
        return False


def plan_steps(n_rows: int, cfg: RMConfig) -> int:
    """Optimizer steps of a unit with ``n_rows`` training pairs: ``max_steps`` when given, else
    max(min_steps, ⌈epochs · steps per epoch⌉) — so a small D_k gets several passes and a large
    one keeps the paper's single epoch."""
    if cfg.max_steps:
        return int(cfg.max_steps)
    per_step = cfg.batch_size * cfg.grad_accum * cfg.num_workers_per_aspect
    per_epoch = max(1, math.ceil(n_rows / per_step))
    return max(int(cfg.min_steps), math.ceil(cfg.epochs * per_epoch))


def split_dev(table: pa.Table, fraction: float, seed: int, min_rows: int = 8
              ) -> tuple[pa.Table, pa.Table]:
    """(train, dev): a seeded ``fraction`` of a unit's sample, by prompt, for early stopping;
    no dev set when it would hold fewer than ``min_rows`` pairs."""
    if fraction <= 0:
        return table, table.slice(0, 0)
    dev = holdout_mask(table, fraction, seed + 7919)
    if int(dev.sum()) < min_rows or int((~dev).sum()) < min_rows:
        return table, table.slice(0, 0)
    return table.filter(pa.array(~dev)), table.filter(pa.array(dev))


def _train_unit(u: Unit, backbone: str, tok, data_hash: str, echo) -> dict:
    key = _unit_key(u, data_hash)
    if _is_trained(u, data_hash):
        echo(f"[rm:{u.name}] already trained (same data and config): skipping")
        return json.loads((u.out / "manifest.json").read_text())
    cfg = u.cfg
    fit, dev = split_dev(u.table, cfg.dev_fraction, cfg.seed)
    scale = length_scale(delta_len(tok, fit)) if cfg.length_debias == "learned" else 1.0
    row_kw = {"max_length": cfg.max_length, "rho": cfg.rho, "length_debias": cfg.length_debias,
              "system_prompts": u.system_prompts, "heads": u.heads, "length_scale": scale,
              "response_share": cfg.response_share}
    rows = training_rows(tok, fit, **row_kw)
    eval_rows = training_rows(tok, dev, **row_kw) if dev.num_rows else None
    coef0 = None
    if cfg.length_debias == "learned":  # start each head's w at the length-only MLE
        heads = rows.get("head") or [0] * len(rows["margin"])
        x, h = np.asarray(rows["margin"]), np.asarray(heads)
        coef0 = [fit_length_coef(x[h == i]) for i in range(u.num_labels)]
    steps = plan_steps(fit.num_rows, cfg)
    spec = {"cfg": cfg.model_dump(mode="json"), "name": u.name, "backbone": backbone,
            "num_labels": u.num_labels,
            "id2label": ({i: a for a, i in u.heads.items()} if u.heads else None),
            "rows": rows, "eval_rows": eval_rows, "planned_steps": steps,
            "length_scale": scale, "length_coef_init": coef0,
            "fail_marker": str(u.set_dir / f".{u.name}-{key[:8]}.failed-once")}
    t0 = time.time()
    if cfg.train_backbone:
        echo(f"[rm:{u.name}] training on {fit.num_rows} pairs for up to {steps} steps"
             f"{f' (early stopping on {dev.num_rows} dev pairs, every {eval_every(cfg, steps)} steps)' if dev.num_rows else ''}")
    else:
        echo(f"[rm:{u.name}] fitting the head on frozen features of {fit.num_rows} pairs"
             f"{f' (L2 chosen on {dev.num_rows} dev pairs)' if dev.num_rows else ''}")
    result = fit_on_ray(train_unit, spec, label=f"rm:{u.name}", name=f"rm-{u.name}-{key[:8]}",
                        storage=storage_path(cfg.storage_path, u.set_dir / "_ray"),
                        num_workers=cfg.num_workers_per_aspect,
                        cpus_per_worker=cfg.cpus_per_worker, use_gpu=cfg.use_gpu,
                        max_failures=cfg.max_failures)
    if u.out.exists():
        shutil.rmtree(u.out)
    result.checkpoint.to_directory(str(u.out))
    m = dict(result.metrics or {})
    manifest = {"key": key, "unit": u.name, "data_hash": data_hash, "pairs": u.table.num_rows,
                "config": cfg.model_dump(mode="json"), "rho": cfg.rho, "tau": cfg.tau,
                "sample_ratio": cfg.sample_ratio, "length_debias": cfg.length_debias,
                "sampling": u.sampling, "dev_pairs": dev.num_rows, "fit_pairs": fit.num_rows,
                "train": {k: m.get(k) for k in
                          ("train_loss", "first_loss", "steps", "planned_steps", "best_eval_loss",
                           "best_step", "eval_losses", "stopped_early", "pooling", "length_coef",
                           "learned_rho_per_token", "head_l2", "resumed", "start", "end")},
                "wall_seconds": round(time.time() - t0, 2), "launched_at": t0,
                "finished_at": time.time(), "model_path": str(u.out)}
    write_json(manifest, u.out / "manifest.json")
    best = m.get("best_eval_loss")
    best_txt = (f", best held-out BT loss {best:.4f} at step {m.get('best_step')}"
                if best is not None else "")
    resumed = " (resumed from a checkpoint)" if m.get("resumed") else ""
    what = (f"{m.get('steps')}/{steps} steps" if cfg.train_backbone
            else f"head fitted ({m.get('steps')} L-BFGS iterations, α = {m.get('head_l2')})")
    echo(f"[rm:{u.name}] done: {what}, loss "
         f"{m.get('first_loss', float('nan')):.4f} → {m.get('train_loss', float('nan')):.4f}"
         f"{best_txt}{resumed}")
    return manifest


def _write_set(root: Path, cfg: RMConfig, aspects: list[str], units: list[Unit],
               manifests: dict) -> RewardModelSet:
    if cfg.mode == "separate":
        paths = {a: a for a in aspects}
    else:
        paths = {a: cfg.mode for a in aspects}
    has_holistic = any(u.name == HOLISTIC and u.set_dir == root for u in units)
    rm_set = RewardModelSet(
        mode=cfg.mode, aspects=aspects, paths=paths,
        system_prompts={a: cfg.system_prompt(a) for a in aspects} if cfg.mode == "all_in_one" else {},
        rho=cfg.rho, length_debias=cfg.length_debias, max_length=cfg.max_length,
        response_share=cfg.response_share,
        holistic_path=HOLISTIC if has_holistic else None,
        extra={"units": {u.name: manifests[(u.set_dir, u.name)] for u in units if u.set_dir == root}})
    rm_set.save(root)
    return rm_set


def _evaluate(root: Path, heldout: pa.Table, units: list[Unit], cfg: RMConfig, echo) -> dict:
    """Held-out metrics of the set in ``root`` (:func:`pdray.rm.metrics.evaluate_set`), also
    written into each of its units' ``manifest.json``."""
    metrics = RM.evaluate_set(root, heldout, max_length=cfg.max_length,
                              trust_remote_code=cfg.trust_remote_code, echo=echo)
    if not metrics:
        return metrics
    for u in units:
        if u.set_dir != root or not (u.out / "manifest.json").exists():
            continue
        names = [u.name] if u.name in metrics["cross_accuracy"] else list(metrics["own"])
        man = json.loads((u.out / "manifest.json").read_text())
        man["metrics"] = {a: {**metrics["own"].get(a, {}),
                              "cross_accuracy": metrics["cross_accuracy"].get(a)} for a in names}
        write_json(man, u.out / "manifest.json")
    return metrics
