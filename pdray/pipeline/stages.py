"""One function per pipeline stage: inputs and config in, a finished stage directory out.

Each function is idempotent through :class:`~pdray.pipeline.cache.StageCache`: the stage key is a
hash of the stage's config section and the keys of the stages it reads, so a re-run skips
finished stages and a changed setting recomputes only what depends on it.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pdray.data import build_conflict_dataset, load_source, synthetic_pairs
from pdray.data.loaders import loader_for
from pdray.errors import PdrayError
from pdray.eval import evaluate_models
from pdray.io import read_table, write_table
from pdray.pipeline.cache import StageCache, content_hash, file_fingerprint, stage_key
from pdray.pipeline.config import PipelineConfig
from pdray.report import build_report
from pdray.selection import SelectionResult, select, write_selection
from pdray.selection.scores import length_term, read_scores, rm_metrics_for
from pdray.splits import hash_holdout

log = logging.getLogger("pdray.pipeline")


def split_holdout(table: pa.Table, fraction: float, seed: int) -> tuple[pa.Table, pa.Table]:
    """Deterministic train/test split by a seeded hash of ``id`` (stable under row order)."""
    if fraction <= 0:
        return table, table.slice(0, 0)
    test = pa.array(hash_holdout(table["id"].to_pylist(), fraction, str(seed)))
    return table.filter(pc.invert(test)), table.filter(test)


def run_once(cache: StageCache, stage: str, key: str, echo, cached: Callable[[dict], str],
             build: Callable[[Path], dict]) -> dict:
    """A stage's finished record for ``key``: the one on disk (``cached(record)`` is said), or
    ``build(out)``'s, computed under the stage's lock (a second run waiting on the lock finds
    it finished) and marked finished last, so an interrupted stage is recomputed."""
    done = cache.finished(stage, key)
    if done:
        echo(f"[{stage}] cached{cached(done)}")
        return done
    with cache.lock(stage, key) as out:
        if (done := cache.finished(stage, key)):
            return done
        return cache.mark(stage, key, build(out))


def run_data(cfg: PipelineConfig, cache: StageCache, echo) -> dict:
    """Load D, split it, write the stage's Parquet files.

    The key covers the config *and the source's content*: for a local or remote file (or a
    folder of files) its size, ``mtime_ns`` and content hash (:func:`file_fingerprint`: XXH3 of
    the whole file under 64 MiB, else of its edges and 16 sampled blocks), so a source edited in
    place is reloaded. A hub id (no such file) is keyed by its name and ``data.options`` (pin a
    revision there). Later stages key on the content of the files written here.
    """
    d = cfg.data
    source = None
    if d.source != "synthetic":
        fp = file_fingerprint(d.source)
        source = dict(fp, file=d.source) if fp is not None else None
    key = stage_key("data", {"cfg": d.model_dump(), "source": source})

    def build(out: Path) -> dict:
        table, info = load_pairs_for_pipeline(cfg)
        if source is not None and file_fingerprint(d.source) != fp:
            raise PdrayError(f"[data] {d.source} changed while it was being read: run again")
        if d.limit:
            table = table.slice(0, d.limit)
        train, test = split_holdout(table, d.test_fraction, d.seed)
        write_table(table, out / "pairs.parquet")
        write_table(train, out / "pairs_train.parquet")
        write_table(test, out / "pairs_test.parquet")
        aspects = sorted(pc.unique(table["aspect"]).to_pylist())
        echo(f"[data] {table.num_rows} pairs, aspects {aspects}: "
             f"{train.num_rows} train / {test.num_rows} held out")
        return {"dir": str(out), "pairs": str(out / "pairs.parquet"),
                "train": str(out / "pairs_train.parquet"), "test": str(out / "pairs_test.parquet"),
                "rows": table.num_rows, "train_rows": train.num_rows, "test_rows": test.num_rows,
                "aspects": aspects, **info}

    return run_once(cache, "data", key, echo,
                lambda d: f": {d['train_rows']} train / {d['test_rows']} test pairs", build)


def load_pairs_for_pipeline(cfg: PipelineConfig) -> tuple[pa.Table, dict]:
    """The aggregated dataset D: synthetic, a canonical pair file, or any loader + conflict build."""
    d = cfg.data
    if d.source == "synthetic":
        t = synthetic_pairs(d.n_pairs, aspects=d.aspects, conflict_rate=d.conflict or 0.0,
                            length_effect=d.length_effect, seed=d.seed)
        return t, {"source": "synthetic"}
    opts = dict(d.options)
    if "seed" in inspect.signature(loader_for(d.format)).parameters:
        opts.setdefault("seed", d.seed)  # data.seed seeds the loader too (e.g. PKU aspects)
    res = load_source(d.source, d.format, **opts)
    table = res.table
    info: dict[str, Any] = {"source": d.source, "format": d.format,
                            "dropped": len(res.dropped) if res.dropped is not None else 0}
    if "chosen" not in table.column_names:  # per-response ratings: build conflict pairs
        built = build_conflict_dataset(table, target_conflict=d.conflict, seed=d.seed)
        table = built.table
        info["achieved_conflict"] = built.achieved_conflict
    return table, info


def run_rm(cfg: PipelineConfig, rm_cfg, data: dict, cache: StageCache, echo) -> dict:
    from pdray.rm.train import train_reward_models  # torch, trl: only when the stage runs

    strategies = set(cfg.select.strategies)
    rm_cfg = rm_cfg.model_copy(update={
        "train_holistic": rm_cfg.train_holistic or "holistic" in strategies,
        "train_no_debias": rm_cfg.train_no_debias or "no_debias" in strategies})
    key = stage_key("rm", {"cfg": rm_cfg.model_dump(mode="json"),
                           "data": content_hash(data["train"])})

    def build(out: Path) -> dict:
        echo(f"[rm] training {rm_cfg.mode} reward models ({rm_cfg.backbone}) for "
             f"{len(data['aspects'])} aspects in parallel")
        rm_set = train_reward_models(data["train"], rm_cfg, str(out))
        no_debias = out / "no_debias"
        return {"dir": str(out), "aspects": rm_set.aspects, "rho": rm_set.rho,
                "length_debias": rm_set.length_debias,
                "no_debias_dir": (str(no_debias) if (no_debias / "rm_set.json").exists()
                                  else None)}

    return run_once(cache, "rm", key, echo, lambda d: f": {d['dir']}", build)


def run_score(cfg: PipelineConfig, score_cfg, data: dict, rm: dict, cache: StageCache,
              echo) -> dict:
    from pdray.scoring import score_pairs

    key = stage_key("score", {"cfg": score_cfg.model_dump(mode="json"),
                              "data": content_hash(data["train"]), "rm": content_hash(rm["dir"])})

    def build(out: Path) -> dict:
        echo("[score] cross pseudo-rewarding every pair under every aspect model")
        run = score_pairs(data["train"], rm["dir"], str(out / "scores"), score_cfg)
        info = {"dir": str(out), "scores": str(run.output_dir)}
        if rm.get("no_debias_dir"):
            echo("[score] scoring with the no-mitigation reward models (ablation A2)")
            nd = score_pairs(data["train"], rm["no_debias_dir"], str(out / "scores_no_debias"),
                             score_cfg)
            info["scores_no_debias"] = str(nd.output_dir)
        return info

    return run_once(cache, "score", key, echo, lambda d: f": {d['scores']}", build)


def run_select(cfg: PipelineConfig, data: dict, rm: dict | None, score: dict,
               cache: StageCache, echo) -> dict:
    s = cfg.select
    rho, mode = length_term(score["scores"])  # as the scores manifest records: = `pdray select`
    key = stage_key("select", {"cfg": s.model_dump(), "score": content_hash(score["dir"]),
                               "data": content_hash(data["train"]), "rho": rho,
                               "length_debias": mode})

    def build(out: Path) -> dict:
        scores = read_scores(score["scores"])
        pairs = read_table(data["train"])
        dirs, counts = {}, {}
        for strategy in s.strategies:
            table, name, srho, smode = scores, strategy, rho, mode
            if strategy == "no_debias":
                if not score.get("scores_no_debias"):
                    raise RuntimeError("no_debias needs the no-mitigation reward models")
                table = read_scores(score["scores_no_debias"])
                srho, smode = length_term(score["scores_no_debias"])
            opts = dict(s.options.get(strategy, {}))
            res = select(table, name, budget=s.budget, gamma=s.gamma, rho=srho,
                         length_debias=smode, fit_length=s.fit_length, seed=s.seed,
                         pairs=pairs, **opts)
            write_selection(res, out / strategy)
            dirs[strategy] = str(out / strategy)
            counts[strategy] = len(res.selected_ids)
            echo(f"[select] {strategy}: kept {counts[strategy]} of {pairs.num_rows}")
        return {"dir": str(out), "strategies": list(s.strategies), "selections": dirs,
                "counts": counts, "rho": rho, "length_debias": mode}

    return run_once(cache, "select", key, echo, lambda d: f": {', '.join(d['strategies'])}", build)


def run_dpo(cfg: PipelineConfig, dpo_cfg, data: dict, score: dict | None, select_info: dict,
            rm: dict | None, cache: StageCache, echo) -> dict:
    """DPO on each selected subset (and DMPO on all of D when ``dmpo`` is asked for)."""
    from pdray.align import implicit_reward_accuracy, train_dpo

    strategies = cfg.run.dpo_strategies or list(select_info["strategies"])
    key = stage_key("dpo", {"cfg": dpo_cfg.model_dump(mode="json"),
                            "select": content_hash(select_info["dir"]), "strategies": strategies,
                            "data": content_hash(data["train"]), "test": content_hash(data["test"]),
                            "score": content_hash(score["dir"]) if score else None})

    def build(out: Path) -> dict:
        test = read_table(data["test"])
        models, metrics = {}, {}
        for strategy in strategies:
            run_cfg = dpo_cfg
            if strategy == "dmpo":
                pairs_path = _dmpo_pairs(cfg, data, score, rm, out)
                run_cfg = dpo_cfg.model_copy(update={"loss": "dmpo"})
            elif strategy in select_info["selections"]:
                pairs_path = str(Path(select_info["selections"][strategy]) / "selected.parquet")
            else:
                raise RuntimeError(f"dpo strategy {strategy!r} was not selected "
                                   f"(select.strategies: {select_info['strategies']})")
            echo(f"[dpo] {run_cfg.loss} on '{strategy}' ({pairs_path})")
            res = train_dpo(pairs_path, run_cfg, str(out / strategy))
            models[strategy] = str(res.model_dir)
            m = dict(res.metrics or {})
            if test.num_rows:
                acc = implicit_reward_accuracy(res.model_dir, res.manifest.get("ref_model_dir")
                                               or res.manifest.get("ref_model"), test,
                                               beta=run_cfg.beta)
                m["heldout"] = acc
                echo(f"[dpo] {strategy}: held-out implicit-reward accuracy "
                     f"{acc.get('accuracy', float('nan')):.3f}")
            metrics[strategy] = m
        return {"dir": str(out), "models": models, "metrics": metrics}

    return run_once(cache, "dpo", key, echo, lambda d: f": {', '.join(d['models'])}", build)


def _dmpo_pairs(cfg: PipelineConfig, data: dict, score: dict | None, rm: dict | None,
                out: Path) -> str:
    """All of D with its per-pair PD column (the Δφ estimate DMPO reads)."""
    if score is None:
        raise RuntimeError("dmpo needs the scoring stage (PD estimates Δφ)")
    rho, mode = length_term(score["scores"])
    res = select(read_scores(score["scores"]), "pd", budget=1.0, gamma=cfg.select.gamma, rho=rho,
                 length_debias=mode, fit_length=cfg.select.fit_length, seed=cfg.select.seed,
                 pairs=read_table(data["train"]))
    write_selection(res, out / "_dmpo_input")
    return str(out / "_dmpo_input" / "selected.parquet")


def run_eval(cfg: PipelineConfig, eval_cfg, dpo: dict, cache: StageCache, echo) -> dict:
    key = stage_key("eval", {"cfg": eval_cfg.model_dump(mode="json"),
                             "dpo": content_hash(dpo["dir"])})

    def build(out: Path) -> dict:
        return {"dir": str(out),
                "results": evaluate_models(dpo["models"], eval_cfg, str(out), echo=echo)}

    return run_once(cache, "eval", key, echo, lambda d: "", build)


def run_report(cfg: PipelineConfig, data: dict, score: dict, select_info: dict,
               dpo: dict | None, cache: StageCache, echo) -> dict:
    key = stage_key("report", {"select": content_hash(select_info["dir"]),
                               "dpo": content_hash(dpo["dir"]) if dpo else None,
                               "score": content_hash(score["dir"]),
                               "data": content_hash(data["train"]), "gamma": cfg.select.gamma})

    def build(out: Path) -> dict:
        scores = read_scores(score["scores"])
        pairs = read_table(data["train"])
        selections = {s: SelectionResult.load(d) for s, d in select_info["selections"].items()}
        links = {f"{name} stage": str(Path(d) / "manifest.json")
                 for name, d in select_info["selections"].items()}
        if dpo:
            links.update({f"dpo: {s}": str(Path(m).parent / "manifest.json")
                          for s, m in dpo["models"].items()})
        links["score manifest"] = str(Path(score["scores"]) / "manifest.json")
        html = build_report(scores, selections, str(out), pairs=pairs, gamma=cfg.select.gamma,
                            rho=select_info.get("rho", 0.0),
                            length_debias=select_info.get("length_debias", "penalty"), links=links,
                            rm_metrics=rm_metrics_for(score["scores"]))
        echo(f"[report] {html}")
        return {"dir": str(out), "html": str(html)}

    return run_once(cache, "report", key, echo, lambda d: f": {d['html']}", build)
