"""The ticket rail: a waiter never waits for the kitchen.

A waiter clips orders onto the rail (``publish``) and walks away at once: ``publish`` queues the message
and returns in microseconds; the acknowledgement comes later through the returned future. Two cooks form
one consumer group, "kitchen": the group splits the rail's partitions between them, so every ticket is
cooked by exactly one cook. One cook is slow, so the kitchen falls behind; the group's lag (published
but not yet cooked) shows it, and drains back to zero as the cooks catch up.

    python examples/restaurant.py                    # embedded, on a temporary data directory
    python examples/restaurant.py --server HOST:PORT # against `riel serve`
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field

from _common import open_log, parse_args, unique

import riel

DISHES = ["soup", "risotto", "schnitzel", "salad", "pasta", "curry", "burger", "tart"]
TABLES = 12
PARTITIONS = 2  # one per cook; a group hands out whole partitions, never single messages

print_lock = threading.Lock()


def say(text: str) -> None:
    with print_lock:  # the cooks print from their own threads
        print(text, flush=True)


@dataclass
class Kitchen:
    """What the cooks report back to the pass (shared between threads, guarded by ``lock``)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    assignments: dict[str, set[tuple[str, int]]] = field(default_factory=dict)  # cook -> (topic, partition)s
    cooked: dict[str, list[int]] = field(default_factory=dict)  # cook -> order numbers

    def total(self) -> int:
        with self.lock:
            return sum(len(orders) for orders in self.cooked.values())


def cook(
    log: riel.EventLog,
    topic: str,
    group: str,
    name: str,
    seconds_per_ticket: float,
    kitchen: Kitchen,
    closing: threading.Event,
) -> None:
    """One cook: a member of the "kitchen" group with a consumer of its own (consumers are per thread)."""
    # auto_commit=False: a ticket is spiked (committed) only once it is cooked, so a cook who walks
    # out mid-dish leaves that ticket to the next cook instead of losing it.
    with log.subscribe(topic, group=group, auto_commit=False) as rail:
        while not closing.is_set():
            assigned = rail.assignment()
            with kitchen.lock:
                kitchen.assignments[name] = assigned
            ticket = rail.poll(timeout=0.1)  # take the next ticket when free
            if ticket is None:
                continue
            time.sleep(seconds_per_ticket)  # cooking
            rail.commit(ticket)  # spiked: the group will not hand this ticket out again
            order = ticket.value
            with kitchen.lock:
                kitchen.cooked.setdefault(name, []).append(order["order"])
            say(f"  {name}: cooked order {order['order']:>2} ({order['dish']}, table {order['table']})")


def main(argv: list[str] | None = None) -> int:
    def options(parser: argparse.ArgumentParser) -> None:
        parser.add_argument("--orders", type=int, default=40, help="orders the waiter places (40)")
        parser.add_argument("--fast-ms", type=float, default=10, help="fast cook's time per ticket (10)")
        parser.add_argument("--slow-ms", type=float, default=100, help="slow cook's time per ticket (100)")

    args = parse_args("A waiter publishes orders; two cooks of one group cook them.", argv, options)
    topic, group = unique("orders"), unique("kitchen")

    with open_log(args, value_codec="json") as log:
        log.create_topic(topic, partitions=PARTITIONS)
        kitchen = Kitchen()
        closing = threading.Event()
        cooks = {"Rosa": args.fast_ms / 1000, "Theo": args.slow_ms / 1000}
        threads = [
            threading.Thread(target=cook, args=(log, topic, group, name, pace, kitchen, closing))
            for name, pace in cooks.items()
        ]
        for thread in threads:
            thread.start()

        # Wait until the group has settled: each cook owns partitions, and together they own all.
        everything = {(topic, p) for p in range(PARTITIONS)}
        deadline = time.monotonic() + 30
        while True:
            with kitchen.lock:
                owned = [kitchen.assignments.get(name, set()) for name in cooks]
            if all(owned) and set().union(*owned) == everything and sum(map(len, owned)) == PARTITIONS:
                break
            if time.monotonic() > deadline:
                say(f"FAILED: the kitchen never settled: {owned}")
                closing.set()
                for thread in threads:
                    thread.join()
                return 1
            time.sleep(0.05)
        for name, parts in zip(cooks, owned, strict=True):
            partitions = sorted(p for _, p in parts)
            say(f"{name} ({cooks[name] * 1000:.0f} ms per ticket) works partitions {partitions}")

        # The waiter: clip every order onto the rail and walk away.
        latencies = []
        futures = []
        first_placed = time.perf_counter()
        for n in range(1, args.orders + 1):
            table, dish = n % TABLES + 1, DISHES[n % len(DISHES)]
            order = {"order": n, "table": table, "dish": dish}
            started = time.perf_counter()
            # Keyed by table: one table's orders stay on one partition, in the order they were placed.
            futures.append(log.publish(topic, order, key=f"table-{table}"))
            latencies.append(time.perf_counter() - started)
        placed = time.perf_counter() - first_placed
        say("waiter: how long each publish() took, in microseconds:")
        for row in range(0, len(latencies), 10):
            say("  " + " ".join(f"{latency * 1e6:6.1f}" for latency in latencies[row : row + 10]))
        say(
            f"waiter: {args.orders} orders placed in {placed * 1000:.2f} ms; publish() returned in "
            f"median {statistics.median(latencies) * 1e6:.1f} us, max {max(latencies) * 1e6:.1f} us"
        )
        acked = [future.result(timeout=30) for future in futures]  # the acknowledgements come later
        acked_after = time.perf_counter() - first_placed
        on = sorted({p.partition for p in acked})
        say(
            f"waiter: all {len(acked)} orders acknowledged {acked_after * 1000:.1f} ms after the first "
            f"(on partitions {on}); the kitchen has cooked {kitchen.total()} so far"
        )

        # The pass: watch the group's lag (published but not yet cooked) drain.
        deadline = time.monotonic() + 60 + args.orders * (args.slow_ms / 1000)
        while kitchen.total() < args.orders and time.monotonic() < deadline:
            time.sleep(0.25)
            cooked_so_far = kitchen.total()
            lag = log.lag(group)  # per partition: messages the group has not committed yet
            if len(lag) < PARTITIONS:
                continue  # a partition shows up in lag() once the group has committed on it
            per_partition = " ".join(f"p{p}={lag[(t, p)]}" for t, p in sorted(lag))
            say(f"pass: cooked {cooked_so_far}/{args.orders}, lag {sum(lag.values())} ({per_partition})")
        closing.set()
        for thread in threads:
            thread.join()
        final_lag = sum(log.lag(group).values())

    # Every order cooked, and none twice?
    cooked = [n for orders in kitchen.cooked.values() for n in orders]
    for name in cooks:
        say(f"{name} cooked {len(kitchen.cooked.get(name, []))} tickets")
    missing = sorted(set(range(1, args.orders + 1)) - set(cooked))
    twice = len(cooked) - len(set(cooked))
    say(f"summary: {len(cooked)} tickets cooked for {args.orders} orders, final lag {final_lag}")
    if missing or twice or len(cooked) != args.orders:
        say(f"FAILED: missing orders {missing}, {twice} cooked twice")
        return 1
    say(f"every one of the {args.orders} orders was cooked exactly once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
