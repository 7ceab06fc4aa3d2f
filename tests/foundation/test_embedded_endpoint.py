"""The system group and hot-path instruments, read from the scraped /metrics text."""

from __future__ import annotations

import os
import sys

import psutil
from covet_fixtures import Samples

from covet_otel import instruments
from covet_otel.catalogue import CATALOGUE, SECONDS_BUCKETS

SYSTEM_SDK = sorted(d.name for d in CATALOGUE if d.group == "system" and d.source == "sdk")


def test_system_group_is_served(metrics) -> None:
    samples = metrics.scrape()
    for name in SYSTEM_SDK:
        assert samples.series(name), f"{name} missing from /metrics"
    assert samples.value("covet_system_memory_total_bytes") == psutil.virtual_memory().total
    assert samples.value("covet_disk_total_bytes", path="/") == psutil.disk_usage("/").total
    assert {s["period"] for s in samples.series("covet_system_load_average")} == {"1m", "5m", "15m"}
    assert {s["generation"] for s in samples.series("covet_process_gc_collections_total")} == {"0", "1", "2"}
    rss = samples.value("covet_process_memory_rss_bytes")
    own = psutil.Process(os.getpid()).memory_info().rss
    assert 0.5 * own < rss < 2 * own
    # the scrape itself runs on one more thread (the endpoint's request handler)
    assert samples.value("covet_process_threads") in (
        psutil.Process().num_threads(),
        psutil.Process().num_threads() + 1,
    )
    assert samples.types["covet_process_cpu_seconds"] == "counter"


def test_histogram_uses_second_scale_buckets(metrics) -> None:
    hist = instruments.histogram("covet_db_query_duration_seconds")
    hist.record(0.01, ("main", "SELECT", "success"))
    hist.record(0.3, ("main", "SELECT", "success"))
    samples = metrics.scrape()
    labels = {"pool": "main", "operation": "SELECT", "outcome": "success"}
    assert samples.value("covet_db_query_duration_seconds_count", **labels) == 2
    assert abs(samples.value("covet_db_query_duration_seconds_sum", **labels) - 0.31) < 1e-9
    # 0.01 s lands in the 0.01 bucket (upper-inclusive), not in a millisecond-scale "5" bucket
    assert samples.value("covet_db_query_duration_seconds_bucket", le="0.005", **labels) == 0
    assert samples.value("covet_db_query_duration_seconds_bucket", le="0.01", **labels) == 1
    assert samples.value("covet_db_query_duration_seconds_bucket", le="0.25", **labels) == 1
    assert samples.value("covet_db_query_duration_seconds_bucket", le="0.5", **labels) == 2
    les = {s["le"] for s in samples.series("covet_db_query_duration_seconds_bucket")}
    assert les == {repr(float(b)) for b in SECONDS_BUCKETS} | {"+Inf"}


def test_bounded_labels_fold_into_other(metrics) -> None:
    hist = instruments.histogram("covet_db_query_duration_seconds")
    hist.record(0.001, ("main", "FROBNICATE", "success"))
    samples = metrics.scrape()
    assert (
        samples.value(
            "covet_db_query_duration_seconds_count", pool="main", operation="other", outcome="success"
        )
        == 1
    )


def test_series_cap_folds_new_label_sets(metrics) -> None:
    counter = instruments.counter("covet_http_requests_total")
    existing = set(counter._series)
    saved_cap = counter.max_series
    counter.max_series = len(existing) + 10  # a small cap, so the test stays fast
    try:
        for i in range(60):
            counter.add(1, ("GET", f"/route/{i}", "200"))
        samples = metrics.scrape()
        routes = {s["route"] for s in samples.series("covet_http_requests_total")}
        assert {f"/route/{i}" for i in range(10)} <= routes and "/route/10" not in routes
        assert (
            samples.value("covet_http_requests_total", method="other", route="other", status_code="other")
            == 50
        )
    finally:
        # leave the process-wide instrument as other tests expect it
        counter.max_series = saved_cap
        for key in set(counter._series) - existing:
            del counter._series[key]
        counter._aliases.clear()


def test_samples_helper_rejects_unknown_sample() -> None:
    samples = Samples("# TYPE x gauge\nx 1\n")
    assert samples.value("x") == 1
    try:
        samples.value("x", a="b")
    except KeyError as exc:
        assert "have [{}]" in str(exc)
    else:  # pragma: no cover
        raise AssertionError("expected KeyError")


def test_python_version_supported() -> None:
    assert sys.version_info >= (3, 10)
