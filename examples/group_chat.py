"""One event, many listeners: every service that cares about sign-ups gets every sign-up.

The sign-up form publishes "new user signed up" once. Three services react to it: welcome-mail sends a
welcome mail, marketing adds the user to the newsletter, audit files a record. Each service is its own
consumer group, so each gets the full stream (members of one group would split it instead; see
restaurant.py). Audit is deployed late, after the sign-ups were published, and still sees all of them:
a group that has committed nothing starts from the earliest message (``start="earliest"``, the SDK's
default). The events stay in the log; reading them takes nothing away from anyone else.

The services would be separate programs on separate machines; here they are threads of one process,
each with a consumer of its own.

    python examples/group_chat.py                    # embedded, on a temporary data directory
    python examples/group_chat.py --server HOST:PORT # against `riel serve`
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from collections.abc import Callable

from _common import open_log, parse_args, unique

import riel

NAMES = ["alice", "bob", "chidi", "dana", "emeka", "fatima", "goran", "hana"]

print_lock = threading.Lock()


def say(text: str) -> None:
    with print_lock:  # the services print from their own threads
        print(text, flush=True)


def welcome_mail(event: riel.Message) -> str:
    return f"sending 'Welcome, {event.value['name'].title()}!' to {event.value['email']}"


def marketing(event: riel.Message) -> str:
    return f"adding {event.value['name']} to the newsletter"


def audit(event: riel.Message) -> str:
    when = event.time.isoformat(timespec="milliseconds")
    return f"filed: {event.value['name']} signed up at {when} (partition {event.partition} @ {event.offset})"


def run_service(
    log: riel.EventLog,
    topic: str,
    service: str,
    group: str,
    react: Callable[[riel.Message], str],
    got: list[str],
    closing: threading.Event,
) -> None:
    """A service: its own group, its own consumer, in its own thread."""
    with log.subscribe(topic, group=group) as signups:
        while not closing.is_set():
            event = signups.poll(timeout=0.1)
            if event is not None:
                say(f"  {service}: {react(event)}")
                got.append(event.value["name"])


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--users", type=int, default=6, help="how many users sign up (6)")

    args = parse_args("One sign-up event reaches three services, one of them started late.", argv, options)
    topic = unique("signups")
    services: dict[str, Callable[[riel.Message], str]] = {
        "welcome-mail": welcome_mail,
        "marketing": marketing,
        "audit": audit,
    }
    got: dict[str, list[str]] = {name: [] for name in services}
    closing = threading.Event()

    def start(log: riel.EventLog, name: str) -> threading.Thread:
        group = unique(name)  # a group per service: each one gets every event
        thread = threading.Thread(
            target=run_service, args=(log, topic, name, group, services[name], got[name], closing)
        )
        thread.start()
        return thread

    with open_log(args, value_codec="json") as log:
        log.create_topic(topic, partitions=3)
        threads = [start(log, "welcome-mail"), start(log, "marketing")]  # audit is not deployed yet

        users = [f"{NAMES[i % len(NAMES)]}{i // len(NAMES) or ''}" for i in range(args.users)]
        for name in users:
            # Keyed by user: all of one user's events land on one partition, in order.
            signup = {"event": "user signed up", "name": name, "email": f"{name}@example.com"}
            log.publish(topic, signup, key=name)
            say(f"sign-up form: {name} signed up")
        log.flush(timeout=30)  # every sign-up is stored
        say(f"sign-up form: {len(users)} sign-ups published")

        def wait_for(*names: str) -> None:
            deadline = time.monotonic() + 60
            while any(len(got[name]) < len(users) for name in names) and time.monotonic() < deadline:
                time.sleep(0.05)

        wait_for("welcome-mail", "marketing")
        say("... later: the audit service is deployed, long after those sign-ups were published")
        threads.append(start(log, "audit"))
        wait_for("audit")
        time.sleep(0.3)  # long enough for a duplicate to show up, if there were one
        closing.set()
        for thread in threads:
            thread.join()

    ok = True
    for service, names in got.items():
        complete = sorted(names) == sorted(users)
        ok = ok and complete
        say(f"{service} got {len(names)}/{len(users)} sign-ups" + ("" if complete else f", WRONG: {names}"))
    say("every service got every sign-up exactly once" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
