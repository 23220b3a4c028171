"""Building D from a source: load it, and turn rated responses into conflict-controlled pairs.

The one implementation behind ``pdray data build`` and the pipeline's data stage, so both give
the same pairs for the same :class:`pdray.data.config.SourceConfig`.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass

import pyarrow as pa

from pdray.data.build import BuildResult, build_conflict_dataset
from pdray.data.config import SourceConfig
from pdray.data.loaders import load_source, loader_for
from pdray.data.result import LoadResult


@dataclass
class Assembled:
    """The pairs, the load (counts, dropped and quarantined rows) and, for rating sources,
    the conflict build (target vs achieved conflict, dropped prompts)."""

    table: pa.Table
    load: LoadResult
    build: BuildResult | None = None


def assemble(cfg: SourceConfig, *, quarantine: bool = False) -> Assembled:
    """Load ``cfg.source`` as ``cfg.format``; rated responses become pairs by the conflict
    build (METHOD.md, "Building the UltraFeedback conflict datasets") with ``cfg.conflict``,
    ``cfg.holistic``, ``cfg.aspects`` and ``cfg.seed``. ``cfg.seed`` also seeds a loader that
    draws (unless its own ``options.seed`` is given)."""
    opts = cfg.loader_options(quarantine=quarantine)
    if "seed" in inspect.signature(loader_for(cfg.format)).parameters:
        opts.setdefault("seed", cfg.seed)
    res = load_source(cfg.source, cfg.format, min_aspects=cfg.min_aspects, **opts)
    if res.kind != "responses":
        return Assembled(res.table, res)
    build = build_conflict_dataset(res.table, cfg.conflict, seed=cfg.seed,
                                   holistic=cfg.holistic, aspects=cfg.aspects)
    return Assembled(build.table, res, build)
