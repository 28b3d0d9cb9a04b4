"""Review tests for the embedded SDK (riel.open): concurrency, groups, positions, close, backpressure.

Tests named ``test_regression_*`` reproduce defects found in review (their docstrings describe the bug
they guard against; all are fixed); the others pin down behaviour that was verified to be correct.
Every wait is bounded; threads are daemons and record their own exceptions (so nothing leaks into
pytest's unhandled-thread-exception check), and a log whose writer thread would be deadlocked by a
regression is abandoned rather than closed (close would join it).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import random
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

import riel
from riel.client.embedded import EmbeddedLog
from riel.errors import PublishError, RielError, StorageError

pytestmark = pytest.mark.timeout(30)


# ----------------------------------------------------------------------------------------- helpers


@pytest.fixture
def log(tmp_path: Path) -> Iterator[EmbeddedLog]:
    opened = riel.open(tmp_path / "data", flush_policy="os")
    assert isinstance(opened, EmbeddedLog)
    yield opened
    opened.close()


def open_log(path: Path, **settings: Any) -> EmbeddedLog:
    opened = riel.open(path, **settings)
    assert isinstance(opened, EmbeddedLog)
    return opened


def start(target: Callable[[], object], errors: list[BaseException]) -> threading.Thread:
    """A daemon thread that records (instead of raising) its exception."""

    def run() -> None:
        try:
            target()
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def drain(consumer: riel.Consumer, idle: float = 0.3) -> list[riel.Message]:
    return list(consumer.messages(idle_timeout=idle))


# ============================================================================ bugs: data loss / hangs


@pytest.mark.parametrize("auto_commit", [False, True])
def test_regression_committed_offsets_of_a_deleted_topic_skip_messages_of_its_successor(
    log: EmbeddedLog, auto_commit: bool
) -> None:
    """delete_topic leaves the group's committed offsets behind; a recreated topic of the same name is
    then read from the old offset, silently skipping its first messages."""
    log.publish_many("t", [b"old"] * 100).result(5)
    consumer = log.subscribe("t", group="g", auto_commit=auto_commit)
    assert len(drain(consumer)) == 100
    consumer.commit()
    consumer.close()
    log.delete_topic("t")
    log.publish_many("t", [f"new-{i}".encode() for i in range(150)]).result(5)  # auto-created again
    got = drain(log.subscribe("t", group="g"))
    assert [m.value for m in got[:1]] == [b"new-0"]
    assert len(got) == 150


@pytest.mark.parametrize("group", [None, "g"])
def test_regression_live_consumer_keeps_its_old_position_in_a_recreated_topic(
    log: EmbeddedLog, group: str | None
) -> None:
    """A consumer that does not poll between delete_topic and the re-creation keeps its partition and
    position, and reads the new topic from the old offset."""
    log.publish_many("t", [b"old"] * 100).result(5)
    consumer = log.subscribe("t", group=group, auto_commit=False)
    assert len(drain(consumer)) == 100
    log.delete_topic("t")
    log.create_topic("t")
    log.publish_many("t", [f"new-{i}".encode() for i in range(150)]).result(5)
    got = drain(consumer)
    assert len(got) == 150 and got[0].value == b"new-0"


def test_regression_concurrent_close_fails_queued_messages_as_deleted(tmp_path: Path) -> None:
    """close() is documented idempotent, but a second close() returns from Writer.close() at once (it
    only sees _stopping) and closes the storage while the writer still drains: queued messages fail
    with 't-0 was deleted before the message was written'."""
    log = open_log(tmp_path / "d", linger_ms=1, batch_bytes=4096)
    futures = [log.publish("t", b"x" * 1000) for _ in range(10_000)]
    errors: list[BaseException] = []
    closers = [start(log.close, errors) for _ in range(2)]
    for thread in closers:
        thread.join(20)
    failed = []
    for future in futures:
        exc = future.exception(5)
        if exc is not None:
            failed.append(exc)
    assert not errors
    assert failed == [], f"{len(failed)} acknowledged-later messages failed, e.g. {failed[0]}"


def test_regression_publisher_blocked_on_full_buffer_during_close_gets_a_future_that_never_resolves(
    tmp_path: Path,
) -> None:
    """Writer.add waits for buffer space with ``while ... and not self._stopping`` and then appends to a
    new batch without re-checking _stopping. If the writer thread has already taken its last batch, that
    message is never written and its future (and any flush()) waits forever. Racy: tried for ~3 s."""
    deadline = time.monotonic() + 3
    trial = 0
    while time.monotonic() < deadline:
        trial += 1
        log = open_log(
            tmp_path / f"f{trial}", flush_policy="os", buffer_bytes=10_000, linger_ms=0, batch_bytes=2000
        )
        futures: list[Any] = []
        stop = threading.Event()
        errors: list[BaseException] = []

        def publish(
            log: EmbeddedLog = log, futures: list[Any] = futures, stop: threading.Event = stop
        ) -> None:
            while not stop.is_set():
                futures.append(log.publish("t", b"x" * 500))

        publishers = [start(publish, errors) for _ in range(4)]
        time.sleep(0.03)
        log.close()
        stop.set()
        for thread in publishers:
            thread.join(5)
        assert all(isinstance(e, RuntimeError) for e in errors), errors
        for future in futures:
            try:
                future.result(0.5)
            except TimeoutError:
                pytest.fail(f"trial {trial}: a future published during close() never resolved")


def test_regression_callback_publishing_under_backpressure_deadlocks_the_writer(
    tmp_path: Path,
) -> None:
    """Callbacks run on the writer thread; one that publishes while the buffer is full blocks the writer
    on itself, and the whole log stops (every publisher, flush and future waits forever). The same holds
    for flush() or a later future's result() inside a callback."""
    log = open_log(tmp_path / "d", flush_policy="os", buffer_bytes=2000, linger_ms=0, batch_bytes=500)
    callback_errors: list[BaseException] = []

    def callback(_: object) -> None:
        try:
            log.publish("side", b"y" * 400)
        except RielError as exc:  # a fix may refuse to block here: that is fine
            callback_errors.append(exc)
        except RuntimeError as exc:
            callback_errors.append(exc)

    done = threading.Event()
    errors: list[BaseException] = []

    def publish() -> None:
        for _ in range(200):
            log.publish("t", b"x" * 400).add_done_callback(callback)
        done.set()

    start(publish, errors)
    if not done.wait(5):
        # The writer is deadlocked: the log is abandoned (close() would join the writer forever).
        pytest.fail("the writer thread deadlocked inside a done-callback")
    log.flush(5)
    log.close()


