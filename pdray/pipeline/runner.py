"""``pdray run``: data -> reward models -> scoring -> selection -> DPO -> evaluation -> report.

Every stage's output is keyed by a hash of its inputs and config (:mod:`pdray.pipeline.cache`),
so a re-run skips finished stages and an interrupted run resumes at the stage it was in. Runs
on a local Ray started for the user, or on a cluster (``run.ray_address: auto``).

``run.output_dir`` may be an object-store URI (``s3://``, ``gs://``): the run then works in a
local mirror that the store is pulled into first and uploaded from as each stage finishes
(:mod:`pdray.object_store`).

The tracking run ends ``FINISHED`` only when the pipeline returns; an exception, Ctrl-C or
SIGTERM (turned into :class:`Terminated` while the run is in progress) ends it ``FAILED``.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path

from pdray.config import dump_config
from pdray.errors import ConfigError
from pdray.io import write_json, write_text
from pdray.manifest import StageManifest
from pdray.object_store import Mirror, is_uri
from pdray.pipeline.cache import StageCache
from pdray.pipeline.config import PipelineConfig
from pdray.pipeline.protocol import run_stage
from pdray.pipeline.stages import STAGES, run_order
from pdray.pipeline.summary import format_summary, summarize
from pdray.pipeline.tracking import make_tracker
from pdray.raysetup import init_ray, job_output_dir, verbose_default
from pdray.storage_check import check_shared_storage


class Terminated(KeyboardInterrupt):
    """SIGTERM received during ``pdray run`` (raised so that cleanup and tracking run)."""


@contextlib.contextmanager
def _sigterm_raises():
    """While inside, SIGTERM raises :class:`Terminated` (main thread only; restored after)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(f"terminated by signal {signum}")

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except (ValueError, OSError):  # not allowed here (embedded interpreter): leave it alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


@dataclass
class PipelineResult:
    """``manifests``: each stage's typed manifest (each stage's ``stage.py``);
    ``stages``: the same as JSON dicts (what ``OUTPUT/run.json`` holds)."""

    output_dir: Path   # with an object-store output: the local mirror (``store`` is the URI)
    store: str | None = None
    manifests: dict[str, StageManifest] = field(default_factory=dict)
    summary: list[dict] = field(default_factory=list)
    seconds: dict = field(default_factory=dict)

    @property
    def stages(self) -> dict[str, dict]:
        return {name: m.to_json() for name, m in self.manifests.items()}

    @property
    def report_html(self) -> str | None:
        report = self.manifests.get("report")
        return report.html if report else None


def run_pipeline(cfg: PipelineConfig, *, echo=print, upto: str | None = None) -> PipelineResult:
    """Run (or resume) the pipeline described by ``cfg``; ``upto`` stops after that stage.

    ``cfg`` is validated as a whole when it is built (every section, and what each stage
    needs from the others), so a bad key fails before Ray starts.
    """
    if upto is not None and upto not in STAGES:
        raise ConfigError(f"--upto {upto!r} is not a stage (stages: {', '.join(STAGES)})")
    mirror = None
    if is_uri(cfg.run.output_dir):   # the run works in a local mirror of the store
        mirror = Mirror(cfg.run.output_dir, cfg.run.local_dir, echo=echo)
        mirror.check()                # unreachable, no bucket, refused: one line, before Ray
        out = mirror.local
        out.mkdir(parents=True, exist_ok=True)
        pulled = mirror.pull("stages")
        echo(f"[run] output: {mirror.uri} (local mirror: {out}; {pulled} file(s) pulled)")
    else:
        out = Path(job_output_dir(cfg.run.output_dir))   # absolute; refused if relative in a job
        out.mkdir(parents=True, exist_ok=True)
    write_text(dump_config(cfg), out / "config.yaml")
    quiet = not verbose_default()   # Ray's own worker lines go to its log files, not here
    init_ray(cfg.run.ray_address, num_cpus=cfg.run.num_cpus, quiet=quiet)
    # before any work: every node sees the folder (with a URI: the mirror, where the scoring
    # actors write their shards; docs/cluster.md)
    key = f"run.local_dir (the mirror of {mirror.uri})" if mirror else "run.output_dir"
    if nodes := check_shared_storage(out, key=key):
        echo(f"[run] {out}{f' (mirror of {mirror.uri})' if mirror else ''}: shared by all "
             f"{nodes} nodes")
    if quiet:
        echo("[run] Ray's worker output: its session logs (/tmp/ray/session_latest/logs by "
             "default), the scorers' under each score stage's logs/; PDRAY_VERBOSE=1 shows it "
             "here")
    cache = StageCache(out / "stages", echo=echo, mirror=mirror)
    tracker = make_tracker(cfg.run.tracking, str(out), cfg.run.experiment, cfg.name,
                           cfg.run.tracking_uri, echo=echo)
    guard = _sigterm_raises() if cfg.run.tracking != "none" else contextlib.nullcontext()
    with guard:
        status = "FAILED"
        try:
            res = _run_stages(cfg, cache, tracker, echo, upto, out)
            status = "FINISHED"
        finally:
            tracker.close(status=status)
            if mirror is not None:   # the run's own files (stages went up as they finished)
                with contextlib.suppress(Exception) if status == "FAILED" else \
                        contextlib.nullcontext():   # never hide the error that ended the run
                    mirror.push(out, prune=False, skip=("stages",))
    if mirror is not None:
        res.store = mirror.uri
        echo(f"[run] uploaded: {mirror.uri} (local mirror: {out})")
    return res


def _run_stages(cfg, cache, tracker, echo, upto, out) -> PipelineResult:
    """The stages of ``run.stages`` in pipeline order (and those that always run)."""
    res = PipelineResult(out)
    done: dict = {}
    for name in run_order(cfg.run.stages, upto):
        done[name] = run_stage(STAGES[name], cfg, done, cache, echo, tracker=tracker,
                               seconds=res.seconds)
    return _finish(res, done, cfg, tracker, echo, cache)


def _finish(res: PipelineResult, done: dict[str, StageManifest], cfg: PipelineConfig, tracker,
            echo, cache: StageCache) -> PipelineResult:
    res.manifests = dict(done)
    if "select" in done:
        res.summary = summarize(done)
        table = format_summary(res.summary)
        echo("")
        echo(table)
        write_text(table + "\n", res.output_dir / "summary.txt")
        write_json(res.summary, res.output_dir / "summary.json")
        for row in res.summary:
            tracker.log_metrics(f"summary.{row['strategy']}",
                                {k: v for k, v in row.items() if k != "strategy"})
    write_json({"stages": res.stages, "seconds": res.seconds}, res.output_dir / "run.json")
    where = f" (uploaded to {cache.mirror.uri_of(res.output_dir / 'run.json')} at the end)" \
        if cache.mirror is not None else ""
    echo(f"[run] stage manifests: {res.output_dir / 'run.json'}{where}")
    return res
