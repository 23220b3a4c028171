"""The ``pdray`` command. Each stage registers its subcommands from ``pdray/cli/<stage>.py``.

A stage module exposes ``register(app: typer.Typer) -> None``. Errors pdray raises on purpose
(:class:`pdray.errors.PdrayError`) and ``OSError`` (disk full, read-only folder) are printed as
one line without a traceback, exit code 2.
"""

from __future__ import annotations

import importlib
import os
import sys

import typer

from pdray import __version__
from pdray.errors import PdrayError, os_reason
from pdray.pipeline.stages import STAGES as PIPELINE_STAGES

STAGES = (*PIPELINE_STAGES, "run", "tune", "demo")
"""The command modules (``pdray/cli/<name>.py``): one per pipeline stage, in pipeline order,
then the pipeline's own commands. Order = order in ``pdray --help``."""

app = typer.Typer(
    name="pdray",
    help="Select the preference data worth training on (Preference Divergence and friends), "
         "then align on it. Stages: data -> rm -> score -> select -> dpo -> eval.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool):
    if value:
        typer.echo(f"pdray {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")):
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    from pdray.raysetup import quiet_libraries

    quiet_libraries()   # library noise off the terminal (PDRAY_VERBOSE=1 keeps it)


def _register_stages() -> None:
    for name in STAGES:
        importlib.import_module(f"pdray.cli.{name}").register(app)


_register_stages()


def main(argv: list[str] | None = None) -> None:
    """The error boundary: pdray's own errors and infrastructure faults (a read-only or full
    disk, a file where a folder should be) are one ``error: …`` line naming the path, exit 2."""
    try:
        app(args=argv, standalone_mode=True)
    except PdrayError as e:
        typer.echo(f"error: {e}", err=True)
        sys.exit(2)
    except OSError as e:
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        typer.echo(f"error: {where}{os_reason(e)}", err=True)
        sys.exit(2)