def test_regression_publisher_waits_for_linger_when_the_buffer_is_full(tmp_path: Path) -> None:
    """With the buffer full of messages in open (unsealed) batches, publish() blocks until linger_ms
    passes: the writer is not told to drain (Kafka's accumulator treats 'exhausted' as ready)."""
    log = open_log(
        tmp_path / "d", flush_policy="os", linger_ms=10_000, buffer_bytes=1000, batch_bytes=100_000
    )
    done = threading.Event()
    errors: list[BaseException] = []

    def publish() -> None:
        for _ in range(30):
            log.publish("t", b"x" * 100)
        done.set()

    start(publish, errors)
    try:
        assert done.wait(2), "publish() stalled for linger_ms with a full buffer"
    finally:
        log.close()  # seals everything; the blocked publisher then gets RuntimeError (recorded)


def test_regression_batch_of_valid_messages_exceeds_max_message_bytes(
    log: EmbeddedLog,
) -> None:
    """publish() checks each message against max.message.bytes, but the writer packs up to batch_bytes
    (256 KiB) into one record batch, which the log rejects whole: every message fails MESSAGE_TOO_LARGE."""
    log.create_topic("small", config={"max.message.bytes": "2000"})
    futures = [log.publish("small", b"x" * 100) for _ in range(50)]
    errors = [f.exception(5) for f in futures]
    assert errors == [None] * 50, errors[0]
    many = log.publish_many("small", [b"y" * 100] * 50)
    assert many.exception(5) is None


