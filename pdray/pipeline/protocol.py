"""The stage protocol: what every pipeline stage declares, and the one runner that runs it.

Every stage package has a ``stage.py`` (``pdray.data.stage``, ``pdray.rm.stage``, …,
``pdray.report.stage``) with its typed manifest and a
``run(cfg, inputs, out, echo, **args) -> manifest`` that writes the stage's files under ``out``
and returns the manifest naming them: ``cfg`` is the stage's own config section (the typed model
in its ``config.py``), ``inputs`` the upstream stages' typed manifests by stage name, ``args``
the few values it takes from other sections. A :class:`Stage` is the wiring: which section,
which upstream stages, which ``args``. :func:`run_stage` owns everything around ``run``, for
every stage alike:

- the **key**: a hash of the stage's config section, of its ``args`` and of the *content* of
  each input stage's output directory (:func:`pdray.fingerprint.content_hash`; for the data
  stage, of its source file), so a changed setting or an input edited in place recomputes the
  stage and everything downstream, and nothing else. What ``run`` receives is what is keyed;
- **reuse**: a finished directory for the key is returned as it is (``[stage] cached …``);
- **locking**: the build runs under the stage's file lock (two Tune trials never build the same
  key twice; the second finds it finished);
- **the manifest**: written atomically, last (``_stage.json``), so an interrupted stage is
  redone; read back through the stage's manifest type, so a marker that does not match it
  (another pdray version, an edit by hand) is rebuilt, never half-read;
- **timing and tracking**: seconds per stage, and the stage's parameters and ``metrics`` sent to
  the tracker.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from pdray.fingerprint import content_hash
from pdray.manifest import StageManifest, load_manifest
from pdray.pipeline.cache import MARKER, StageCache, stage_key

Echo = Callable[[str], None]
Run = Callable[..., StageManifest]
"""``run(section_cfg, inputs, out, echo, **args) -> manifest``: a stage package's ``stage.run``."""

LAYOUT_ARGS = ("flat",)
"""Keyword arguments of ``run`` that only a verb passes: ``flat`` puts the stage's one output
straight into the folder the user named (``pdray select -o DIR`` → ``DIR/selected.parquet``).
The pipeline never sets them, so they are not in the key."""


@dataclass(frozen=True)
class Stage:
    """One pipeline stage, wired.

    ``run`` is the stage package's ``stage.run`` and ``manifest`` the type it returns;
    ``section`` names the config section passed to it as ``cfg`` (``None``: none). The graph:
    ``reads`` the upstream stages it cannot run without, ``also_reads`` those it uses when they
    ran (passed as ``None`` and keyed as such when they did not); both are its ``inputs``.
    ``runs``: ``"always"`` (whatever ``run.stages`` says: everything reads it), ``"default"``
    (in ``run.stages`` unless the config names other stages) or ``"opt-in"`` (only when named).
    ``args(cfg)`` the keyword arguments it takes from other sections of the pipeline config
    (keyed by name, shown by name in change messages); ``source_key(cfg)`` the content of an
    input outside the run folder (the data stage's source file); ``cached(manifest)`` the text
    after ``[stage] cached``.
    """

    name: str
    run: Run
    manifest: type[StageManifest]
    section: str | None = None
    reads: tuple[str, ...] = ()
    also_reads: tuple[str, ...] = ()
    runs: Literal["always", "default", "opt-in"] = "default"
    args: Callable[[Any], dict] | None = None
    source_key: Callable[[Any], dict] | None = None
    cached: Callable[[StageManifest], str] = field(default=lambda m: "")

    @property
    def inputs(self) -> tuple[str, ...]:
        """Every upstream stage whose manifest ``run`` receives."""
        return self.reads + self.also_reads

    def section_of(self, cfg):
        """The stage's own config section of the pipeline config ``cfg`` (or ``None``)."""
        return getattr(cfg, self.section) if self.section else None


def key_payload(stage: Stage, cfg, inputs: dict[str, StageManifest | None]) -> dict:
    """What the stage's key hashes, as JSON values: its config section, its args, its source
    and its inputs' content (kept in its marker, for the next run's change message)."""
    section = stage.section_of(cfg)
    payload = {
        "cfg": section.model_dump(mode="json") if section is not None else None,
        **(stage.args(cfg) if stage.args else {}),
        **(stage.source_key(cfg) if stage.source_key else {}),
        "inputs": {name: (content_hash(d.dir) if d else None)
                   for name, d in sorted(inputs.items())},
    }
    return json.loads(json.dumps(payload, default=str))


def stage_key_of(stage: Stage, cfg, inputs: dict[str, StageManifest | None]) -> str:
    """The stage's cache key: :func:`stage_key` of its :func:`key_payload`."""
    return stage_key(stage.name, key_payload(stage, cfg, inputs))


def finished_manifest(stage: Stage, cache: StageCache, key: str, echo: Echo,
                      payload: dict | None = None) -> StageManifest | None:
    """The stage's typed manifest when its directory for ``key`` is finished; ``None`` when it
    is not (one line says what changed when ``payload``, what ``key`` hashes, is given), or
    when its marker does not match the stage's manifest type (the marker is removed and the
    stage rebuilt, with one line saying why)."""
    marker = cache.path(stage.name, key) / MARKER
    try:
        record = cache.finished(stage.name, key, payload)
    except (OSError, ValueError) as e:   # a truncated or garbled marker: not finished
        manifest, why = None, f"is unreadable ({type(e).__name__})"
    else:
        if record is None:
            return None
        manifest, why = load_manifest(stage.manifest, record)
        why = f"does not match this version's {stage.manifest.__name__} ({why})"
    if manifest is None:
        echo(f"[{stage.name}] {marker} {why}: recomputing")
        marker.unlink(missing_ok=True)
    return manifest


def run_stage(stage: Stage, cfg, done: dict[str, StageManifest], cache: StageCache, echo: Echo,
              *, tracker=None, seconds: dict | None = None) -> StageManifest:
    """Run ``stage`` (or find it finished) on the outputs of the stages in ``done``.

    Returns the stage's manifest; records its wall time in ``seconds[stage.name]`` and reports
    its parameters and metrics to ``tracker``.
    """
    inputs = {name: done.get(name) for name in stage.inputs}
    payload = key_payload(stage, cfg, inputs)
    key = stage_key(stage.name, payload)
    t0 = time.perf_counter()
    manifest = finished_manifest(stage, cache, key, echo, payload)
    if manifest is not None:
        echo(f"[{stage.name}] cached{stage.cached(manifest)}")
    else:
        with cache.lock(stage.name, key) as out:
            manifest = finished_manifest(stage, cache, key, echo, payload)
            if manifest is None:
                manifest = stage.run(stage.section_of(cfg), inputs, out, echo,
                                     **(stage.args(cfg) if stage.args else {}))
                if not isinstance(manifest, stage.manifest):
                    raise TypeError(f"[{stage.name}] run returned {type(manifest).__name__}, "
                                    f"not {stage.manifest.__name__}")
                cache.mark(stage.name, key, manifest.to_json(), inputs=payload)
                echo(f"[{stage.name}] finished in {time.perf_counter() - t0:.1f}s: {out}")
    if seconds is not None:
        seconds[stage.name] = round(time.perf_counter() - t0, 2)
    if tracker is not None:
        section = stage.section_of(cfg)
        tracker.log_params(stage.name, section.model_dump(mode="json") if section else {})
        tracker.log_metrics(stage.name, manifest.metrics)
    return manifest
