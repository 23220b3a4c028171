"""``pdray tune``: sweep λ, γ (and ρ, τ, aspect weights, …) with Ray Tune.

The upstream stages (data, reward models, scoring) run once, before the sweep, and every trial
reuses the same scored table through the stage cache; a search-space key that changes an
upstream section (``rm.tau``) makes the trials recompute that stage for their own value, again
shared between trials through the cache. Two objectives:

- ``selection`` (cheap): select with the trial's parameters and report the selection metrics of
  the first strategy (CP, conflict rate, mean Δlen) — needs ground truth for CP;
- ``dpo`` (full): DPO on the trial's subset one epoch at a time, reporting held-out
  implicit-reward accuracy after each, with ASHA stopping weak trials early.

The trainable is a plain function reporting with ``ray.tune.report`` (not the deprecated
``Tuner(trainer)``).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import yaml

from pdray.align.downstream import headline
from pdray.config import apply_overrides, dump_config
from pdray.errors import ConfigError
from pdray.io import read_table, write_json, write_text
from pdray.object_store import is_uri
from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.runner import run_pipeline
from pdray.pipeline.summary import selection_row
from pdray.selection.scores import read_scores


def search_space(spec: dict[str, Any]) -> dict:
    """Turn ``{key: [values]}`` / ``{key: {uniform|loguniform|randint: [lo, hi]}}`` into Tune's."""
    from ray import tune

    space = {}
    for key, v in spec.items():
        if isinstance(v, list):
            space[key] = tune.grid_search(v)
        elif isinstance(v, dict) and len(v) == 1:
            kind, bounds = next(iter(v.items()))
            fn = {"uniform": tune.uniform, "loguniform": tune.loguniform,
                  "randint": tune.randint, "choice": None}.get(kind)
            if kind == "choice":
                space[key] = tune.choice(bounds)
            elif fn is None:
                raise ConfigError(f"tune.search_space.{key}: unknown distribution {kind!r}")
            else:
                space[key] = fn(*bounds)
        else:
            raise ConfigError(f"tune.search_space.{key}: expected a list or one distribution")
    return space


def trial_config(base: dict, params: dict, trial_dir: str | None = None) -> PipelineConfig:
    overrides = [f"{k}={yaml.safe_dump(v, default_flow_style=True).strip()}"
                 for k, v in params.items()]
    data = apply_overrides(base, overrides)
    data.setdefault("run", {})["tracking"] = "none"
    return PipelineConfig.model_validate(data)


def _selection_trial(config: dict, base: dict) -> None:
    from ray import tune

    cfg = trial_config(base, config)
    res = run_pipeline(cfg, echo=lambda *_: None, upto="select")
    sel = res.manifests["select"]
    first = cfg.select.strategies[0]
    selected = read_table(Path(sel.selections[first]) / "selected.parquet")
    scores = read_scores(res.manifests["score"].scores)
    row = selection_row(first, selected, scores)
    tune.report({k: v for k, v in row.items() if k != "strategy"})


def _dpo_trial(config: dict, base: dict) -> None:
    from ray import tune

    from pdray.align import implicit_reward_accuracy, train_dpo  # torch, trl, ray

    cfg = trial_config(base, config)
    res = run_pipeline(cfg, echo=lambda *_: None, upto="select")
    sel, data = res.manifests["select"], res.manifests["data"]
    first = cfg.select.strategies[0]
    pairs_path = str(Path(sel.selections[first]) / "selected.parquet")
    dcfg = cfg.dpo
    epochs = max(1, int(dcfg.epochs or 1))
    test = read_table(data.test)
    model = dcfg.model
    ref = dcfg.ref_model or dcfg.model
    trial_out = Path(tune.get_context().get_trial_dir() if hasattr(tune, "get_context")
                     else ".").resolve()
    for epoch in range(1, epochs + 1):
        step_cfg = dcfg.model_copy(update={"model": model, "ref_model": ref, "epochs": 1,
                                           "name": f"epoch{epoch}"})
        r = train_dpo(pairs_path, step_cfg, str(trial_out / f"epoch{epoch}"))
        model = str(r.model_dir)
        acc = implicit_reward_accuracy(r.model_dir, r.manifest.get("ref_model_dir") or ref,
                                       test, beta=step_cfg.beta, max_length=step_cfg.max_length)
        # the objective: consensus accuracy (own-label where the pairs have no ratings)
        tune.report({"dpo_acc": headline(acc)[1],
                     "dpo_consensus_acc": acc.get("consensus_accuracy", math.nan),
                     "dpo_own_acc": acc.get("own_label_accuracy", math.nan), "epoch": epoch})


