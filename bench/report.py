"""The bench's report: each figure beside its target (issue 11) and MET or MISSED, with the load
average the machine had when the figure's phase began, so that a noisy run shows as noisy."""

import os
import time

from bench import streams
from bench.delivery import Drain, Lag
from bench.webhooks import IngestFigures
from bench.wrk import WrkResult

_STARTED = time.monotonic()

# Targets of issue 11.
INGEST_VS_NAIVE = 2.0
DRAIN_MIN_RATE = 2000.0
DRAIN_VS_NAIVE = 1.0
LAG_P99_MS = {200: 250.0, 1000: 1000.0}
# Reads: (least share of the bare endpoint's req/s, greatest p99 ms or None).
READ_TARGETS = {
    "GET /v1/plans": (0.6, 30.0),
    "GET /v1/customer (customer cache on)": (0.5, 50.0),
    "GET /v1/customer (cache off: gRPC+Postgres)": (0.15, None),
}
BARE = "bare FastAPI GET (ceiling)"
RATE_LIMITER_OFF = "limiter off"
# A figure by name: the wrk result and the load average when its phase began.
Figures = dict[str, tuple[WrkResult, str]]
# Issue 13: a change reaches the app within one second.
STREAM_ARRIVAL_P99_MS = 1000.0


def load_average() -> str:
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def phase(name: str) -> str:
    """Announce a phase with the machine's load average; return that load average."""
    load = load_average()
    elapsed = time.monotonic() - _STARTED
    print(f"-- {name} (load average {load}; at {elapsed:.0f} s)", flush=True)
    return load


def verdict(met: bool) -> str:
    return "MET" if met else "MISSED"


def print_reads(results: dict[str, tuple[WrkResult, str]], header: str) -> None:
    bare = results[BARE][0].requests_per_second
    print(f"\n{header}")
    print(
        f"{'path':44} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs bare':>8} {'errors':>7} "
        f"{'load':>15}  target"
    )
    for name, (r, load) in results.items():
        share = r.requests_per_second / bare
        line = (
            f"{name:44} {r.requests_per_second:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
            f"{share:8.2f} {r.non_2xx + r.errors:7d} {load:>15}"
        )
        if name in READ_TARGETS:
            least, p99 = READ_TARGETS[name]
            met = share >= least and (p99 is None or r.p99_ms < p99)
            target = f">= {least} of bare" + ("" if p99 is None else f", p99 < {p99:.0f} ms")
            line += f"  {target}: {verdict(met)}"
        print(line)


def print_ingest(w: IngestFigures, load: str, header: str) -> None:
    naive = w.naive.requests_per_second
    print(f"\n{header} (load average {load})")
    print(
        f"{'what':44} {'events/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'vs naive':>8} {'stored':>7} "
        f"{'errors':>7}  target"
    )
    print(f"{'Postgres single-row INSERT, 1 conn (ceiling)':44} {w.ceiling:9.0f}")
    for name, r, rows in (
        ("naive handler (verify + 1 INSERT/request)", w.naive, w.naive_rows),
        ("receiver (group commit)", w.receiver, w.receiver_rows),
    ):
        ratio = r.requests_per_second / naive
        line = (
            f"{name:44} {r.requests_per_second:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
            f"{ratio:8.2f} {rows:7d} {r.non_2xx + r.errors:7d}"
        )
        if r is w.receiver:
            line += f"  >= {INGEST_VS_NAIVE}x naive: {verdict(ratio >= INGEST_VS_NAIVE)}"
        print(line)


def print_lag(lag: Lag, processes: int, load: str) -> None:
    o = lag.outcomes
    delivered = sum(n for name, n in o.counts.items() if name not in ("pending", "dead"))
    # The line's format is read by other tools: A is the events billing answered, B those sent.
    print(
        f"receive-to-applied lag at {lag.rate} events/s: p50 {lag.p50_ms:.1f} ms, "
        f"p99 {lag.p99_ms:.1f} ms ({delivered}/{o.total} applied)"
        f"  target p99 < {LAG_P99_MS[lag.rate]:.0f} ms: {verdict(lag.p99_ms < LAG_P99_MS[lag.rate] and delivered == o.total)}"
    )
    kept_up = lag.sent.issue_rate >= 0.98 * lag.rate
    print(
        f"    billing processes {processes}; load average {load}; sender issued "
        f"{lag.sent.issue_rate:.0f}/s ({'kept up' if kept_up else 'FELL BEHIND'}), last answer "
        f"after {lag.sent.seconds:.1f} s, {lag.sent.failed} not taken by the receiver; "
        f"billing's answers: {o.describe()}"
    )


def print_drain(drain: Drain, processes: int, load: str, naive: float) -> None:
    o = drain.outcomes
    least = max(DRAIN_MIN_RATE, DRAIN_VS_NAIVE * naive)
    met = drain.complete and drain.rate >= least
    print(
        f"relay draining a backlog of {drain.events} events: {drain.rate:.0f} events/s"
        f"  target >= {DRAIN_MIN_RATE:.0f}/s and >= {DRAIN_VS_NAIVE}x naive ingest "
        f"({naive:.0f}/s): {verdict(met)}"
    )
    left = (
        ""
        if drain.complete
        else f"; INCOMPLETE: {o.counts['pending']} still pending, "
        f"{drain.failed_posts} not taken by the receiver"
    )
    per_process = ", ".join(f"{ms:.2f}" for ms in drain.billing_cpu_ms)
    print(
        f"    billing processes {processes}; load average {load}; CPU per event: billing "
        f"{sum(drain.billing_cpu_ms):.2f} ms ({per_process} by process), relay "
        f"{drain.relay_cpu_ms:.2f} ms; billing's answers: {o.describe()}{left}"
    )


def print_rate_limits(figures: Figures, header: str) -> None:
    off = figures[RATE_LIMITER_OFF][0]
    print(f"\n{header}")
    print(
        f"{'GET /v1/customer (cached)':34} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'vs off':>7} {'µs/request':>11} {'errors':>7} {'load':>15}"
    )
    for name, (r, load) in figures.items():
        cost = (1 / r.requests_per_second - 1 / off.requests_per_second) * 1e6
        print(
            f"{name:34} {r.requests_per_second:9.0f} {r.p50_ms:8.2f} {r.p99_ms:8.2f} "
            f"{r.requests_per_second / off.requests_per_second:7.2f} "
            f"{'' if r is off else f'{cost:+.0f}':>11} {r.non_2xx + r.errors:7d} {load:>15}"
        )


def print_streams(figures: streams.StreamFigures, load: str) -> None:
    lines = streams.describe(figures)
    arrival = figures.arrival_ms
    met = (
        len(arrival) == figures.expected_arrivals
        and streams.percentile(arrival, 0.99) < STREAM_ARRIVAL_P99_MS
    )
    print(f"\nbilling streams (GET /v1/billing/stream), one gateway process (load average {load})")
    print(f"  {lines[0]}")
    print(f"  {lines[1]}  target p99 < {STREAM_ARRIVAL_P99_MS:.0f} ms, all arrived: {verdict(met)}")
    for line in lines[2:]:
        print(f"  {line}")
