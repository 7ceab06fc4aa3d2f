"""`opentelemetry-instrument python app.py`: every database metric at the embedded /metrics, with
no code change in the app, and the upstream span instrumentor loaded beside ours."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from covet_otel.catalogue import CATALOGUE

APP = Path(__file__).with_name("asyncpg_app.py")


def database_metrics() -> list:
    return [
        d for d in CATALOGUE
        if d.source == "sdk" and (d.group == "database" or d.name == "covet_db_pool_health_status")
    ]  # fmt: skip


def test_asyncpg_app_under_the_launcher_shows_every_database_metric(instrumented_app, database) -> None:
    name, dsn = database
    app = instrumented_app(
        [sys.executable, str(APP)],
        env={"DATABASE_URL": dsn, "COVET_DB_SLOW_QUERY_SECONDS": "0.1", "COVET_DB_LEAK_SECONDS": "0.3"},
    )
    leaked = "covet_db_connections_leaked_total"
    deadline = time.monotonic() + 30
    while True:
        s = app.scrape()
        if s.get(leaked, pool=name, reason="held_too_long") >= 1:
            break
        assert time.monotonic() < deadline, f"no leak reported: {s.text[-3000:]}"
        time.sleep(0.2)

    wanted = database_metrics()
    assert len(wanted) == 12
    for d in wanted:
        sample = d.name + "_count" if d.kind == "histogram" else d.name
        series = s.series(sample)
        assert series, f"{d.name} missing"
        for labels in series:
            assert set(labels) - {"le"} == set(d.label_names), (d.name, labels)

    count = "covet_db_query_duration_seconds_count"
    # upstream AsyncPGInstrumentor is loaded too: still one count per statement
    assert s.value(count, pool=name, operation="SELECT", outcome="success") == 5
    assert s.value(count, pool=name, operation="SELECT", outcome="error") == 1
    assert s.value(count, pool=name, operation="INSERT", outcome="success") == 1
    assert s.value(count, pool=name, operation="CREATE", outcome="success") == 1
    assert s.value("covet_db_query_errors_total", pool=name, operation="SELECT", sqlstate_class="42") == 1
    assert s.value("covet_db_slow_queries_total", pool=name, operation="SELECT") == 1
    assert s.value("covet_db_pool_acquire_timeouts_total", pool=name) == 1
    assert s.value("covet_db_pool_acquire_duration_seconds_count", pool=name, outcome="success") == 1
    assert s.value("covet_db_pool_acquire_duration_seconds_count", pool=name, outcome="timeout") == 1
    assert s.value("covet_db_connections_active", pool=name) == 1
    assert s.value("covet_db_connections_idle", pool=name) == 0
    assert s.value("covet_db_pool_size", pool=name) == 1
    assert s.value("covet_db_pool_min_size", pool=name) == 1
    assert s.value("covet_db_pool_max_size", pool=name) == 1
    assert s.value("covet_db_pool_health_status", pool=name) == 0.5
    assert s.value(leaked, pool=name, reason="held_too_long") == 1
    assert s.value(leaked, pool=name, reason="not_released") == 0
    output = app.output()
    assert "app ready" in output
    assert f"{APP}:" in output and "held for" in output