def test_regression_one_bad_timestamp_fails_every_message_of_its_batch(tmp_path: Path) -> None:
    """A timestamp outside int64 is accepted by publish() and only fails when the writer encodes the
    batch, taking down other (unrelated, valid) messages that share the batch."""
    log = open_log(tmp_path / "d", flush_policy="os", linger_ms=300)
    try:
        good = log.publish("t", b"good")
        try:
            bad = log.publish("t", b"bad", timestamp=2**70)
        except (ValueError, RielError, OverflowError):
            bad = None  # rejecting it up front is a fine fix
        assert good.exception(5) is None
        if bad is not None:
            assert bad.exception(5) is not None
    finally:
        log.close()


def test_regression_writer_thread_dies_on_a_storage_error_in_periodic_work(tmp_path: Path) -> None:
    """Writer._run calls EmbeddedLog.tick() unguarded; a StorageError there (an offsets-journal fsync
    failure) kills the writer thread, after which every future hangs and flush(None) never returns."""
    log = open_log(tmp_path / "d", flush_policy="os")
    failures = [0]

    def failing_flush_if_due(now_ms: int) -> None:
        if failures[0] == 0:
            failures[0] += 1
            raise StorageError("fsync of group offsets failed: injected")

    log._offsets.flush_if_due = failing_flush_if_due  # type: ignore[method-assign]
    hook_errors: list[BaseException] = []
    previous_hook = threading.excepthook
    threading.excepthook = lambda args: hook_errors.append(args.exc_value)  # type: ignore[assignment]
    try:
        deadline = time.monotonic() + 2
        while failures[0] == 0 and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.1)
        future = log.publish("t", b"after the error")
        try:
            outcome: object = future.result(2)
        except TimeoutError:
            outcome = "never acknowledged"
        except RielError as exc:
            outcome = exc  # failing the future is acceptable; hanging is not
        assert outcome != "never acknowledged", f"writer thread died: {hook_errors}"
    finally:
        threading.excepthook = previous_hook
        log.close()


def test_regression_cancelled_async_poll_loses_a_message(tmp_path: Path) -> None:
    """AsyncConsumer.poll runs the blocking poll in a worker thread; cancelling the await (wait_for,
    asyncio.timeout, task cancel) leaves the thread running, and the message it then takes is dropped
    while the consumer's position (and auto-commit) moves past it."""

    async def main() -> tuple[riel.Message | None, dict[Any, int]]:
        async with riel.open_async(str(tmp_path / "a"), flush_policy="os") as alog:
            consumer = alog.subscribe("t", group="g")
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(consumer.poll(2), 0.2)
            await alog.publish("t", b"important")
            await asyncio.sleep(0.5)
            got = await consumer.poll(1)
            await consumer.close()
            return got, await alog.lag("g")

    got, lag = asyncio.run(main())
    assert got is not None and got.value == b"important", f"lost; committed lag is {lag}"


# =============================================================== bugs: groups, positions, semantics


def test_regression_poll_after_close_still_returns_buffered_messages(log: EmbeddedLog) -> None:
    """close() commits the position and leaves the group, but poll()'s fast path keeps handing out up to
    499 buffered messages: past the committed offset, while another member may own the partition."""
    log.publish_many("t", [f"m{i}".encode() for i in range(10)]).result(5)
    consumer = log.subscribe("t", group="g")
    first = consumer.poll(2)
    assert first is not None and first.offset == 0
    consumer.close()
    assert consumer.poll(0) is None


def test_regression_revoked_partition_stays_paused_when_it_comes_back(log: EmbeddedLog) -> None:
    """The paused set is not cleared when a rebalance revokes a partition: paused() reports partitions
    the consumer does not own, and when the partition is assigned again it is silently never read."""
    log.create_topic("t", partitions=2)
    first = log.subscribe("t", group="g", auto_commit=False)
    first.pause([("t", 1)])
    second = log.subscribe("t", group="g", auto_commit=False)
    first.poll(0)  # gives ("t", 1) up
    assert second.assignment() == {("t", 1)}
    paused_while_not_owned = first.paused()
    second.close()
    assert first.assignment() == {("t", 0), ("t", 1)}
    log.publish("t", b"p1", partition=1).result(5)
    message = first.poll(2)
    assert message is not None and message.value == b"p1", "reassigned t-1 is silently never read"
    assert paused_while_not_owned == set()


