"""``riel produce``, ``riel consume`` and ``riel replay`` against real servers (and their data
directories), through the real command line; --json output is parsed and compared exactly."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from typing import Any

import click
import pytest

from cli import json_lines, json_of, ok, riel_cli, unique
from conftest import RielServer, ServerFactory
from riel.cli.consume import Message, Template, iso_time, parse_time

MINUTE = 60_000
# The timeline starts an hour ago (on a minute), so retention (7 days by default) keeps it.
T0 = (int(time.time() * 1000) - 60 * MINUTE) // MINUTE * MINUTE
WINDOW = ("--from-time", iso_time(T0 + 1 * MINUTE) or "", "--to-time", iso_time(T0 + 4 * MINUTE) or "")


def _strip(messages: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(m["partition"], m["offset"], m["key"], m["value"], m["headers"]) for m in messages]


def _timeline(bootstrap: str, topic: str) -> None:
    """Five messages a minute apart from 09:00 over two partitions (explicit timestamps)."""
    lines = [
        {"key": "a", "value": "a0", "partition": 0, "timestamp": iso_time(T0)},
        {"key": "b", "value": "b1", "partition": 1, "timestamp": T0 + 1 * MINUTE},
        {"key": "a", "value": "a2", "partition": 0, "timestamp": T0 + 2 * MINUTE},
        {"key": "b", "value": "b3", "partition": 1, "timestamp": T0 + 3 * MINUTE},
        {"key": "a", "value": "a4", "partition": 0, "timestamp": T0 + 4 * MINUTE},
    ]
    ok(riel_cli("topic", "create", topic, "-p", "2", "-b", bootstrap))
    report = json_of(
        riel_cli("produce", topic, "--json", "-b", bootstrap, input="\n".join(map(json.dumps, lines)))
    )
    assert report["delivered"] == 5 and report["failed"] == 0, report


def test_produce_stdin_with_key_separator_and_headers_then_consume_json(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-pc")
    ok(riel_cli("topic", "create", topic, "-p", "1", *b))
    result = ok(
        riel_cli("produce", topic, "-k", "::", "-H", "source=cli", "-H", "env=test", *b,
                 input="k1::hello\nk2::wor::ld\nno key here\n\n")
    )  # fmt: skip
    assert "4 of 4 message(s) delivered" in result.stderr

    messages = json_lines(riel_cli("consume", topic, "--json", *b))
    headers = {"source": "cli", "env": "test"}
    assert _strip(messages) == [
        (0, 0, "k1", "hello", headers),
        (0, 1, "k2", "wor::ld", headers),
        (0, 2, None, "no key here", headers),
        (0, 3, None, "", headers),
    ]
    assert all(m["topic"] == topic and abs(m["timestamp"] - time.time() * 1000) < 120_000 for m in messages)
    # Piped without --format or --json: the values, one per line (kcat's default).
    assert ok(riel_cli("consume", topic, *b)).stdout == "hello\nwor::ld\nno key here\n\n"


def test_produce_json_lines_round_trip(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-json")
    ok(riel_cli("topic", "create", topic, "-p", "2", *b))
    lines = [
        {"key": "user-1", "value": "plain text", "headers": {"trace": "t-1"}, "partition": 1},
        {"key": None, "value": {"base64": "/wABAg=="}, "partition": 0},  # not UTF-8: stays base64
        {"key": "user-1", "value": None, "partition": 1},  # a tombstone
        {"value": {"order": 7, "items": ["soup"]}, "partition": 0, "headers": [["dup", "1"], ["dup", "2"]]},
    ]
    report = json_of(riel_cli("produce", topic, "--json", *b, input="\n".join(map(json.dumps, lines)) + "\n"))
    assert report == {
        "topic": topic,
        "sent": 4,
        "delivered": 4,
        "failed": 0,
        "partitions": {"0": 2, "1": 2},
        "errors": [],
    }
    messages = json_lines(riel_cli("consume", topic, "--json", *b))
    by_partition = sorted(_strip(messages))
    assert by_partition == [
        (0, 0, None, {"base64": "/wABAg=="}, {}),
        (0, 1, None, '{"order":7,"items":["soup"]}', {"dup": ["1", "2"]}),
        (1, 0, "user-1", "plain text", {"trace": "t-1"}),
        (1, 1, "user-1", None, {}),
    ]
    # What consume --json prints, produce --json takes back unchanged.
    copy = unique("cli-json-copy")
    ok(riel_cli("topic", "create", copy, "-p", "2", *b))
    again = [{k: m[k] for k in ("key", "value", "headers", "partition", "timestamp")} for m in messages]
    json_of(riel_cli("produce", copy, "--json", *b, input="\n".join(map(json.dumps, again))))
    copied = json_lines(riel_cli("consume", copy, "--json", *b))
    strip_topic = [{**m, "topic": None} for m in copied]
    assert sorted(strip_topic, key=lambda m: (m["partition"], m["offset"])) == sorted(
        ({**m, "topic": None} for m in messages), key=lambda m: (m["partition"], m["offset"])
    )

    bad = riel_cli(
        "produce", topic, "--json", *b, input='{"value": "ok"}\n{"vale": "typo"}\n{"value": "late"}\n'
    )
    assert bad.returncode == 2, bad
    assert "line 2: unknown field(s) vale" in bad.stderr and "nothing after that line was sent" in bad.stderr
    assert json.loads(bad.stdout)["delivered"] == 1


def test_produce_to_missing_partition_and_undeliverable(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-part")
    ok(riel_cli("topic", "create", topic, "-p", "2", *b))
    result = riel_cli("produce", topic, "-p", "5", *b, input="x\n")
    assert result.returncode == 4 and "there is no partition 5" in result.stderr, result
    compacted = unique("cli-compact")
    ok(riel_cli("topic", "create", compacted, "-c", "cleanup.policy=compact", *b))
    failed = riel_cli("produce", compacted, *b, input="no key\n")  # compacted topics need keys
    assert failed.returncode == 1, failed
    assert "0 of 1 message(s) delivered" in failed.stderr and "INVALID_RECORD" in failed.stderr


def test_consume_by_offset_partition_count_and_time(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-time")
    _timeline(riel.bootstrap, topic)

    def values(*args: str) -> list[str]:
        return [m["value"] for m in json_lines(riel_cli("consume", topic, "--json", *b, *args))]

    assert sorted(values()) == ["a0", "a2", "a4", "b1", "b3"]
    assert values("-p", "0", "--offset", "1") == ["a2", "a4"]
    assert values("-p", "0", "--offset", "-1") == ["a4"]  # negative: from the end
    assert values("-p", "0", "--offset", "99") == []
    assert values("-p", "0", "-n", "2") == ["a0", "a2"]
    assert sorted(values("--from-time", iso_time(T0 + 2 * MINUTE) or "")) == ["a2", "a4", "b3"]
    assert sorted(values("--from-time", str(T0 + 3 * MINUTE))) == ["a4", "b3"]
    plus_one_hour = datetime.fromtimestamp((T0 + 3 * MINUTE) / 1000, timezone(timedelta(hours=1)))
    assert sorted(values("--from-time", plus_one_hour.isoformat())) == ["a4", "b3"]
    assert sorted(values("--from-time", "-30m")) == []
    # T0 was fixed when the module was imported, maybe minutes ago in a long run: reach back past it.
    minutes_back = (int(time.time() * 1000) - T0) // MINUTE + 2
    assert sorted(values("--from-time", f"-{minutes_back}m")) == ["a0", "a2", "a4", "b1", "b3"]
    clash = riel_cli("consume", topic, "--offset", "1", "--from-beginning", *b)
    assert clash.returncode == 2 and "exclude each other" in clash.stderr
    nope = riel_cli("consume", topic, "-p", "7", *b)
    assert nope.returncode == 4 and "there is no partition 7" in nope.stderr


def test_consume_with_group_twice_gets_only_new_messages(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic, group = unique("cli-group"), unique("cli-readers")
    ok(riel_cli("topic", "create", topic, "-p", "3", *b))
    ok(riel_cli("produce", topic, "-k", "=", *b, input="".join(f"k{i}=v{i}\n" for i in range(9))))

    first = json_lines(riel_cli("consume", topic, "-g", group, "--json", *b))
    assert sorted(m["value"] for m in first) == [f"v{i}" for i in range(9)]
    assert json_lines(riel_cli("consume", topic, "-g", group, "--json", *b)) == []

    ok(riel_cli("produce", topic, *b, input="late\n"))
    (late,) = json_lines(riel_cli("consume", topic, "-g", group, "--json", *b))
    assert late["value"] == "late"

    # --from-beginning rewinds the group; -n commits only what was printed (the other partitions keep
    # their committed offsets), so the next run continues right after that one message.
    (one,) = json_lines(riel_cli("consume", topic, "-g", group, "--from-beginning", "-n", "1", "--json", *b))
    assert one["offset"] == 0
    rest = json_lines(riel_cli("consume", topic, "-g", group, "--json", *b))
    expected = [m for m in [*first, late] if m["partition"] == one["partition"]][1:]
    assert _strip(rest) == _strip(expected)


def test_format_templates(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-fmt")
    ok(riel_cli("topic", "create", topic, "-p", "1", *b))
    ok(riel_cli("produce", topic, "-k", ":", "-H", "h1=x", *b, input="key:value\n:empty key\nno key\n"))
    result = ok(riel_cli("consume", topic, "--format", "%k=%s (%t/%p@%o) [%h] %K/%S\\t%%\\x21\\n", *b))
    assert result.stdout == (
        f"key=value ({topic}/0@0) [h1=x] 3/5\t%!\n"
        f"=empty key ({topic}/0@1) [h1=x] 0/9\t%!\n"
        f"=no key ({topic}/0@2) [h1=x] -1/6\t%!\n"
    )
    stamps = ok(riel_cli("consume", topic, "--format", "%T\\n", *b)).stdout.split()
    assert len(stamps) == 3 and all(abs(int(s) - time.time() * 1000) < 120_000 for s in stamps)


def test_template_and_time_parsing_units() -> None:
    message = Message("t", 2, 7, 1000, b"k", b"\xffv", (("a", b"1"), ("b", None)))
    assert Template("%t|%p|%o|%k|%s|%S|%K|%h|%T\\n").render(message) == b"t|2|7|k|\xffv|2|1|a=1,b=|1000\n"
    assert Template("%R").render(message) == b"\x00\x00\x00\x02"
    assert Template("\\101\\x42\\\\%%").render(message) == b"AB\\%"
    nine = 1767258000000  # 2026-01-01T09:00:00Z
    assert parse_time(str(nine)) == nine
    assert parse_time("2026-01-01T09:00:00Z") == parse_time("2026-01-01 09:00") == nine
    assert parse_time("2026-01-01T10:00:00+01:00") == nine
    assert parse_time("2026-01-01") == nine - 9 * 60 * MINUTE
    assert parse_time("-15m", now_ms=nine) == nine - 15 * MINUTE
    assert parse_time("-2h", now_ms=nine) == nine - 120 * MINUTE
    assert parse_time("now", now_ms=nine) == nine
    with pytest.raises(click.BadParameter):
        parse_time("yesterday-ish")


def test_follow_prints_new_messages_until_idle(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-follow")
    ok(riel_cli("topic", "create", topic, "-p", "1", *b))
    ok(riel_cli("produce", topic, *b, input="before\n"))
    follower = subprocess.Popen(
        [sys.executable, "-m", "riel", "consume", topic, "-f", "--idle-timeout", "4", "--json", *b],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        assert follower.stdout is not None
        first = json.loads(follower.stdout.readline())  # blocks until it printed the old message
        assert first["value"] == "before"
        ok(riel_cli("produce", topic, *b, input="after\n"))
        second = json.loads(follower.stdout.readline())
        assert second["value"] == "after" and second["offset"] == 1
        assert follower.wait(timeout=60) == 0
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.wait(10)


def test_replay_between_two_times(riel: RielServer) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-replay")
    _timeline(riel.bootstrap, topic)
    window = WINDOW

    by_partition = json_lines(riel_cli("replay", topic, *window, "--json", *b))
    assert [(m["partition"], m["offset"], m["value"]) for m in by_partition] == [
        (0, 1, "a2"),
        (1, 0, "b1"),
        (1, 1, "b3"),
    ]
    by_time = json_lines(riel_cli("replay", topic, *window, "--order", "time", "--json", *b))
    assert [m["value"] for m in by_time] == ["b1", "a2", "b3"]
    assert ok(
        riel_cli("replay", topic, "--from-offset", "1", "--to-offset", "2", "--format", "%p@%o=%s\\n", *b)
    ).stdout == ("0@1=a2\n1@1=b3\n")
    dry = json_of(riel_cli("replay", topic, *window, "--dry-run", "--json", *b))
    assert dry == {
        "topic": topic,
        "partitions": [
            {"partition": 0, "from_offset": 1, "to_offset": 2, "messages": 1},
            {"partition": 1, "from_offset": 0, "to_offset": 2, "messages": 2},
        ],
    }

    # Into a new topic: same partitions, keys, values and timestamps; where each copy came from.
    target = unique("cli-replayed")
    copied = riel_cli("replay", topic, *window, "--to", target, "--source-header", *b)
    assert "replayed 3 of 3 message(s)" in ok(copied).stderr
    again = json_lines(riel_cli("consume", target, "--json", *b))
    assert sorted((m["partition"], m["key"], m["value"], m["timestamp"], m["headers"]["riel.replay.source"])
                  for m in again) == [
        (0, "a", "a2", T0 + 2 * MINUTE, f"{topic}/0@1"),
        (1, "b", "b1", T0 + 1 * MINUTE, f"{topic}/1@0"),
        (1, "b", "b3", T0 + 3 * MINUTE, f"{topic}/1@1"),
    ]  # fmt: skip


def test_data_dir_mode_reads_a_stopped_server(riel_factory: ServerFactory) -> None:
    server = riel_factory(num_partitions=1)
    b = ("-b", server.bootstrap)
    topic = unique("cli-offline")
    _timeline(server.bootstrap, topic)
    ok(riel_cli("topic", "create", unique("cli-offline-cfg"), "-c", "retention.ms=123456", *b))
    online = json_lines(riel_cli("consume", topic, "--json", *b))
    online_describe = json_of(riel_cli("topic", "describe", topic, "--json", *b))
    d = ("--data-dir", str(server.data_dir))

    locked = riel_cli("topic", "list", *d)
    assert locked.returncode == 2, locked
    assert "in use" in locked.stderr and "drop --data-dir and pass --bootstrap" in locked.stderr

    assert server.stop() == 0
    listed = {t["name"]: t for t in json_of(riel_cli("topic", "list", "--json", *d))}
    assert listed[topic]["messages"] == 5 and listed[topic]["partitions"] == 2
    assert listed[topic]["size_bytes"] > 0
    assert any(t["configs"] == {"retention.ms": "123456"} for t in listed.values())
    described = json_of(riel_cli("topic", "describe", topic, "--json", *d))
    assert described["topic_id"] == online_describe["topic_id"]
    assert [(p["start_offset"], p["end_offset"]) for p in described["partitions"]] == [(0, 3), (0, 2)]
    assert {k: v["value"] for k, v in described["configs"].items()} == {
        k: v["value"] for k, v in online_describe["configs"].items()
    }

    offline = json_lines(riel_cli("consume", topic, "--json", *d))
    assert sorted(offline, key=lambda m: (m["partition"], m["offset"])) == sorted(
        online, key=lambda m: (m["partition"], m["offset"])
    )
    assert [
        m["value"] for m in json_lines(riel_cli("consume", topic, "-p", "0", "--offset", "1", "--json", *d))
    ] == [
        "a2",
        "a4",
    ]
    window = WINDOW
    assert [
        m["value"] for m in json_lines(riel_cli("replay", topic, *window, "--order", "time", "--json", *d))
    ] == [
        "b1",
        "a2",
        "b3",
    ]
    follow = riel_cli("consume", topic, "-f", *d)
    assert follow.returncode == 2 and "need a running server" in follow.stderr
    missing = riel_cli("consume", "nope", *d)
    assert missing.returncode == 4 and "does not exist" in missing.stderr
    assert riel_cli("topic", "list", "--data-dir", str(server.data_dir / "nowhere")).returncode == 2

    server.start()  # the CLI released the directory: the server starts again on it
    assert json_of(riel_cli("topic", "describe", topic, "--json", *b))["messages"] == 5


@pytest.mark.parametrize("command", [("topic", "list"), ("consume", "x"), ("replay", "x")])
def test_bootstrap_and_data_dir_exclude_each_other(command: tuple[str, ...], tmp_path: Any) -> None:
    result = riel_cli(*command, "-b", "127.0.0.1:1", "--data-dir", str(tmp_path))
    assert result.returncode == 2 and "exclude each other" in result.stderr


def test_produce_from_file_and_pipe_into_head(riel: RielServer, tmp_path: Any) -> None:
    b = ("-b", riel.bootstrap)
    topic = unique("cli-file")
    ok(riel_cli("topic", "create", topic, "-p", "3", *b))
    source = tmp_path / "lines.txt"
    count = 40_000  # > 1 MiB: big enough for a progress bar, which a pipe must never get
    source.write_text("".join(f"key-{i % 97}\t{i:08d} {'x' * 20}\n" for i in range(count)))
    result = ok(riel_cli("produce", topic, "-f", str(source), "-k", "\t", *b))
    assert f"{count} of {count} message(s) delivered" in result.stderr
    assert "━" not in result.stderr and "\r" not in result.stderr
    described = json_of(riel_cli("topic", "describe", topic, "--json", *b))
    assert described["messages"] == count

    # A reader that goes away early (head) ends the output quietly with exit code 0.
    shell = subprocess.run(
        [
            "bash",
            "-c",
            f"set -o pipefail; {sys.executable} -m riel consume {topic} -b {riel.bootstrap} | head -n 2",
        ],
        capture_output=True,
        text=True,
        timeout=90,
    )
    assert shell.returncode == 0, shell
    assert (
        len(shell.stdout.splitlines()) == 2
        and "Traceback" not in shell.stderr
        and "Broken" not in shell.stderr
    )

    missing = riel_cli("produce", topic, "-f", str(tmp_path / "nope.txt"), *b)
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_replay_from_a_stopped_servers_directory_into_a_running_server(riel_factory: ServerFactory) -> None:
    old = riel_factory()
    topic = unique("cli-restore")
    _timeline(old.bootstrap, topic)
    assert old.stop() == 0
    new = riel_factory()
    result = riel_cli(
        "replay", topic, "--data-dir", str(old.data_dir), *WINDOW, "--to", topic, "-b", new.bootstrap
    )
    assert "replayed 3 of 3 message(s)" in ok(result).stderr
    copied = json_lines(riel_cli("consume", topic, "--json", "-b", new.bootstrap))
    assert sorted((m["partition"], m["offset"], m["value"], m["timestamp"]) for m in copied) == [
        (0, 0, "a2", T0 + 2 * MINUTE),
        (1, 0, "b1", T0 + 1 * MINUTE),
        (1, 1, "b3", T0 + 3 * MINUTE),
    ]
