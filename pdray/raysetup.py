"""Start or join Ray with settings that work on a laptop and on a cluster."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path


def verbose_default() -> bool:
    """``PDRAY_VERBOSE=1`` (set by ``--verbose``) shows Ray's own log lines on the terminal."""
    return os.environ.get("PDRAY_VERBOSE", "") not in ("", "0", "false")


# What keeps transformers, huggingface_hub, DeepSpeed and vLLM off the terminal: set in the
# environment before Ray starts, so every worker process inherits it (PDRAY_VERBOSE=1 keeps them).
QUIET_ENV = {
    "TRANSFORMERS_VERBOSITY": "error",          # the "Loading weights" load reports
    "HF_HUB_DISABLE_PROGRESS_BARS": "1",        # "Loading weights" / "Writing model shards" bars
    "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1",
    "VLLM_LOGGING_LEVEL": "WARNING",
    "MLFLOW_LOGGING_LEVEL": "WARNING",          # "Experiment … does not exist. Creating …"
    "TOKENIZERS_PARALLELISM": "false",
}


def quiet_libraries() -> None:
    """Keep the terminal pdray's (unless ``PDRAY_VERBOSE=1``): :data:`QUIET_ENV` for this process
    and the Ray workers it starts, transformers' logging and bars if already imported, and on a
    machine without NVIDIA devices DeepSpeed's accelerator named (it otherwise warns "Setting
    accelerator to CPU" in every process that imports it)."""
    if verbose_default():
        return
    for k, v in QUIET_ENV.items():
        os.environ.setdefault(k, v)
    if not any(any(Path("/dev").glob(g)) for g in ("nvidia[0-9]*", "kfd", "accel*", "neuron*")):
        os.environ.setdefault("DS_ACCELERATOR", "cpu")
    if "transformers" in sys.modules:
        from transformers.utils import logging as tlog

        tlog.set_verbosity_error()
        tlog.disable_progress_bar()


def in_ray_job() -> bool:
    """True in the driver of a Ray Job (``ray job submit``): Ray sets its job-config variable
    there, and a ``--working-dir`` job runs in Ray's temporary copy of that folder."""
    from ray._private.runtime_env.constants import RAY_JOB_CONFIG_JSON_ENV_VAR

    return (RAY_JOB_CONFIG_JSON_ENV_VAR in os.environ
            or "/runtime_resources/working_dir_files/" in os.getcwd())


def job_output_dir(path: str, key: str = "run.output_dir") -> str:
    """``path`` made absolute; in a Ray Job a relative one is refused in one line (it would
    land in Ray's temporary copy of the working dir, deleted with the session)."""
    from pdray.errors import ConfigError

    if "://" in str(path):
        return str(path)
    if not Path(path).is_absolute() and in_ray_job():
        raise ConfigError(f"{key}={path!r} is relative, and this is a Ray Job: it would resolve "
                          f"in Ray's temporary copy of the working dir ({os.getcwd()}), deleted "
                          f"with the session; give an absolute path that every node sees")
    return str(Path(path).resolve())


def init_ray(address: str | None = None, *, num_cpus: int | None = None,
             object_store_memory: int | None = 512 * 1024**2, quiet: bool = False) -> None:
    """Connect to ``address`` (``"auto"`` for a cluster) or start a local Ray.

    Local defaults follow what is known to work on small machines: no dashboard, usage stats
    off, a modest object store. ``quiet`` (what ``pdray run`` / ``demo`` / ``tune``,
    ``pdray score`` and ``pdray lossdiff score`` use unless ``--verbose`` or
    ``PDRAY_VERBOSE=1``): worker output is not forwarded to the terminal
    (``log_to_driver=False``) and Ray Data's bars are off; the scoring workers write their
    output to ``OUTPUT/logs/``, other workers to Ray's session logs. Calling it again when Ray
    is up is a no-op.
    """
    import ray

    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    os.environ.setdefault("RAY_TRAIN_V2_ENABLED", "1")
    if quiet:
        quiet_libraries()
        quiet_ray_data(False)
    if ray.is_initialized():
        return
    if quiet:   # a local Ray's token authentication is on by default: no need to say so each run
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(
            logging.ERROR)
    address = address or os.environ.get("RAY_ADDRESS")
    if address:
        ray.init(address=address, log_to_driver=not quiet)
        if quiet:
            quiet_raylet_notices()
        return
    ray.init(num_cpus=num_cpus or os.cpu_count(), include_dashboard=False,
             object_store_memory=object_store_memory, log_to_driver=not quiet,
             configure_logging=True, logging_level="WARNING")
    if quiet:
        quiet_raylet_notices()
    global _STARTED_LOCALLY
    _STARTED_LOCALLY = True