def test_regression_member_that_lost_its_partition_commits_over_the_new_owner(
    tmp_path: Path,
) -> None:
    """commit() does not check that the consumer still owns the partition (Kafka fences by generation:
    CommitFailedException). An evicted member's late commit rewinds the new owner's committed offset."""
    with open_log(tmp_path / "d", flush_policy="os", max_poll_interval_ms=200) as log:
        log.publish_many("t", [str(i).encode() for i in range(20)]).result(5)
        zombie = log.subscribe("t", group="g", auto_commit=False)
        stale = zombie.poll(2)
        assert stale is not None and stale.offset == 0
        owner = log.subscribe("t", group="g", auto_commit=False)
        time.sleep(0.35)  # the first member stops polling past max_poll_interval_ms
        assert owner.assignment() == {("t", 0)}
        assert len(drain(owner, 0.2)) == 20
        owner.commit()
        assert owner.committed() == {("t", 0): 20}
        with contextlib.suppress(RielError):  # refusing the commit is the fix
            zombie.commit(stale)
        assert owner.committed() == {("t", 0): 20}


def test_regression_evicted_member_hands_out_buffered_messages_of_a_partition_it_lost(tmp_path: Path) -> None:
    """After eviction, poll()'s fast path returns messages from the buffer of a partition that another
    member already re-reads from the committed offset: the same messages are processed twice at once."""
    with open_log(tmp_path / "d", flush_policy="os", max_poll_interval_ms=200) as log:
        log.publish_many("t", [str(i).encode() for i in range(20)]).result(5)
        evicted = log.subscribe("t", group="g", auto_commit=False)
        first = evicted.poll(2)
        assert first is not None
        evicted.commit(first)
        owner = log.subscribe("t", group="g", auto_commit=False)
        time.sleep(0.35)
        taken_over = drain(owner, 0.2)
        assert [m.offset for m in taken_over] == list(range(1, 20))  # from the committed offset: correct
        late = evicted.poll(0)
        assert late is None, f"evicted member returned offset {late.offset} owned by another member"


def test_regression_member_polling_every_few_ms_is_evicted_as_silent(tmp_path: Path) -> None:
    """Liveness (last_poll_ms) is refreshed only by housekeeping, i.e. every 500 messages on the fast
    path. A member that polls every ~2 ms is evicted with max_poll_interval_ms=300 and its partition is
    read again by another member concurrently."""
    with open_log(tmp_path / "d", flush_policy="os", max_poll_interval_ms=300) as log:
        log.create_topic("t", partitions=2)
        log.publish_many("t", [str(i).encode() for i in range(600)], partition=0).result(5)
        slow = log.subscribe("t", group="g")
        other = log.subscribe("t", group="g")
        slow.poll(0)
        assert slow.assignment() == {("t", 0)} and other.assignment() == {("t", 1)}
        other_offsets: list[int] = []
        stop = threading.Event()
        errors: list[BaseException] = []

        def run_other() -> None:
            while not stop.is_set():
                message = other.poll(0.05)
                if message is not None:
                    other_offsets.append(message.offset)

        thread = start(run_other, errors)
        slow_offsets: list[int] = []
        deadline = time.monotonic() + 1.5
        while time.monotonic() < deadline:
            message = slow.poll(0.05)
            if message is not None:
                slow_offsets.append(message.offset)
            time.sleep(0.002)
        stop.set()
        thread.join(5)
        assert not errors
        both = set(slow_offsets) & set(other_offsets)
        assert not both, f"{len(both)} messages of t-0 went to both members"


