"""One Ray Train launcher for pdray's trainers (reward models: :mod:`pdray.rm.train`, DPO / DMPO:
:mod:`pdray.align.train`).

:func:`fit_on_ray` runs a ``train_loop_per_worker`` as a ``TorchTrainer`` with fractional CPUs
(or one GPU) per worker, checkpoints in :func:`storage_path` (``RunConfig(storage_path, name)``,
the last two kept) and ``FailureConfig(max_failures)``, so a failed worker resumes from the last
checkpoint; a run that still fails raises a one-line :class:`PdrayError`. On a local Ray (fixed
size) a run whose workers cannot all be placed is refused before it starts (:func:`check_fits`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pdray.errors import ConfigError, PdrayError
from pdray.raysetup import started_locally


def storage_path(configured: str | None, default: Path) -> str:
    """Ray Train storage: a URI as given (s3://, gs://), else an absolute local path
    (``configured``, or ``default`` when unset)."""
    if configured and "://" in configured:
        return configured
    return str(Path(configured or default).resolve())


def worker_resources(cpus_per_worker: float, use_gpu: bool) -> dict[str, float]:
    """Ray resources one training worker holds: its CPUs, plus one GPU with ``use_gpu``."""
    return {"CPU": cpus_per_worker, **({"GPU": 1} if use_gpu else {})}


def unplaceable(num_workers: int, resources: dict[str, float], cluster: dict[str, float]
                ) -> str | None:
    """Why ``num_workers`` workers holding ``resources`` each cannot all run at once on a
    cluster whose totals are ``cluster`` (Ray Train places a run's workers together, so such a
    run would wait forever), or ``None`` when they fit."""
    for kind, each in resources.items():
        need, have = each * num_workers, float(cluster.get(kind, 0.0))
        if need > have + 1e-9:
            return (f"{num_workers} worker(s) × {each:g} {kind} need {need:g} {kind}, but this "
                    f"local Ray has {have:g}")
    return None


def _cluster_resources() -> dict[str, float]:
    import ray

    return ray.cluster_resources()


def check_fits(label: str, num_workers: int, cpus_per_worker: float, use_gpu: bool) -> None:
    """On a local Ray started by pdray (which never grows), refuse up front a run whose workers
    cannot be placed, instead of waiting forever; on a cluster (it may autoscale) do nothing."""
    if not started_locally():
        return
    why = unplaceable(num_workers, worker_resources(cpus_per_worker, use_gpu),
                      _cluster_resources())
    if why:
        raise ConfigError(f"[{label}] {why}: lower its cpus_per_worker or num_workers"
                          f"{', or set use_gpu: false' if use_gpu else ''}, or start Ray with "
                          f"more (run.num_cpus)")


def root_cause(err: BaseException) -> BaseException:
    """The innermost error under Ray Train's wrappers: a worker group's lowest-rank failure
    (``worker_failures``), a controller's failure, a Ray task's ``cause``, then ``__cause__``."""
    seen = {id(err)}
    while True:
        failures = getattr(err, "worker_failures", None) or {}
        nxt = (failures[min(failures)] if failures else None) or getattr(
            err, "controller_failure", None) or getattr(err, "cause", None) or err.__cause__
        if not isinstance(nxt, BaseException) or id(nxt) in seen:
            return err
        seen.add(id(nxt))
        err = nxt


def one_line(err: BaseException) -> str:
    """``Type: message`` of the error's root cause, on one line (its message's first line)."""
    cause = root_cause(err)
    lines = [x.strip() for x in str(cause).splitlines() if x.strip()]
    return f"{type(cause).__name__}: {lines[0]}" if lines else type(cause).__name__


def fit_on_ray(train_loop: Callable[[dict], None], loop_config: dict, *, label: str, name: str,
               storage: str, num_workers: int, cpus_per_worker: float, use_gpu: bool,
               max_failures: int, num_to_keep: int = 2):
    """Run ``train_loop(loop_config)`` on ``num_workers`` Ray Train workers and return the
    ``ray.train.Result``; a run that fails after ``max_failures`` restarts raises
    ``PdrayError("[label] training failed: …")``."""
    from ray.train import CheckpointConfig, FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    check_fits(label, num_workers, cpus_per_worker, use_gpu)
    trainer = TorchTrainer(
        train_loop, train_loop_config=loop_config,
        scaling_config=ScalingConfig(num_workers=num_workers, use_gpu=use_gpu,
                                     resources_per_worker=worker_resources(cpus_per_worker,
                                                                           use_gpu)),
        run_config=RunConfig(name=name, storage_path=storage,
                             failure_config=FailureConfig(max_failures=max_failures),
                             checkpoint_config=CheckpointConfig(num_to_keep=num_to_keep)))
    try:
        result = trainer.fit()
    except Exception as e:
        raise PdrayError(f"[{label}] training failed: {one_line(e)}") from e
    if result.error:
        raise PdrayError(f"[{label}] training failed: {one_line(result.error)}") from result.error
    return result


def shared_output_dir(prefix: str) -> str:
    """Inside a Ray Train worker: a fresh local folder for the trainer's checkpoints, the same
    path on every worker of the run (rank 0 makes it and broadcasts it). Under DeepSpeed every
    rank writes its ZeRO shards into the trainer's ``output_dir`` and rank 0 the ``latest`` tag
    that loading reads, so reloading a checkpoint in the worker (``load_best_model_at_end``)
    needs one folder, as under torchrun; it also lets rank 0 rotate every rank's old
    checkpoints (``save_total_limit``). Workers on other nodes get the same path on their own
    disk."""
    import tempfile

    import ray.train
    from ray.train.collective import broadcast_from_rank_zero

    rank0 = ray.train.get_context().get_world_rank() == 0
    path = broadcast_from_rank_zero(tempfile.mkdtemp(prefix=prefix) if rank0 else None)
    Path(path).mkdir(parents=True, exist_ok=True)
    return path
