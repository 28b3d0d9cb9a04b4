"""``riel serve`` settings from a config file, environment variables and flags: flag > environment >
file > built-in default, resolved by click itself (checked through ``make_context``) and once for real
(a server started with all three listens where the flag says)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import click
import pytest

from cli import riel_cli, unique
from conftest import RielServer, free_port
from e2e.helpers import confluent_topic_configs, create_topic
from riel.cli.main import serve
from riel.cli.serve_config import loaded_config


@pytest.fixture(autouse=True)
def _no_riel_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("RIEL_PORT", "RIEL_CONFIG", "RIEL_DATA_DIR", "RIEL_FLUSH", "RIEL_NO_HTTP", "RIEL_HTTP_PORT"):
        monkeypatch.delenv(name, raising=False)


def resolve(*args: str) -> tuple[dict[str, Any], click.Context]:
    ctx = serve.make_context("serve", list(args))
    return ctx.params, ctx


def write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("in_file", "in_env", "on_command_line", "expected"),
    [
        (None, None, None, 9092),
        (1111, None, None, 1111),
        (1111, 2222, None, 2222),
        (1111, 2222, 3333, 3333),
        (1111, None, 3333, 3333),
        (None, 2222, None, 2222),
    ],
)
def test_flag_beats_env_beats_file_beats_default(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    in_file: int | None,
    in_env: int | None,
    on_command_line: int | None,
    expected: int,
) -> None:
    config = write(tmp_path / "riel.toml", f"port = {in_file}\n" if in_file else "")
    if in_env:
        monkeypatch.setenv("RIEL_PORT", str(in_env))
    args = ["--config", str(config)] + (["--port", str(on_command_line)] if on_command_line else [])
    params, ctx = resolve(*args)
    assert params["port"] == expected
    source = ctx.get_parameter_source("port")
    assert source is not None
    assert source.name == (
        "COMMANDLINE"
        if on_command_line
        else "ENVIRONMENT"
        if in_env
        else "DEFAULT_MAP"
        if in_file
        else "DEFAULT"
    )


def test_file_keys_types_and_topic_defaults(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "etc").mkdir()
    config = write(
        tmp_path / "etc" / "riel.toml",
        """
        data_dir = "data"               # relative to the file
        http-port = 8181                # dashes work too
        no_console = true
        flush = "interval:100:50"
        group_initial_rebalance_delay_ms = 0

        [topic-defaults]
        "retention.ms" = 3600000
        "cleanup.policy" = "compact"
        "riel.append.only" = false
        """.replace("\n        ", "\n"),
    )
    monkeypatch.setenv("RIEL_CONFIG", str(config))  # the file can come from the environment too
    monkeypatch.setenv("RIEL_NO_CONSOLE", "false")
    params, ctx = resolve("--flush", "os")
    assert params["data_dir"] == tmp_path / "etc" / "data"
    assert params["http_port"] == 8181
    assert params["no_console"] is False  # environment over file
    assert params["flush_spec"] == "os"  # flag over file
    assert params["group_initial_rebalance_delay_ms"] == 0
    assert loaded_config(ctx).topic_defaults == {
        "retention.ms": "3600000",
        "cleanup.policy": "compact",
        "riel.append.only": "false",
    }
    assert loaded_config(resolve()[1]).path == config


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 1\nbogus = 2\n", "unknown key 'bogus'"),
        ("flush_spec = 'os'\n", "unknown key 'flush_spec'"),  # the flag is --flush
        ('port = "x"\n', "port = 'x'"),
        ("[topic-defaults]\n'retention.mss' = 1\n", "unknown topic config 'retention.mss'"),
        ("[topic-defaults]\n'retention.ms' = 'soon'\n", "bad value in [topic-defaults]"),
        ("port = \n", "not valid TOML"),
    ],
)
def test_bad_config_file_is_a_usage_error(tmp_path: Path, text: str, message: str) -> None:
    config = write(tmp_path / "riel.toml", text)
    result = riel_cli("serve", "--config", str(config), "--data-dir", str(tmp_path / "data"), timeout=30)
    assert result.returncode == 2, result
    assert message in result.stderr and str(config) in result.stderr, result.stderr
    if "unknown key" in message:
        assert "valid keys:" in result.stderr and "data_dir" in result.stderr and "http_port" in result.stderr
    assert not (tmp_path / "data").exists()  # refused before anything was started


def test_missing_config_file(tmp_path: Path) -> None:
    result = riel_cli("serve", "--config", str(tmp_path / "nope.toml"), timeout=30)
    assert result.returncode == 2 and "cannot read config file" in result.stderr


# The flags riel serve had before the config file came; each must keep its environment variable.
DOCUMENTED_ENV_FLAGS = {
    "--data-dir", "--host", "--port", "--advertised-host", "--advertised-port", "--flush",
    "--num-partitions", "--no-auto-create", "--max-request-bytes", "--retention-check-interval-ms",
    "--http-host", "--http-port", "--no-http", "--no-console", "--log-cleaner-backoff-ms",
    "--group-initial-rebalance-delay-ms", "--group-min-session-timeout-ms", "--offsets-retention-minutes",
    "--log-level", "--config",
}  # fmt: skip


def test_environment_variables_are_named_after_their_flags() -> None:
    with_env = set()
    for param in serve.params:
        if isinstance(param, click.Option) and param.envvar:
            flag = max(param.opts, key=len)
            assert param.envvar == "RIEL_" + flag.lstrip("-").upper().replace("-", "_"), flag
            with_env.add(flag)
    assert with_env >= DOCUMENTED_ENV_FLAGS, DOCUMENTED_ENV_FLAGS - with_env


def test_help_documents_the_precedence() -> None:
    text = riel_cli("serve", "--help", timeout=30).stdout
    assert "--config FILE" in text and "RIEL_CONFIG" in text and "[topic-defaults]" in text
    flag, env, file, default = (
        text.index(s) for s in ("its flag", "environment variable", "config file", "built-in default")
    )
    assert flag < env < file < default


def _listening(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_real_server_listens_where_the_flag_says(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    file_port, env_port = free_port(), free_port()
    config = write(
        tmp_path / "riel.toml",
        f'port = {file_port}\nflush = "os"\n\n[topic-defaults]\n"retention.ms" = 3600000\n',
    )
    monkeypatch.setenv("RIEL_PORT", str(env_port))
    server = RielServer(tmp_path / "data", tmp_path / "riel.log", extra_args=("--config", str(config)))
    server.start()  # passes --port (and --data-dir, --flush, --http-port) on the command line
    try:
        assert _listening(server.port)
        assert not _listening(file_port) and not _listening(env_port)
        topic = unique("cli-serve-config")
        create_topic(server.bootstrap, topic, 1)
        assert confluent_topic_configs(server.bootstrap, topic)["retention.ms"][0] == "3600000"
        assert f"port={server.port} (commandline)" in server.log_text()
    finally:
        server.close()