def test_regression_delete_topic_fails_with_an_unrelated_publish_error(tmp_path: Path) -> None:
    """delete_topic starts with Writer.flush(), which raises PublishError for any failed pending batch
    (of any topic, published by any thread): the delete is then not done and the error names another
    topic's message."""
    log = open_log(tmp_path / "d", flush_policy="os", linger_ms=1000)
    try:
        log.create_topic("doomed")
        with contextlib.suppress(ValueError, RielError, OverflowError):
            log.publish("other", b"bad", timestamp=2**70)  # fails in the writer (see above)
        log.delete_topic("doomed")
        assert "doomed" not in log.list_topics()
    finally:
        log.close()


def test_regression_replay_after_close_raises_assertion_error(tmp_path: Path) -> None:
    log = open_log(tmp_path / "d", flush_policy="os")
    log.publish("t", b"x").result(5)
    log.close()
    with pytest.raises(RuntimeError, match="closed"):
        list(log.replay("t"))


# ============================================================================ verified: correct today


@pytest.mark.parametrize("mode", ["manual", "auto"])
def test_group_churn_with_many_publishers_loses_nothing(tmp_path: Path, mode: str) -> None:
    """3 publisher threads and 3 consumer threads whose members join and leave repeatedly. With a commit
    after each message: exactly once. With auto-commit: at least once (in practice once)."""
    with open_log(tmp_path / "d", flush_policy="os", linger_ms=1) as log:
        log.create_topic("w", partitions=6)
        seen: collections.Counter[bytes] = collections.Counter()
        lock = threading.Lock()
        errors: list[BaseException] = []

        def publisher(k: int) -> None:
            futures = [log.publish("w", f"{k}-{i}".encode()) for i in range(1500)]
            for future in futures:
                future.result(10)

        def churner(seed: int) -> None:
            rnd = random.Random(seed)
            for _ in range(5):
                consumer = log.subscribe("w", group="g", auto_commit=mode == "auto")
                until = time.monotonic() + rnd.uniform(0.05, 0.25)
                while time.monotonic() < until:
                    message = consumer.poll(0.05)
                    if message is None:
                        continue
                    with lock:
                        seen[message.value] += 1
                    if mode == "manual":
                        consumer.commit(message)
                consumer.close()

        threads = [start(lambda k=k: publisher(k), errors) for k in range(3)]
        threads += [start(lambda s=s: churner(s), errors) for s in range(3)]
        for thread in threads:
            thread.join(20)
        assert not errors and not any(t.is_alive() for t in threads)
        for message in drain(log.subscribe("w", group="g", auto_commit=False), 0.5):
            seen[message.value] += 1
        expected = {f"{k}-{i}".encode() for k in range(3) for i in range(1500)}
        assert set(seen) == expected
        if mode == "manual":
            assert max(seen.values()) == 1


def test_position_and_commit_after_seek_and_pause(log: EmbeddedLog) -> None:
    log.create_topic("t", partitions=2)
    log.publish_many("t", [f"a{i}".encode() for i in range(10)], partition=0).result(5)
    log.publish_many("t", [f"b{i}".encode() for i in range(10)], partition=1).result(5)
    consumer = log.subscribe("t", group="g", auto_commit=False)
    got = [consumer.poll(2) for _ in range(3)]
    assert all(m is not None for m in got)
    tp = (got[0].topic, got[0].partition)  # type: ignore[union-attr]
    assert consumer.position(*tp) == 3
    consumer.pause([tp])
    assert consumer.position(*tp) == 3  # buffered messages dropped, position kept
    rest = drain(consumer, 0.2)
    assert {(m.topic, m.partition) for m in rest} == {("t", 1 - tp[1])}
    consumer.resume([tp])
    resumed = drain(consumer, 0.2)
    assert [m.offset for m in resumed] == list(range(3, 10))  # no gap, no repeat
    consumer.seek(tp[0], tp[1], 7)
    assert consumer.position(*tp) == 7
    consumer.commit()
    assert consumer.committed([tp]) == {tp: 7}
    assert [m.offset for m in drain(consumer, 0.2)] == [7, 8, 9]
    consumer.seek_to_beginning([tp])
    assert consumer.position(*tp) == 0
    consumer.seek_to_end()
    assert consumer.position("t", 0) == 10 and consumer.position("t", 1) == 10
    consumer.close()


