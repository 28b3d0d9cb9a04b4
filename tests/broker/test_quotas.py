"""Client byte-rate quotas: Kafka's sampled rate and throttle time, with time passed in."""

from __future__ import annotations

import pytest

from riel.broker.quotas import ClientQuotas, SampledRate, throttle_time_ms
from riel.config import ClientQuota, Limits


def test_a_new_client_is_measured_over_at_least_the_full_window() -> None:
    rate = SampledRate(window_ms=1000, samples=11)
    rate.record(10_000, now_ms=0)
    # One burst at t=0 counts as spread over 10 windows, not over 0 ms.
    assert rate.span_ms(0) == 10_000
    assert rate.rate(0) == pytest.approx(1_000.0)


def test_throttle_is_the_delay_that_brings_the_rate_back_to_the_quota() -> None:
    rate = SampledRate(window_ms=1000, samples=11)
    rate.record(20_000, now_ms=0)  # 2,000 B/s over the 10 s window; quota 1,000 B/s
    throttle = throttle_time_ms(rate, 1_000, now_ms=0)
    assert throttle == 10_000  # (2000 - 1000) / 1000 * 10 s
    # Once the burst has been measured over a window it really spans, the client is back in bounds.
    assert throttle_time_ms(rate, 1_000, 2 * throttle) == 0


def test_under_the_quota_there_is_no_throttle() -> None:
    rate = SampledRate(window_ms=1000, samples=11)
    for t in range(0, 20_000, 100):
        rate.record(90, t)  # 900 B/s
        assert throttle_time_ms(rate, 1_000, t) == 0


def test_old_samples_expire() -> None:
    rate = SampledRate(window_ms=100, samples=3)
    rate.record(1_000_000, 0)
    assert rate.rate(0) > 0
    assert rate.rate(300) == 0.0


def test_throttle_is_capped_at_the_whole_window() -> None:
    rate = SampledRate(window_ms=1000, samples=11)
    rate.record(10**12, 0)
    assert throttle_time_ms(rate, 1, 0) == 11_000


def test_a_client_held_to_its_quota_gets_about_the_quota() -> None:
    """Simulate a client that sends as fast as allowed and obeys every throttle: over a long run its
    throughput converges to the quota."""
    quotas = ClientQuotas(
        Limits(default_quota=ClientQuota(producer_byte_rate=10_000), quota_window_size_ms=100)
    )
    now, sent = 0, 0
    while now < 60_000:
        throttle = quotas.record_produce("p", 5_000, now)
        sent += 5_000
        now += max(throttle, 1)
    assert sent / 60 == pytest.approx(10_000, rel=0.1)


def test_per_client_quotas_override_the_defaults_and_others_are_not_tracked() -> None:
    limits = Limits(
        default_quota=ClientQuota(producer_byte_rate=1_000),
        client_quotas={
            "fast": ClientQuota(producer_byte_rate=10**9),
            "reader": ClientQuota(consumer_byte_rate=5),
        },
    )
    quotas = ClientQuotas(limits)
    assert quotas.enabled
    assert quotas.record_produce("fast", 100_000, 0) == 0
    assert quotas.record_produce("slow", 100_000, 0) > 0
    assert quotas.record_produce("reader", 100_000, 0) > 0  # producer rate falls back to the default
    assert quotas.record_fetch("slow", 10**9, 0) == 0  # no consumer quota: not tracked
    assert quotas.record_fetch("reader", 100, 0) > 0
    assert quotas.max_fetch_bytes("reader") == 5  # one 1 s sample's worth
    assert quotas.max_fetch_bytes("slow") is None
    assert not ClientQuotas(Limits()).enabled


def test_idle_clients_are_forgotten() -> None:
    quotas = ClientQuotas(
        Limits(default_quota=ClientQuota(producer_byte_rate=1_000), quota_window_size_ms=10)
    )
    for i in range(4_096):
        quotas.record_produce(f"client-{i}", 1, i * 100)
    assert quotas.tracked_clients() <= 1_024  # swept now and then, not on every request


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("app:producer=100,consumer=200", ("app", ClientQuota(100, 200))),
        ("app:consumer=5", ("app", ClientQuota(None, 5))),
        ("a:b:producer=7", ("a:b", ClientQuota(7, None))),
        (":producer=7", ("", ClientQuota(7, None))),
    ],
)
def test_quota_specs_parse(spec: str, expected: tuple[str, ClientQuota]) -> None:
    assert ClientQuota.parse(spec) == expected


@pytest.mark.parametrize(
    "spec", ["app", "app:", "app:producer", "app:producer=-1", "app:speed=3", "app:producer=0"]
)
def test_bad_quota_specs_are_refused(spec: str) -> None:
    with pytest.raises(ValueError, match="bad quota"):
        ClientQuota.parse(spec)
