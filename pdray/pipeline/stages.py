"""The pipeline's stages: one ``build_<stage>(cfg, inputs, out, echo) -> manifest`` each, and
:data:`STAGES`, which declares for each its config section, the stages it reads and any other
value its key depends on.

A build function only does the stage's work: ``inputs`` are the typed manifests
(:mod:`pdray.pipeline.manifests`) of the stages it reads, ``out`` its (empty) directory; it
returns its own. Keys, reuse, locking, the manifest marker, timing and
tracking belong to :func:`pdray.pipeline.protocol.run_stage`.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from pdray.data import synthetic_pairs
from pdray.data.assemble import assemble
from pdray.errors import PdrayError
from pdray.eval import evaluate_models
from pdray.fingerprint import file_fingerprint
from pdray.io import read_table, write_table
from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.manifests import (
    DataManifest,
    DPOManifest,
    EvalManifest,
    LossDiffManifest,
    ReportManifest,
    RMManifest,
    ScoreManifest,
    SelectManifest,
)
from pdray.pipeline.protocol import Stage
from pdray.report import build_report as render_report
from pdray.selection import SelectionResult, select, write_selection
from pdray.selection.scores import join_logprob_scores, length_term, read_scores, rm_metrics_for
from pdray.selection.selectors import NEEDS
from pdray.splits import hash_holdout

log = logging.getLogger("pdray.pipeline")


def split_holdout(table: pa.Table, fraction: float, seed: int) -> tuple[pa.Table, pa.Table]:
    """Deterministic train/test split by a seeded hash of ``id`` (stable under row order)."""
    if fraction <= 0:
        return table, table.slice(0, 0)
    test = pa.array(hash_holdout(table["id"].to_pylist(), fraction, str(seed)))
    return table.filter(pc.invert(test)), table.filter(test)


def data_source_key(cfg: PipelineConfig) -> dict:
    """The source's content in the data stage's key.

    For a local or remote file (or a folder of files): its size, ``mtime_ns`` and content hash
    (:func:`file_fingerprint`: XXH3 of the whole file under 64 MiB, else of its edges and 16
    sampled blocks), so a source edited in place is reloaded. A hub id (no such file) is keyed
    by its name and ``data.options`` (pin a revision there).
    """
    d = cfg.data
    if d.source == "synthetic":
        return {"source": None}
    fp = file_fingerprint(d.source)
    return {"source": dict(fp, file=d.source) if fp is not None else None}


def build_data(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> DataManifest:
    """Load D, split it, write ``pairs``, ``pairs_train`` and ``pairs_test`` (Parquet)."""
    d = cfg.data
    before = data_source_key(cfg)
    table, info = load_pairs_for_pipeline(cfg)
    if data_source_key(cfg) != before:
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
    return DataManifest(dir=str(out), pairs=str(out / "pairs.parquet"),
                        train=str(out / "pairs_train.parquet"),
                        test=str(out / "pairs_test.parquet"), rows=table.num_rows,
                        train_rows=train.num_rows, test_rows=test.num_rows, aspects=aspects,
                        **info)


def load_pairs_for_pipeline(cfg: PipelineConfig) -> tuple[pa.Table, dict]:
    """The aggregated dataset D: synthetic, or any source through
    :func:`pdray.data.assemble.assemble` (the same build as ``pdray data build``)."""
    d = cfg.data
    if d.source == "synthetic":
        kw = {} if d.conflict is None else {"conflict_rate": d.conflict}
        t = synthetic_pairs(d.n_pairs, aspects=d.aspects, length_effect=d.length_effect,
                            seed=d.seed, **kw)
        return t, {"source": "synthetic"}
    got = assemble(d)
    info: dict[str, Any] = {"source": d.source, "format": d.format,
                            "dropped": len(got.load.dropped) if got.load.dropped is not None else 0}
    if got.build is not None:
        info["achieved_conflict"] = got.build.achieved_conflict
    return got.table, info


def build_rm(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> RMManifest:
    """One reward model per aspect on D's training split (and the baselines' extra models)."""
    from pdray.rm.train import train_reward_models  # torch, trl: only when the stage runs

    data = inputs["data"]
    echo(f"[rm] training {cfg.rm.mode} reward models ({cfg.rm.backbone}) for "
         f"{len(data.aspects)} aspects in parallel")
    rm_set = train_reward_models(data.train, cfg.rm, str(out))
    no_debias = out / "no_debias"
    return RMManifest(dir=str(out), aspects=rm_set.aspects, rho=rm_set.rho,
                      length_debias=rm_set.length_debias,
                      no_debias_dir=str(no_debias) if (no_debias / "rm_set.json").exists()
                      else None)


def build_score(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> ScoreManifest:
    """Cross pseudo-rewards of every training pair under every aspect's model (and under the
    no-mitigation models when the rm stage trained them: ablation A2)."""
    from pdray.scoring import score_pairs

    data, rm = inputs["data"], inputs["rm"]
    echo("[score] cross pseudo-rewarding every pair under every aspect model")
    run = score_pairs(data.train, rm.dir, str(out / "scores"), cfg.score)
    no_debias = None
    if rm.no_debias_dir:
        echo("[score] scoring with the no-mitigation reward models (ablation A2)")
        no_debias = str(score_pairs(data.train, rm.no_debias_dir, str(out / "scores_no_debias"),
                                    cfg.score).output_dir)
    return ScoreManifest(dir=str(out), scores=str(run.output_dir), scores_no_debias=no_debias)


def lossdiff_reference_key(cfg: PipelineConfig) -> dict:
    """Without ``lossdiff.reference`` the warm-up starts from the DPO stage's model."""
    return {"reference": cfg.lossdiff.reference or cfg.dpo.model}