def test_new_member_starts_from_committed_offsets_after_rebalance(log: EmbeddedLog) -> None:
    log.create_topic("t", partitions=2)
    log.publish_many("t", [b"x"] * 10, partition=1).result(5)
    first = log.subscribe("t", group="g", auto_commit=False)
    messages = [m for m in drain(first, 0.2) if m.partition == 1]
    first.commit(messages[3])
    second = log.subscribe("t", group="g", auto_commit=False)
    first.poll(0)  # releases ("t", 1) without committing more
    assert second.assignment() == {("t", 1)}
    assert second.position("t", 1) == 4
    assert [m.offset for m in drain(second, 0.2)] == list(range(4, 10))


def test_silent_member_is_evicted_and_others_resume_from_its_commit(tmp_path: Path) -> None:
    with open_log(tmp_path / "d", flush_policy="os", max_poll_interval_ms=200) as log:
        log.publish_many("t", [str(i).encode() for i in range(20)]).result(5)
        silent = log.subscribe("t", group="g", auto_commit=False)
        for _ in range(5):
            last = silent.poll(2)
        assert last is not None
        silent.commit(last)
        other = log.subscribe("t", group="g", auto_commit=False)
        assert other.assignment() == set()
        time.sleep(0.35)
        assert other.assignment() == {("t", 0)}
        assert [m.offset for m in drain(other, 0.2)] == list(range(5, 20))


def test_auto_created_topic_partitions_are_split_in_a_group(tmp_path: Path) -> None:
    with open_log(tmp_path / "d", flush_policy="os", default_partitions=3) as log:
        first = log.subscribe("auto", group="g")
        second = log.subscribe("auto", group="g")
        first.poll(0)
        assert first.assignment() | second.assignment() == {("auto", p) for p in range(3)}
        assert not first.assignment() & second.assignment()
        for i in range(30):
            log.publish("auto", str(i).encode(), key=str(i))
        log.flush(5)
        values = [m.value for m in drain(first, 0.2)] + [m.value for m in drain(second, 0.2)]
        assert sorted(values, key=int) == [str(i).encode() for i in range(30)]


def test_close_wakes_consumers_blocked_in_poll_in_other_threads(tmp_path: Path) -> None:
    log = open_log(tmp_path / "d", flush_policy="os")
    log.create_topic("t", partitions=4)
    consumers = [log.subscribe("t", group="g") for _ in range(3)] + [log.subscribe("t")]
    results: list[object] = []
    errors: list[BaseException] = []

    def wait_forever(consumer: riel.Consumer) -> None:
        while True:
            message = consumer.poll(None)
            if message is None:
                results.append(None)
                return

    threads = [start(lambda c=c: wait_forever(c), errors) for c in consumers]
    time.sleep(0.1)
    started = time.monotonic()
    log.close()
    for thread in threads:
        thread.join(5)
    assert not errors and results == [None] * 4
    assert time.monotonic() - started < 3
    with pytest.raises(RuntimeError, match="closed"):
        log.publish("t", b"after close")  # an existing topic: the writer refuses


def test_flush_timeout_and_futures(tmp_path: Path) -> None:
    with open_log(tmp_path / "d", flush_policy="os", linger_ms=2000) as log:
        log.create_topic("t")
        future = log.publish("t", b"a")
        many = log.publish_many("t", [b"b", b"c"])
        assert not future.done()
        with pytest.raises(TimeoutError):
            future.result(0.05)
        calls: list[object] = []
        future.add_done_callback(calls.append)
        many.add_done_callback(calls.append)
        log.flush(5)  # does not wait for linger
        assert future.done() and many.done()
        deadline = time.monotonic() + 2
        while len(calls) < 2 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert calls == [future, many]
        assert future.result(0).offset == 0 and [p.offset for p in many.result(0)] == [1, 2]
        log.flush(0)  # nothing pending: no TimeoutError
        log.publish("t", b"d")
        with pytest.raises(TimeoutError):
            log.flush(0)