# Messages of Ray's error channel (printed by the driver even with log_to_driver off) that say
# nothing a pdray user acts on: pdray reports the outcome itself in one line (a stage's error,
# "scoring actor restarts used up … see OUTPUT/logs"). "Worker processes started": on a machine
# with few CPUs the reward-model units and their Ray Train actors (num_cpus=0 controllers) pass
# 4× the CPU count of processes, which the raylet flags at every multiple. A task retried, a
# worker that died (its traceback: the worker's own log): Ray Data retries and restarts, and
# pdray's runner caps the restarts.
RAY_NOTICES = ("PYTHON worker processes have been started on node",
               "retries remaining, so the task will be retried",
               "A worker died or was killed while executing a task")
NOTICES_LOG = "pdray-ray-notices.log"


def quiet_raylet_notices() -> None:
    """Write :data:`RAY_NOTICES` to ``SESSION/logs/pdray-ray-notices.log`` instead of the
    driver's terminal; every other message of Ray's error channel (a task killed for memory, …)
    still prints. Ray prints that channel with ``ray._private.worker.print_to_stdstream``: the
    one hook (a test checks that it is still there)."""
    import ray._private.worker as ray_worker

    show = ray_worker.print_to_stdstream
    if getattr(show, "pdray_quiet", False):
        return
    node = getattr(ray_worker.global_worker, "node", None)
    log = Path(node.get_logs_dir_path()) / NOTICES_LOG if node is not None else None

    def print_to_stdstream(data, ignore_prefix):
        lines = data.get("lines") or []
        if lines and all(any(n in line for n in RAY_NOTICES) for line in lines):
            if log is not None:
                with contextlib.suppress(OSError), log.open("a", encoding="utf-8") as f:
                    f.write("".join(f"({data.get('pid')}) {line}\n" for line in lines))
            return
        show(data, ignore_prefix)

    print_to_stdstream.pdray_quiet = True
    ray_worker.print_to_stdstream = print_to_stdstream


@contextlib.contextmanager
def stderr_to(path) -> Iterator[None]:
    """This process's stderr (file descriptor 2: C++ log lines of Ray's core worker, and Python's
    ``sys.stderr``) appended to ``path`` for the ``with`` block, then restored. ``None``: left
    alone. For the window in which the driver starts Ray Data actor pools: Ray's core worker
    then logs one error line per actor about Ray Data's own constructor arguments ("constructor
    arguments in the object store"), which the driver's Ray log (SESSION/logs/
    python-core-driver-*.log) holds as well."""
    if path is None:
        yield
        return
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        os.dup2(fd, 2)
        os.close(fd)
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


_STARTED_LOCALLY = False


def started_locally() -> bool:
    """True when :func:`init_ray` started the Ray this process uses (a local cluster of fixed
    size, no autoscaler): what it does not have now, it never will."""
    import ray

    return _STARTED_LOCALLY and ray.is_initialized()


def quiet_ray_data(verbose: bool | None = None) -> None:
    """Ray Data's progress bars and INFO lines only when verbose (pdray prints its own
    progress lines)."""
    from ray.data import DataContext

    verbose = verbose_default() if verbose is None else verbose
    ctx = DataContext.get_current()
    ctx.enable_progress_bars = verbose
    ctx.enable_operator_progress_bars = verbose
    ctx.print_on_execution_start = verbose
    logging.getLogger("ray.data").setLevel(logging.INFO if verbose else logging.WARNING)
    # its one warning is that the bars are off, which is what pdray asked for
    logging.getLogger("ray.data._internal.progress").setLevel(
        logging.INFO if verbose else logging.ERROR)