def build_lossdiff(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> LossDiffManifest:
    """The second seed's scores (METHOD.md, "Second seed"): warm-up DPO of θ on D minus a
    validation set and of θ_val on it, then LossDiff and IRM of every training pair."""
    from pdray.align.train import resolve_policy
    from pdray.lossdiff import score_logprobs, warmup

    data = inputs["data"]
    pairs = read_table(data.train)
    lcfg = cfg.lossdiff
    if lcfg.reference is None:
        texts = pairs["prompt"].to_pylist()[:1000] + pairs["chosen"].to_pylist()[:1000]
        lcfg = lcfg.model_copy(update={
            "reference": resolve_policy(cfg.dpo.model, out / "_base", texts)})
    w = warmup(pairs, lcfg, out / "warmup", echo=echo)
    score_logprobs(pairs, str(w.policy_dir), lcfg.reference, str(w.aux_dir), out / "scores",
                   lcfg, echo=echo)
    return LossDiffManifest(
        dir=str(out), scores=str(out / "scores"), reference=lcfg.reference,
        policy=str(w.policy_dir), aux=str(w.aux_dir),
        metrics={"warmup_policy_loss": w.manifest["policy_metrics"].get("train_loss"),
                 "warmup_aux_loss": w.manifest["aux_metrics"].get("train_loss")})


def _selection_scores(strategy: str, inputs: dict) -> tuple[pa.Table, float, str]:
    """The scores a strategy selects on, as its :class:`Needs` declares, with ρ and the length
    mode their manifest records (the same as ``pdray select`` reads): the score set it names
    (the no-mitigation scores for ``no_debias``), joined with the LossDiff / IRM columns for
    the selectors that read them."""
    needs = NEEDS[strategy]
    path = getattr(inputs["score"], needs.scores)
    if not path:
        raise PdrayError(f"{strategy} needs the {needs.scores} of its own reward models "
                         f"(rm.{needs.rm_switch})")
    table = read_scores(path)
    if needs.logprobs:
        from pdray.lossdiff import read_logprob_scores

        table = join_logprob_scores(table, read_logprob_scores(inputs["lossdiff"].scores),
                                    inputs["lossdiff"].scores)
    rho, mode = length_term(path)
    return table, rho, mode


def build_select(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> SelectManifest:
    """Every strategy of ``select.strategies`` on the scores; with DMPO to run, PD over all
    of D as well (``dmpo_input``: the Δφ estimate the DMPO loss reads)."""
    s = cfg.select
    pairs = read_table(inputs["data"].train)
    dirs, counts = {}, {}

    def one(strategy: str, budget: float, where: Path):
        table, rho, mode = _selection_scores(strategy, inputs)
        res = select(table, strategy, budget=budget, gamma=s.gamma, rho=rho,
                     length_debias=mode, fit_length=s.fit_length, seed=s.seed, pairs=pairs,
                     **dict(s.options.get(strategy, {})))
        write_selection(res, where)
        return res

    for strategy in s.strategies:
        res = one(strategy, s.budget, out / strategy)
        dirs[strategy], counts[strategy] = str(out / strategy), len(res.selected_ids)
        echo(f"[select] {strategy}: kept {counts[strategy]} of {pairs.num_rows}")
    rho, mode = length_term(inputs["score"].scores)
    dmpo_input = None
    if wants_dmpo(cfg):
        one("pd", 1.0, out / "_dmpo_input")
        dmpo_input = str(out / "_dmpo_input" / "selected.parquet")
    return SelectManifest(dir=str(out), strategies=list(s.strategies), selections=dirs,
                          counts=counts, rho=rho, length_debias=mode, dmpo_input=dmpo_input)


def wants_dmpo(cfg: PipelineConfig) -> bool:
    """DMPO runs when ``run.dpo_strategies`` names it (all of D with its PD column)."""
    return "dpo" in cfg.run.stages and "dmpo" in (cfg.run.dpo_strategies or [])


def dpo_strategies(cfg: PipelineConfig) -> dict:
    """The dpo stage's key beyond its section: which subsets it aligns on."""
    return {"strategies": cfg.run.dpo_strategies or list(cfg.select.strategies)}


def build_dpo(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> DPOManifest:
    """DPO on each selected subset of ``run.dpo_strategies`` (DMPO on all of D for ``dmpo``),
    with the held-out implicit-reward accuracy of each policy."""
    from pdray.align import implicit_reward_accuracy, train_dpo

    sel = inputs["select"]
    test = read_table(inputs["data"].test)
    models, metrics = {}, {}
    for strategy in dpo_strategies(cfg)["strategies"]:
        run_cfg = cfg.dpo
        if strategy == "dmpo":
            pairs_path = sel.dmpo_input
            run_cfg = cfg.dpo.model_copy(update={"loss": "dmpo"})
        elif strategy in sel.selections:
            pairs_path = str(Path(sel.selections[strategy]) / "selected.parquet")
        else:
            raise PdrayError(f"dpo strategy {strategy!r} was not selected "
                             f"(select.strategies: {sel.strategies})")
        echo(f"[dpo] {run_cfg.loss} on '{strategy}' ({pairs_path})")
        res = train_dpo(pairs_path, run_cfg, str(out / strategy))
        models[strategy] = str(res.model_dir)
        m = dict(res.metrics or {})
        if test.num_rows:
            acc = implicit_reward_accuracy(res.model_dir, res.manifest.get("ref_model_dir")
                                           or res.manifest.get("ref_model"), test,
                                           beta=run_cfg.beta, max_length=run_cfg.max_length)
            m["heldout"] = acc
            echo(f"[dpo] {strategy}: held-out implicit-reward accuracy "
                 f"{acc.get('accuracy', float('nan')):.3f}")
        metrics[strategy] = m
    return DPOManifest(dir=str(out), models=models, metrics=metrics)


def build_eval(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> EvalManifest:
    """Generation and the pairwise judge for every aligned policy."""
    return EvalManifest(dir=str(out), results=evaluate_models(inputs["dpo"].models, cfg.eval,
                                                              str(out), echo=echo))


def build_report(cfg: PipelineConfig, inputs: dict, out: Path, echo) -> ReportManifest:
    """The HTML report of the selections (and of the DPO runs when they ran)."""
    score, sel, dpo = inputs["score"], inputs["select"], inputs.get("dpo")
    scores = read_scores(score.scores)
    pairs = read_table(inputs["data"].train)
    selections = {s: SelectionResult.load(d) for s, d in sel.selections.items()}
    links = {f"{name} stage": str(Path(d) / "manifest.json")
             for name, d in sel.selections.items()}
    if dpo:
        links.update({f"dpo: {s}": str(Path(m).parent / "manifest.json")
                      for s, m in dpo.models.items()})
    links["score manifest"] = str(Path(score.scores) / "manifest.json")
    html = render_report(scores, selections, str(out), pairs=pairs, gamma=cfg.select.gamma,
                         rho=sel.rho, length_debias=sel.length_debias, links=links,
                         rm_metrics=rm_metrics_for(score.scores))
    echo(f"[report] {html}")
    return ReportManifest(dir=str(out), html=str(html))


STAGES: dict[str, Stage] = {s.name: s for s in (
    Stage("data", build_data, DataManifest, section="data", extra_key=data_source_key,
          cached=lambda m: f": {m.train_rows} train / {m.test_rows} test pairs"),
    Stage("rm", build_rm, RMManifest, section="rm", reads=("data",),
          cached=lambda m: f": {m.dir}"),
    Stage("score", build_score, ScoreManifest, section="score", reads=("data", "rm"),
          cached=lambda m: f": {m.scores}"),
    Stage("lossdiff", build_lossdiff, LossDiffManifest, section="lossdiff", reads=("data",),
          extra_key=lossdiff_reference_key, cached=lambda m: f": {m.scores}"),
    Stage("select", build_select, SelectManifest, section="select",
          reads=("data", "score", "lossdiff"), extra_key=lambda cfg: {"dmpo": wants_dmpo(cfg)},
          cached=lambda m: f": {', '.join(m.strategies)}"),
    Stage("dpo", build_dpo, DPOManifest, section="dpo", reads=("data", "select"),
          extra_key=dpo_strategies, cached=lambda m: f": {', '.join(m.models)}"),
    Stage("eval", build_eval, EvalManifest, section="eval", reads=("dpo",)),
    Stage("report", build_report, ReportManifest, reads=("data", "score", "select", "dpo"),
          extra_key=lambda cfg: {"gamma": cfg.select.gamma}, cached=lambda m: ""),
)}
"""The pipeline's stages by name, in the order :data:`pdray.pipeline.config.STAGES` runs them."""