def test_backpressure_blocks_publishers_without_deadlock(tmp_path: Path) -> None:
    with open_log(
        tmp_path / "d", flush_policy="always", buffer_bytes=20_000, linger_ms=2, batch_bytes=4000
    ) as log:
        log.create_topic("t", partitions=3)
        errors: list[BaseException] = []
        futures: list[Any] = []

        def publish(k: int) -> None:
            for i in range(400):
                futures.append(log.publish("t", f"{k}-{i}".encode() * 20))
            futures.append(log.publish_many("t", [b"z" * 300] * 200))

        threads = [start(lambda k=k: publish(k), errors) for k in range(4)]
        for thread in threads:
            thread.join(20)
        assert not errors and not any(t.is_alive() for t in threads)
        log.flush(10)
        assert all(f.exception(0) is None for f in futures)
        assert log._writer._buffered == 0


def test_replay_edge_cases(log: EmbeddedLog) -> None:
    log.create_topic("r", partitions=3)  # partition 2 stays empty
    for i in range(6):
        log.publish("r", str(i).encode(), partition=i % 2, timestamp=1_000_000 + i * 10).result(5)
    assert len(list(log.replay("r"))) == 6
    assert list(log.replay("r", since=100)) == []  # since beyond the end
    assert list(log.replay("r", since=2, until=1)) == []  # until before since
    assert list(log.replay("r", until=0)) == []
    future = datetime.now(tz=UTC) + timedelta(days=1)
    assert list(log.replay("r", since=future)) == []
    since = datetime.fromtimestamp(1_000_020 / 1000, tz=UTC)
    until = datetime.fromtimestamp(1_000_040 / 1000, tz=UTC)
    assert [m.value for m in log.replay("r", since=since, until=until)] == [b"2", b"3"]
    assert [m.value for m in log.replay("r", since=until, until=since)] == []
    assert [m.value for m in log.replay("r", since=since, until=2)] == [b"2", b"3"]
    log.create_topic("empty", partitions=2)
    assert list(log.replay("empty")) == []


def test_log_append_time_topics_report_the_logs_time(log: EmbeddedLog) -> None:
    log.create_topic("lat", config={"message.timestamp.type": "LogAppendTime"})
    before = int(time.time() * 1000)
    published = log.publish("lat", b"a", timestamp=1000).result(5)
    many = log.publish_many("lat", [b"b", b"c"]).result(5)
    after = int(time.time() * 1000)
    assert before <= published.timestamp <= after
    consumed = drain(log.subscribe("lat"), 0.2)
    assert [m.timestamp for m in consumed] == [published.timestamp] + [p.timestamp for p in many]
    assert [m.timestamp for m in log.replay("lat")] == [m.timestamp for m in consumed]


def test_interval_policy_fsyncs_on_time_and_os_policy_does_not(tmp_path: Path) -> None:
    with open_log(tmp_path / "i", flush_policy="interval:1000000:100") as log:
        log.publish("t", b"x").result(5)
        plog = log.partition("t", 0)
        assert plog is not None
        deadline = time.monotonic() + 2
        while plog.recovery_point < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert plog.recovery_point == 1
    with open_log(tmp_path / "o", flush_policy="os") as log:
        log.publish("t", b"x").result(5)
        time.sleep(0.4)
        plog = log.partition("t", 0)
        assert plog is not None and plog.recovery_point == 0 and plog.high_watermark == 1


def test_async_publish_bridges_results_and_errors(tmp_path: Path) -> None:
    async def main() -> None:
        async with riel.open_async(str(tmp_path / "a"), flush_policy="os") as alog:
            await alog.create_topic("small", config={"max.message.bytes": "2000"})
            published = await alog.publish("small", b"x")
            assert published.offset == 0
            with pytest.raises(PublishError):
                alog.publish("small", b"x" * 5000)
            many = await alog.publish_many("t", [b"1", b"2"])
            assert [p.offset for p in many] == [0, 1]

    asyncio.run(main())
