"""Series updates take no lock (per-thread shards, covet_otel/instruments.py): no update is lost
when real threads update one series at once, as under a threaded WSGI server, and collection
while they do sees consistent totals. Read back through the scraped /metrics text too.

CPython 3.11 switches threads only at calls and loop back-edges, none of which falls inside a
shard's `+=`; what keeps updates whole on an interpreter that switches anywhere (free-threaded
builds) is that no two threads share a shard, which the test checks directly."""

from __future__ import annotations

import sys
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterator

import pytest

from covet_otel import instruments

THREADS = 8
UPDATES = 20_000


@pytest.fixture(autouse=True)
def _switch_often() -> Iterator[None]:
    # the interpreter hands the GIL over every microsecond instead of every 5 ms: thousands of
    # thread switches land inside updates, where a read-modify-write shared by threads loses counts
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(saved)


def _run(threads: int, work: Callable[[int], None]) -> None:
    start = threading.Barrier(threads)

    def body(k: int) -> None:
        start.wait()
        work(k)

    workers = [threading.Thread(target=body, args=(k,)) for k in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()


def test_the_harness_catches_lost_updates() -> None:
    """Control: a shared read-modify-write with a thread switch point inside it loses counts under
    this harness, so the exact totals asserted below do mean something."""
    shared = [0]

    def racy(_k: int) -> None:
        for _ in range(2_000):
            value = shared[0]
            time.sleep(0)  # a switch point, as a call inside an update would be
            shared[0] = value + 1

    _run(THREADS, racy)
    assert shared[0] < THREADS * 2_000


@pytest.mark.parametrize("threads", [THREADS, 80], ids=["own-shards", "past-the-shard-cap"])
def test_no_update_is_lost(metrics, threads: int) -> None:
    counter = instruments.counter("covet_http_requests_total").series(("GET", "/threads", "200"))
    in_flight = instruments.updowncounter("covet_http_requests_in_flight").series(("GET",))
    histogram = instruments.histogram("covet_http_request_duration_seconds").series(
        ("GET", "/threads", "200")
    )
    per_thread = UPDATES if threads == THREADS else 2_000
    values = (0.25, 0.5, 2.0, 40.0)  # exact in binary: the sum is exact whatever the order
    collected: list[int] = []
    stop = threading.Event()

    def collect() -> None:  # a scrape's reads, all along
        while not stop.is_set():
            collected.append(histogram.snapshot()[1])
            _ = counter.value + in_flight.value

    reader = threading.Thread(target=collect)
    reader.start()

    def work(k: int) -> None:
        for i in range(per_thread):
            counter.add(1)
            in_flight.add(1)
            histogram.record(values[(i + k) % 4])
            in_flight.add(-1)

    try:
        _run(threads, work)
    finally:
        stop.set()
        reader.join()
    total = threads * per_thread
    assert counter.value == total
    assert in_flight.value == 0
    counts, count, total_sum, low, high = histogram.snapshot()
    assert count == total
    assert total_sum == sum(values) * total / 4
    assert (low, high) == (0.25, 40.0)
    expected = [0] * (len(histogram.bounds) + 1)
    for value in values:
        expected[bisect_left(histogram.bounds, value)] += total // 4
    assert counts == expected and len([n for n in counts if n]) == 4
    # each thread wrote its own shard, up to the cap; the rest shared the locked overflow shard
    assert len(histogram._shards) == min(threads, instruments._MAX_SHARDS)
    assert (histogram._overflow is not None) == (threads > instruments._MAX_SHARDS)
    # reads during the run never went backwards or past the end
    assert collected == sorted(collected) and collected[-1] <= total
    # and the endpoint serves the same totals
    samples = metrics.scrape()
    labels = {"method": "GET", "route": "/threads", "status_code": "200"}
    assert samples.value("covet_http_requests_total", **labels) == total
    assert samples.value("covet_http_request_duration_seconds_count", **labels) == total
    assert samples.value("covet_http_request_duration_seconds_bucket", le="+Inf", **labels) == total
    assert samples.value("covet_http_requests_in_flight", method="GET") == 0
