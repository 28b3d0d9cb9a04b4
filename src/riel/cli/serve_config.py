"""``riel serve --config FILE``: broker settings from a TOML file, below flags and environment variables.

Precedence, highest first: a command-line flag, its environment variable (``--foo-bar`` reads
``RIEL_FOO_BAR``), the config file (``--config FILE`` or ``RIEL_CONFIG``), the built-in default. The file
is loaded by an eager ``--config`` option whose callback fills click's ``default_map`` before any other
option is resolved; click looks a value up on the command line, then in the environment, then in the
``default_map``, then in the option's default, which is exactly the order above.

The file's keys are the long flags without the dashes, with ``-`` or ``_`` (``data_dir``, ``http-port``,
``no_http = true``), plus a ``[topic-defaults]`` table of topic configs that apply to every topic that
does not set them itself (``retention.ms``, ``cleanup.policy``...). A relative ``data_dir`` is relative to
the file's directory. An unknown key or a value of the wrong type is a usage error (exit 2) that names
the key and the file.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import click
from rich.markup import escape

from riel.cli.output import EXIT_USAGE, CliError

CONFIG_ENVVAR: Final = "RIEL_CONFIG"
TOPIC_DEFAULTS_TABLE: Final = "topic-defaults"
_META_KEY: Final = "riel.serve_config"
# Options that only make sense on the command line.
_NOT_IN_FILE: Final = frozenset({"config", "help", "version"})

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class ServeFileConfig:
    """A parsed config file: ``options`` by click parameter name (a ``default_map``), and the
    ``[topic-defaults]`` table."""

    path: Path | None = None
    options: dict[str, Any] = field(default_factory=dict)
    topic_defaults: dict[str, str] = field(default_factory=dict)


def file_keys(command: click.Command) -> dict[str, click.Option]:
    """Every key a config file may use for ``command``, both spellings, to its option."""
    keys: dict[str, click.Option] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in _NOT_IN_FILE:
            continue
        for opt in [*param.opts, *param.secondary_opts]:
            if opt.startswith("--"):
                keys[opt[2:]] = param
                keys[opt[2:].replace("-", "_")] = param
    return keys


def _usage(message: str, hint: str | None = None) -> CliError:
    # CliError prints rich markup: "[topic-defaults]" and paths must not be read as tags
    return CliError(escape(message), hint=escape(hint) if hint else None, exit_code=EXIT_USAGE)


def _topic_defaults(path: Path, table: object) -> dict[str, str]:
    from riel.config import TOPIC_CONFIG_DEFAULTS
    from riel.storage.log_config import LogConfig

    if not isinstance(table, dict):
        raise _usage(f"{path}: [{TOPIC_DEFAULTS_TABLE}] must be a table of topic configs")
    out: dict[str, str] = {}
    for name, value in table.items():
        if name not in TOPIC_CONFIG_DEFAULTS:
            raise _usage(
                f"{path}: unknown topic config {name!r} in [{TOPIC_DEFAULTS_TABLE}]",
                hint="valid topic configs: " + ", ".join(sorted(TOPIC_CONFIG_DEFAULTS)),
            )
        if isinstance(value, bool):
            out[name] = "true" if value else "false"
        elif isinstance(value, str | int | float):
            out[name] = str(value)
        else:
            raise _usage(f"{path}: [{TOPIC_DEFAULTS_TABLE}] {name} must be a string or a number")
    try:
        LogConfig.from_configs(out)
    except (ValueError, KeyError) as exc:
        raise _usage(f"{path}: bad value in [{TOPIC_DEFAULTS_TABLE}]: {exc}") from None
    return out


def load_serve_config(
    path: Path, command: click.Command, ctx: click.Context | None = None
) -> ServeFileConfig:
    """Read and check ``path`` for ``command`` (``riel serve``); ``CliError`` (exit 2) on any problem."""
    try:
        with open(path, "rb") as file:
            data = tomllib.load(file)
    except OSError as exc:
        raise _usage(f"cannot read config file {path}: {exc.strerror or exc}") from None
    except tomllib.TOMLDecodeError as exc:
        raise _usage(f"config file {path} is not valid TOML: {exc}") from None
    keys = file_keys(command)
    options: dict[str, Any] = {}
    topic_defaults: dict[str, str] = {}
    for key, value in data.items():
        if key in (TOPIC_DEFAULTS_TABLE, TOPIC_DEFAULTS_TABLE.replace("-", "_")):
            topic_defaults = _topic_defaults(path, value)
            continue
        param = keys.get(key)
        if param is None or param.name is None:
            valid = sorted({k for k in keys if "-" not in k} | {f"[{TOPIC_DEFAULTS_TABLE}]"})
            raise _usage(f"unknown key {key!r} in config file {path}", hint="valid keys: " + ", ".join(valid))
        if param.name in options:
            raise _usage(f"{path}: {key!r} is set twice (as - and _ spellings)")
        if isinstance(param.type, click.Path) and isinstance(value, str):
            value = Path(value).expanduser()
            value = value if value.is_absolute() else path.parent / value
        try:  # convert now, so a bad value names the file and key rather than a flag never typed
            param.type_cast_value(ctx or click.Context(command), value)
        except click.BadParameter as exc:
            raise _usage(f"{path}: {key} = {value!r}: {exc.message}") from None
        options[param.name] = value
    return ServeFileConfig(path, options, topic_defaults)


def _load_callback(ctx: click.Context, param: click.Parameter, value: Path | None) -> Path | None:
    if value is None or ctx.resilient_parsing:
        return value
    loaded = load_serve_config(value, ctx.command, ctx)
    ctx.default_map = {**(ctx.default_map or {}), **loaded.options}
    ctx.meta[_META_KEY] = loaded
    return value


def config_option(function: F) -> F:
    """The eager ``--config FILE`` option (also ``RIEL_CONFIG``) of ``riel serve``."""
    return click.option(
        "--config",
        type=click.Path(path_type=Path, dir_okay=False),
        default=None,
        envvar=CONFIG_ENVVAR,
        is_eager=True,
        expose_value=False,
        callback=_load_callback,
        help='TOML file of settings: keys named like the flags (port = 9092, data_dir = "...", '
        'flush = "always"), plus a [topic-defaults] table (retention.ms = 86400000). '
        "Flags and environment variables override it.",
    )(function)


def loaded_config(ctx: click.Context) -> ServeFileConfig:
    """The config file ``ctx`` was started with (an empty one without ``--config``)."""
    loaded = ctx.meta.get(_META_KEY)
    return loaded if isinstance(loaded, ServeFileConfig) else ServeFileConfig()


def value_sources(ctx: click.Context, names: Mapping[str, Any]) -> dict[str, str]:
    """Where each of ``names`` came from: commandline, environment, config file or default."""
    labels = {"DEFAULT_MAP": "config file"}
    out = {}
    for name in names:
        source = ctx.get_parameter_source(name)
        out[name] = labels.get(source.name, source.name.lower()) if source is not None else "unknown"
    return out
