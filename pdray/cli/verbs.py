"""One factory for a stage's verb: ``pdray STAGE INPUTS -o OUT [--config FILE] [key=value …]``.

:func:`stage_verb` generates the typer command from a declaration: the stage's inputs
(positional arguments or options, :class:`Input`), ``-o/--output``, ``--config/-c``, the
trailing ``key.sub=value`` overrides, shortcut options that set one config key
(:class:`Shortcut`: ``--num-actors 4`` is ``num_actors=4``, documented from the field's
description), ``--verbose`` where Ray's worker output can be shown, and the help epilog that
lists every setting of the config (:func:`pdray.cli.common.settings_epilog`). The command loads
and validates the config, checks the output before any work (before Ray starts), starts Ray
when the stage needs it, then calls ``run(cfg, inputs, output, echo)``.

The config is named as ``"module:Class"`` and imported when the command runs or its help is
shown; run functions import their stage (torch, trl, pyarrow, ray) inside, so ``pdray --help``
pays for none of them.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import typer

from pdray.cli.common import CONFIG_OPTION, OVERRIDES_ARG, fail, import_config, settings_epilog
from pdray.config import load_config
from pdray.errors import PdrayError

RESERVED = ("output", "config", "overrides", "verbose")
VERBOSE_HELP = "Ray's own worker log lines and bars on the terminal (default: OUTPUT/logs/)"


@dataclass(frozen=True)
class Input:
    """An input of the stage, given to ``run`` as ``inputs[name]``: a positional argument, or
    with ``option`` an option (``"--rm"``, ``"--report/--no-report"``; ``short``: ``"-m"``).
    ``default=...`` makes it required."""

    name: str
    help: str | None = None
    option: str | None = None
    short: str | None = None
    type: Any = str
    default: Any = ...

    def parameter(self) -> inspect.Parameter:
        if self.option is None:
            info = typer.Argument(self.default, help=self.help)
        else:
            decls = [self.option] + ([self.short] if self.short else [])
            info = typer.Option(self.default, *decls, help=self.help)
        return _parameter(self.name, info, self.type, self.default)


@dataclass(frozen=True)
class Shortcut:
    """An option that sets the config key ``key`` (``--num-actors`` for ``num_actors``) when
    given. Its help is the field's description (and default) unless ``help`` is set;
    ``convert`` turns the option's value into the setting (``None``: not set)."""

    key: str
    type: Any = str
    option: str | None = None
    short: str | None = None
    help: str | None = None
    convert: Callable[[Any], Any] | None = None

    def parameter(self) -> inspect.Parameter:
        decls = [self.option or "--" + self.key.replace("_", "-")]
        info = typer.Option(None, *decls + ([self.short] if self.short else []), help=self.help)
        return _parameter(self.key, info, self.type, None)


def _parameter(name: str, info, kind, default) -> inspect.Parameter:
    ann = kind | None if default is None else kind
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=info, annotation=ann)


def stage_verb(app: typer.Typer, name: str, *, run: Callable, help: str,
               config: str | None = None, inputs: Sequence[Input] = (),
               shortcuts: Sequence[Shortcut | str] = (),
               base: Callable[[dict], dict | None] | None = None,
               settings: Callable[[dict], dict] | None = None,
               needs_ray: bool = False, verbose: bool = False,
               output_kind: str | None = "folder", output_help: str | None = None,
               output_required: bool = True, output_key: str | None = None,
               one_line_errors: bool = False) -> Callable:
    """Register the verb ``name`` on ``app`` and return its callback.

    ``config``: the stage's config model as ``"module:Class"`` (``None``: a verb without
    settings, so no ``--config`` and no overrides). ``run(cfg, inputs, output, echo)`` does the
    work; ``inputs`` maps every :class:`Input` (and ``verbose``) to its value. ``base(inputs)``:
    a preset the YAML and the overrides start from; ``settings(inputs)``: settings built from
    the inputs, merged with the shortcuts' (e.g. ``--option k=v`` into ``options``). Every
    verb resolves its settings in one order: ``base`` < ``--config`` < options (shortcuts) <
    ``key=value`` overrides. ``output_kind``: ``"folder"`` or
    ``"table"``, checked by :func:`pdray.io.check_output` before any work (``None``: not
    checked; ``output_required=False``: ``-o`` may be left out, and ``run`` gets ``None``;
    ``output_key``: ``-o`` is optional and sets that config key, like a shortcut).
    ``needs_ray``: start Ray (quiet unless ``verbose`` adds ``--verbose`` and it is
    given). ``one_line_errors``: pdray's own errors (and an ``OSError`` no layer wrapped) are
    printed as ``error: …`` with exit 2 by the command itself (a caller of ``app`` sees the
    exit code), not only by :func:`pdray.cli.main`."""
    cuts = [Shortcut(s) if isinstance(s, str) else s for s in shortcuts]
    names = [i.name for i in inputs] + [s.key for s in cuts]
    clash = sorted({n for n in names if n in RESERVED or names.count(n) > 1})
    if clash:
        raise ValueError(f"verb {name!r}: parameter names used twice or reserved: {clash}")
    if (cuts or output_key) and config is None:
        raise ValueError(f"verb {name!r}: shortcuts set config keys, but there is no config")

    def callback(**kw):
        from pdray.io import check_output  # pyarrow: only when a command runs

        output, path = kw.pop("output"), kw.pop("config", None)
        overrides = list(kw.pop("overrides", None) or [])
        given = {}
        for s in cuts:
            value = kw.pop(s.key)
            value = s.convert(value) if s.convert and value is not None else value
            if value is not None:
                given[s.key] = value
        if output_key and output is not None:
            given[output_key] = str(output)
        try:
            cfg = None
            if config is not None:
                if settings is not None:
                    given = {**given, **settings(kw)}
                cfg = load_config(import_config(config), path, overrides,
                                  base=base(kw) if base else None, given=given,
                                  overrides_last=True)
            if output_kind is not None and output is not None:
                check_output(output, table=output_kind == "table",
                             folder=output_kind == "folder")   # before Ray starts
            if needs_ray:
                from pdray.raysetup import init_ray, verbose_default

                # quiet (Ray's lines in its log files) unless --verbose or PDRAY_VERBOSE=1
                init_ray(quiet=not ((verbose and kw["verbose"]) or verbose_default()))
            return run(cfg, kw, output, typer.echo)
        except (PdrayError, OSError) as e:
            if not one_line_errors:
                raise
            fail(e)

    params = [i.parameter() for i in inputs if i.option is None]
    out_default = ... if output_required and not output_key else None
    # a config key is a string (a local path or a URI such as s3://…, which Path would mangle)
    params.append(_parameter("output", typer.Option(out_default, "--output", "-o",
                                                    help=output_help),
                             str if output_key else Path, out_default))
    params += [i.parameter() for i in inputs if i.option is not None]
    params += [s.parameter() for s in cuts]
    if verbose:
        params.append(_parameter("verbose", typer.Option(False, "--verbose", help=VERBOSE_HELP),
                                 bool, False))
    if config is not None:
        params.append(_parameter("config", CONFIG_OPTION, Path, None))
        params.append(_parameter("overrides", OVERRIDES_ARG, list[str], None))
    callback.__signature__ = inspect.Signature(params)
    callback.__annotations__ = {p.name: p.annotation for p in params}
    callback.__name__ = callback.__qualname__ = f"{name}_cmd"
    cls = settings_epilog(config, {s.key: s.key for s in cuts}) if config is not None else None
    app.command(name, cls=cls, help=help)(callback)
    return callback
