"""``pdray data build|inspect|validate|synth``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from pdray.cli.common import fail
from pdray.cli.verbs import Input, Shortcut, stage_verb
from pdray.errors import DataError, PdrayError

data_app = typer.Typer(help="Load, build, inspect and validate preference data.",
                       no_args_is_help=True)
MAX_LISTED = 20


def _print_matrix(m: dict) -> None:
    if not m:
        return
    aspects = list(m)
    w = max(len(a) for a in aspects)
    typer.echo("aspect-vs-aspect disagreement (share of pairs they order differently):")
    typer.echo(" " * (w + 2) + "  ".join(a[:10].rjust(10) for a in aspects))
    for a in aspects:
        typer.echo(a.ljust(w + 2) + "  ".join(f"{m[a][b]:10.3f}" for b in aspects))


def _reasons(dropped: list[dict]) -> dict:
    out: dict[str, int] = {}
    for d in dropped:
        out[d["reason"]] = out.get(d["reason"], 0) + 1
    return out


def _list_dropped(dropped: list[dict], what: str) -> None:
    if not dropped:
        return
    typer.echo(f"dropped {len(dropped)} {what}: {json.dumps(_reasons(dropped))}")
    for d in dropped[:MAX_LISTED]:
        where = (f"{d['file']}: row {d['row']}, field '{d['field']}'" if "row" in d
                 else f"prompt {d['prompt_id']} ({d.get('prompt', '')!r})")
        typer.echo(f"  dropped: {where}: {d['reason']}")
    if len(dropped) > MAX_LISTED:
        typer.echo(f"  ... {len(dropped) - MAX_LISTED} more (all of them in --report)")


def _build_settings(inputs: dict) -> dict:
    """What the command line sets beyond its shortcut options: ``--option k=v`` and ``--aspect``
    into the loader's ``options``, and the first argument: the source, or (when it is a
    KEY=VALUE naming no file, the source coming from --config) one more override."""
    from pdray.config import apply_overrides, parse_override
    from pdray.io import exists

    out: dict = {}
    options = {".".join(k): v for k, v in map(parse_override, inputs["option"] or [])}
    if inputs["aspect"]:
        options["aspect"] = inputs["aspect"]
    if options:
        out["options"] = options
    first = inputs["source"]
    if first is not None and "=" in first and not exists(first):
        out = apply_overrides(out, [first])
    elif first is not None:
        out["source"] = first
    return out


def _build(cfg, inputs: dict, output, echo) -> None:
    from pdray.data import describe
    from pdray.data.assemble import assemble
    from pdray.data.result import quarantine_table
    from pdray.io import check_output, write_json, write_table

    for out, is_table in ((cfg.output, True), (cfg.quarantine, True), (cfg.report, False)):
        if out:
            check_output(out, table=is_table)
    got = assemble(cfg, quarantine=bool(cfg.quarantine))
    res, table, build = got.load, got.table, got.build
    echo(f"read {cfg.source}: " + ", ".join(f"{k}={v}" for k, v in res.counts.items()))
    _list_dropped(res.dropped, "input rows")
    if build is not None:
        s = build.summary()
        echo(f"built {s['pairs']} pairs from {s['prompts_in']} prompts; conflict target "
             f"{cfg.conflict} -> achieved {s['achieved_conflict']:.3f} "
             f"(feasible range {s['feasible_range']})")
        if not build.feasible:
            typer.echo(f"warning: target conflict {cfg.conflict} cannot be reached with this "
                       f"data; closest achievable is {s['achieved_conflict']:.3f}", err=True)
        _list_dropped(build.dropped, "prompts")
    if cfg.quarantine:
        rows = res.quarantined
        write_table(quarantine_table(rows), cfg.quarantine)
        echo(f"quarantined {len(rows)} bad rows -> {cfg.quarantine}")
        for q in rows[:MAX_LISTED]:
            echo(f"  quarantined: row {q['row']}, field '{q['field']}': {q['reason']}")
    if not table.num_rows:
        raise DataError("no valid pairs to write (every row was quarantined or dropped)",
                        file=cfg.source)
    write_table(table, cfg.output)
    info = describe(table) if table.num_rows else {"rows": 0}
    echo(f"wrote {table.num_rows} pairs -> {cfg.output}")
    echo("per aspect: " + json.dumps(info.get("aspects", {})))
    if "conflict_rate" in info:
        echo(f"conflict rate: {info['conflict_rate']:.3f}")
        _print_matrix(info["disagreement"])
    if cfg.report:
        write_json({"config": cfg.model_dump(mode="json"), "load_counts": res.counts,
                    "dropped_rows": res.dropped, "quarantined": len(res.quarantined),
                    "build": build.summary() if build else None,
                    "dropped_prompts": build.dropped if build else [], "describe": info},
                   cfg.report)
        echo(f"report -> {cfg.report}")


stage_verb(
    data_app, "build", config="pdray.data.config:DataBuildConfig", run=_build,
    output_key="output", output_kind=None,   # checked with quarantine and report, in _build
    output_help="Output .parquet/.jsonl (the config's output).",
    one_line_errors=True, settings=_build_settings,
    inputs=[Input("source", "Input file, folder or hub id (or the config's source; a first "
                  "KEY=VALUE is an override).", default=None),
            Input("aspect", "Constant aspect (binarized, generic, hh_rlhf).", option="--aspect",
                  default=None),
            Input("option", "Loader option key=value (YAML value), repeatable.",
                  option="--option", type=list[str], default=None)],
    shortcuts=[Shortcut("format", option="--format", short="-f",
                        help="pairs | ultrafeedback_raw | ultrafeedback_binarized | trl | "
                        "helpsteer2 | pku_saferlhf | hh_rlhf | generic"),
               Shortcut("conflict", float, help="Target conflict level for rating sources, "
                        "e.g. 0.2"),
               Shortcut("seed", int),
               Shortcut("holistic", help="mean | overall"),
               Shortcut("quarantine", help="Write bad rows to this JSONL file instead of "
                        "failing."),
               Shortcut("report", help="Write a JSON report here.")],
    help="""Turn a source into canonical pairs (building conflict-controlled pairs from
    ratings). Settings come from --config (YAML), then the options, then KEY=VALUE
    overrides.""")


@data_app.command("inspect")
def inspect_cmd(pairs: str = typer.Argument(..., help="Canonical pairs (.parquet/.jsonl).")):
    """Rows, aspects, per-aspect counts, lengths, conflict rate and disagreement matrix."""
    from pdray.data import describe
    from pdray.data.loaders import read_pairs

    try:
        info = describe(read_pairs(pairs))
    except (PdrayError, OSError) as e:
        fail(e)
    typer.echo(f"{pairs}: {info['rows']} pairs, {len(info['aspects'])} aspects")
    for a, n in info["aspects"].items():
        typer.echo(f"  {a}: {n}")
    typer.echo(f"mean chars chosen {info['chosen_chars_mean']:.0f}, rejected "
               f"{info['rejected_chars_mean']:.0f}; chosen at least as long in "
               f"{info['chosen_longer_share']:.1%} of pairs")
    if "conflict_rate" in info:
        typer.echo(f"conflict rate (vs mean of aspect ratings): {info['conflict_rate']:.3f} "
                   f"({info['holistic_ties']} holistic ties)")
        _print_matrix(info["disagreement"])
    else:
        typer.echo("no ground-truth ratings: conflict rate unknown")


@data_app.command("validate")
def validate_cmd(pairs: str = typer.Argument(...),
                 min_aspects: int = typer.Option(1, help="Fail with fewer aspects (PD needs 2)."),
                 known_aspects: str | None = typer.Option(None, help="Comma-separated list; "
                                                             "other aspects are errors."),
                 quarantine: Path | None = typer.Option(None, help="Write bad rows here and "
                                                           "the good ones to --output."),
                 output: Path | None = typer.Option(None)):
    """Check a pair file against the canonical schema; exit 2 with file/row/field on error."""
    from pdray.data.loaders import load_pairs
    from pdray.data.result import quarantine_table
    from pdray.io import check_output, write_table

    ka = [a for a in known_aspects.split(",") if a] if known_aspects else None
    try:
        for out in (quarantine, output):
            if out:
                check_output(out)
        res = load_pairs(str(pairs), quarantine=bool(quarantine), known_aspects=ka,
                         min_aspects=min_aspects)
        if quarantine:
            write_table(quarantine_table(res.quarantined), quarantine)
        if output:
            write_table(res.table, output)
    except (PdrayError, OSError) as e:
        fail(e)
    if quarantine:
        typer.echo(f"{pairs}: {res.table.num_rows} valid, {len(res.quarantined)} quarantined -> "
                   f"{quarantine}")
        for q in res.quarantined[:MAX_LISTED]:
            typer.echo(f"  quarantined: row {q['row']}, field '{q['field']}': {q['reason']}")
    else:
        typer.echo(f"{pairs}: OK ({res.table.num_rows} pairs)"
                   + (f" -> {output}" if output else ""))


@data_app.command("synth")
def synth_cmd(n: int = typer.Option(10000, "--n", help="Number of pairs."),
              output: str = typer.Option(..., "--output", "-o", help="Output .parquet"),
              aspects: str | None = typer.Option(None, help="Comma-separated aspects."),
              conflict: float = typer.Option(0.2), length_effect: float = typer.Option(0.5),
              seed: int = typer.Option(0),
              batch_size: int = typer.Option(100_000, help="Rows per streamed batch.")):
    """Stream synthetic multi-aspect pairs with known ground truth to Parquet."""
    import time

    from pdray.data import write_synthetic

    t0 = time.perf_counter()
    asp = aspects.split(",") if aspects else None
    if not output.endswith((".parquet", ".pq")):
        fail(PdrayError(f"synth writes Parquet; use a .parquet output, not {output!r}"))
    try:
        from pdray.io import check_output

        check_output(output)
        write_synthetic(output, n, asp, conflict_rate=conflict, length_effect=length_effect,
                        seed=seed, batch_size=batch_size)
    except ValueError as e:
        fail(PdrayError(str(e)))
    except (PdrayError, OSError) as e:
        fail(e)
    dt = time.perf_counter() - t0
    typer.echo(f"wrote {n} synthetic pairs -> {output} in {dt:.1f}s ({n / max(dt, 1e-9):,.0f} "
               "pairs/s)")


def register(app: typer.Typer) -> None:
    app.add_typer(data_app, name="data")
