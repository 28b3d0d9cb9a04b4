"""The black box: record everything, and rewind to any moment later.

A bank records every transfer and login attempt in a ledger topic, like a flight recorder. Nothing is
updated or deleted: events are only appended. Later something looks wrong, and an investigator rewinds
to the moment just before the suspicious burst of failed logins (``log.replay(topic, since=that_time)``)
and steps through what happened, event by event, each with its time and offset. Rewinding is only
reading: the events before that moment are all still there, as a replay from the beginning shows.
(The investigator could equally be another program, days later: ``riel.open`` on the same data
directory, or ``riel.connect`` to the same server, replays the same ledger.)

    python examples/black_box.py                    # embedded, on a temporary data directory
    python examples/black_box.py --server HOST:PORT # against `riel serve`
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime
from typing import Any

from _common import open_log, parse_args, unique

import riel

# An ordinary morning at the bank.
ORDINARY: list[dict[str, Any]] = [
    {"type": "login", "user": "alice", "ok": True, "ip": "10.0.0.7"},
    {"type": "transfer", "from": "alice", "to": "bob", "amount": 120},
    {"type": "login", "user": "bob", "ok": True, "ip": "10.0.0.12"},
    {"type": "login", "user": "carol", "ok": False, "ip": "10.0.0.31"},  # a typo...
    {"type": "login", "user": "carol", "ok": True, "ip": "10.0.0.31"},  # ...and in
    {"type": "transfer", "from": "bob", "to": "carol", "amount": 40},
]
# Then: a burst of failed logins on alice's account from an unknown address, a success, money leaves.
INCIDENT: list[dict[str, Any]] = [
    *({"type": "login", "user": "alice", "ok": False, "ip": "203.0.113.66"} for _ in range(5)),
    {"type": "login", "user": "alice", "ok": True, "ip": "203.0.113.66"},
    {"type": "transfer", "from": "alice", "to": "mule-4711", "amount": 9500},
]


def describe(event: dict[str, Any]) -> str:
    if event["type"] == "login":
        outcome = "ok" if event["ok"] else "FAILED"
        return f"login {outcome:<6} {event['user']:<6} from {event['ip']}"
    return f"transfer {event['amount']:>5} EUR {event['from']} -> {event['to']}"


def when(message: riel.Message) -> str:
    return message.time.isoformat(timespec="milliseconds")


def record(log: riel.EventLog, topic: str, events: list[dict[str, Any]]) -> None:
    for event in events:
        # A bank waits for the acknowledgement: once result() returns, the event is stored for good.
        stored = log.publish(topic, event).result(timeout=30)
        print(f"bank: recorded offset {stored.offset:>2}: {describe(event)}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args("A bank's append-only ledger, rewound to a moment and replayed.", argv)
    topic = unique("ledger")

    with open_log(args, value_codec="json") as log:
        log.create_topic(topic, partitions=1)  # one partition: one total order, like a flight recorder

        record(log, topic, ORDINARY)
        time.sleep(0.05)  # timestamps are in milliseconds: keep the two phases apart
        suspicious_from = datetime.now(UTC)  # the moment the investigator will rewind to
        time.sleep(0.05)
        record(log, topic, INCIDENT)

        # Later, the investigator rewinds the ledger to just before the burst of failed logins.
        print(f"\ninvestigator: rewinding to {suspicious_from.isoformat(timespec='milliseconds')}")
        replayed = []
        for step, message in enumerate(log.replay(topic, since=suspicious_from), 1):
            print(f"  step {step}: {when(message)} offset {message.offset:>2}: {describe(message.value)}")
            replayed.append(message.value)

        # Rewinding took nothing away: the whole history is still there, from the first event on.
        everything = [message.value for message in log.replay(topic)]
        earlier = [message.value for message in log.replay(topic, until=suspicious_from)]
        print(
            f"investigator: the ledger still holds all {len(everything)} events: "
            f"{len(earlier)} before that moment, {len(replayed)} from it on"
        )

    ok = replayed == INCIDENT and earlier == ORDINARY and everything == ORDINARY + INCIDENT
    print(
        f"the replay showed exactly the {len(INCIDENT)} events after the moment"
        if ok
        else f"FAILED: replayed {replayed}, earlier {earlier}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
