"""The stage protocol: what every pipeline stage declares, and the one runner that runs it.

A :class:`Stage` is data: its name, the config section it reads, the upstream stages whose
outputs are its inputs, its manifest type (:mod:`pdray.pipeline.manifests`) and a
``build(cfg, inputs, out, echo) -> manifest`` function that writes the stage's files under
``out`` and returns its typed manifest naming them (``inputs``: the upstream stages' typed
manifests, by stage name).
:func:`run_stage` owns everything around it, for every stage alike:

- the **key**: a hash of the stage's config section (plus any extra values the stage declares,
  e.g. another section's setting it depends on) and of the *content* of each input stage's
  output directory (:func:`pdray.pipeline.cache.content_hash`), so a changed setting or an
  input edited in place recomputes the stage and everything downstream, and nothing else;
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

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pdray.fingerprint import content_hash
from pdray.pipeline.cache import MARKER, StageCache, stage_key
from pdray.pipeline.manifests import StageManifest, load_manifest

Echo = Callable[[str], None]
Build = Callable[[Any, dict, Path, Echo], StageManifest]


@dataclass(frozen=True)
class Stage:
    """One pipeline stage.

    ``manifest`` is the type ``build`` returns; ``section`` names the config section that is
    the stage's own (``None``: none); ``reads`` the upstream stages whose output directories
    are its inputs (an input that did not run this time is passed as ``None`` and keyed as
    such); ``extra_key(cfg)`` a dict of any other values the outputs depend on (keyed by name,
    shown by name in change messages); ``cached(manifest)`` the text after ``[stage] cached``.
    """

    name: str
    build: Build
    manifest: type[StageManifest]
    section: str | None = None
    reads: tuple[str, ...] = ()
    extra_key: Callable[[Any], dict] | None = None
    cached: Callable[[StageManifest], str] = field(default=lambda m: "")


def stage_key_of(stage: Stage, cfg, inputs: dict[str, StageManifest | None]) -> str:
    """The stage's cache key: its config section, its extra values and its inputs' content."""
    section = getattr(cfg, stage.section) if stage.section else None
    payload = {
        "cfg": section.model_dump(mode="json") if section is not None else None,
        **(stage.extra_key(cfg) if stage.extra_key else {}),
        "inputs": {name: (content_hash(d.dir) if d else None)
                   for name, d in sorted(inputs.items())},
    }
    return stage_key(stage.name, payload)


def finished_manifest(stage: Stage, cache: StageCache, key: str, echo: Echo
                      ) -> StageManifest | None:
    """The stage's typed manifest when its directory for ``key`` is finished; ``None`` when it
    is not, or when its marker does not match the stage's manifest type (the marker is removed
    and the stage rebuilt, with one line saying why)."""
    marker = cache.path(stage.name, key) / MARKER
    try:
        record = cache.finished(stage.name, key)
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
    inputs = {name: done.get(name) for name in stage.reads}
    key = stage_key_of(stage, cfg, inputs)
    t0 = time.perf_counter()
    manifest = finished_manifest(stage, cache, key, echo)
    if manifest is not None:
        echo(f"[{stage.name}] cached{stage.cached(manifest)}")
    else:
        with cache.lock(stage.name, key) as out:
            manifest = finished_manifest(stage, cache, key, echo)
            if manifest is None:
                manifest = stage.build(cfg, inputs, out, echo)
                if not isinstance(manifest, stage.manifest):
                    raise TypeError(f"[{stage.name}] build returned {type(manifest).__name__}, "
                                    f"not {stage.manifest.__name__}")
                cache.mark(stage.name, key, manifest.to_json())
                echo(f"[{stage.name}] finished in {time.perf_counter() - t0:.1f}s: {out}")
    if seconds is not None:
        seconds[stage.name] = round(time.perf_counter() - t0, 2)
    if tracker is not None:
        section = getattr(cfg, stage.section) if stage.section else None
        tracker.log_params(stage.name, section.model_dump(mode="json") if section else {})
        tracker.log_metrics(stage.name, manifest.metrics)
    return manifest