def run_tune(cfg: PipelineConfig, *, echo=print) -> dict:
    """Run the sweep; write ``tune/results.csv``, ``tune/best_config.yaml`` and plots."""
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler

    if is_uri(cfg.run.output_dir):   # trials share the upstream stages through a folder
        raise ConfigError(f"pdray tune: run.output_dir={cfg.run.output_dir!r} is an "
                          "object-store URI; tune needs a folder every trial sees (pdray run "
                          "takes a URI)")
    t = cfg.tune
    base = cfg.model_dump(mode="json")
    out = Path(cfg.run.output_dir).resolve()
    base["run"]["output_dir"] = str(out)  # trials run in their own working directories
    echo("[tune] preparing the shared upstream stages (data, reward models, scores)")
    run_pipeline(PipelineConfig.model_validate(base), echo=echo, upto="score")
    metric = t.metric if t.objective == "selection" else "dpo_acc"
    trainable = _selection_trial if t.objective == "selection" else _dpo_trial
    fn = tune.with_resources(tune.with_parameters(trainable, base=base), {"cpu": t.cpus_per_trial})
    scheduler = (ASHAScheduler(time_attr="training_iteration", grace_period=t.asha_grace_steps,
                               max_t=max(1, int(cfg.dpo.epochs or 1)))
                 if t.objective == "dpo" else None)
    tuner = tune.Tuner(
        fn, param_space=search_space(t.search_space),
        tune_config=tune.TuneConfig(metric=metric, mode=t.mode, num_samples=t.num_samples,
                                    max_concurrent_trials=t.max_concurrent, scheduler=scheduler),
        run_config=tune.RunConfig(storage_path=str(out / "tune"), name=cfg.name, verbose=1))
    echo(f"[tune] {t.objective} objective, metric {metric} ({t.mode}), "
         f"space {list(t.search_space)}")
    results = tuner.fit()
    errors = [str(r.error) for r in results if r.error]
    if errors and len(errors) == len(results):
        raise RuntimeError(f"every trial failed; first error: {errors[0]}")
    df = results.get_dataframe()
    keep = [c for c in df.columns if c.startswith("config/")] + [
        c for c in (metric, "cp", "conflict", "mean_dlen", "kept", "dpo_acc", "dpo_consensus_acc",
                  "dpo_own_acc", "training_iteration")
        if c in df.columns]
    df = df[list(dict.fromkeys(keep))]
    tune_dir = out / "tune"
    tune_dir.mkdir(parents=True, exist_ok=True)
    df.to_csv(tune_dir / "results.csv", index=False)
    best = results.get_best_result(metric=metric, mode=t.mode)
    best_params = dict(best.config)
    best_cfg = trial_config(base, best_params)
    write_text(dump_config(best_cfg), tune_dir / "best_config.yaml")
    plot = sensitivity_plot(df, metric, tune_dir / "sensitivity.png")
    summary = {"metric": metric, "mode": t.mode, "best_params": best_params,
               "best_value": best.metrics.get(metric), "trials": len(df),
               "failed_trials": len(errors), "results_csv": str(tune_dir / "results.csv"),
               "best_config": str(tune_dir / "best_config.yaml"), "plot": str(plot)}
    write_json(summary, tune_dir / "tune.json")
    echo(df.to_string(index=False))
    echo(f"[tune] best {metric} = {summary['best_value']} with {best_params}")
    return summary


def sensitivity_plot(df, metric: str, path: Path) -> Path:
    """One panel per swept parameter: the metric against the parameter's value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    params = [c for c in df.columns if c.startswith("config/")]
    fig, axes = plt.subplots(1, max(1, len(params)), figsize=(4 * max(1, len(params)), 3.2),
                             squeeze=False)
    for ax, p in zip(axes[0], params):
        ax.scatter(df[p], df[metric])
        means = df.groupby(p)[metric].mean()
        ax.plot(means.index, means.values, "-", alpha=0.6)
        ax.set_xlabel(p.removeprefix("config/"))
        ax.set_ylabel(metric)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
