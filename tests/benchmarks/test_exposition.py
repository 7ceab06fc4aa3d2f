"""The embedded endpoint's own writer (covet_otel/export/exposition.py) serves exactly the text
the SDK's Prometheus exporter and prometheus_client would serve for the same data.

The reference is the unchanged SDK path on the same registry: `encoder(registry)`, where the
reader's collection carries covet-otel's series as OTel data (producer.py) into the SDK exporter
and prometheus_client formats them. The endpoint under test is a second MeterProvider built as
configure() builds its Prometheus reader (its own registry, scope labels off, producer attached),
with SDK instruments of its own beside covet-otel's series, served by the real HTTP server.
"""

from __future__ import annotations

import gzip
import math
import subprocess
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from covet_fixtures import record_every_sdk_metric
from harness import tools
from opentelemetry.exporter.prometheus import PrometheusMetricReader
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.resources import Resource
from prometheus_client import CollectorRegistry
from prometheus_client import exposition as prom_exposition

from covet_otel import instruments
from covet_otel.catalogue import CATALOGUE
from covet_otel.export import exposition, pipeline, producer

# what Prometheus 3 sends (scrape_protocols default), then the other negotiations that matter
PROMETHEUS_3_ACCEPT = (
    "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,"
    "application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,"
    "text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
)
ACCEPTS = [
    None,
    "text/plain;version=0.0.4",
    "text/plain;version=1.0.0;escaping=allow-utf-8",
    "text/plain;version=1.0.0;escaping=underscores",
    "application/openmetrics-text;version=1.0.0",
    "application/openmetrics-text;version=1.0.0;escaping=underscores",
    "application/openmetrics-text",
    PROMETHEUS_3_ACCEPT,
]
NASTY = [
    "plain",
    'quo"te',
    "back\\slash",
    "new\nline",
    "tab\there",
    "ünïcødé",
    "日本語",
    "",
    " spaced ",
    "{}=,",
]


class Endpoint:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.reader = PrometheusMetricReader(registry=self.registry, scope_info_enabled=False)
        self.provider = MeterProvider(
            metric_readers=[self.reader],
            resource=Resource({"service.name": "exposition-test", "service.instance.id": "i-1"}),
            views=pipeline.views(),
            shutdown_on_exit=False,
        )
        producer.attach(self.provider)
        self.server, _ = exposition.start_server(0, "127.0.0.1", self.registry, self.reader)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/metrics"

    def reference(self, accept: str | None) -> bytes:
        """What the SDK exporter and prometheus_client serve for this Accept header."""
        encoder, _ = prom_exposition.choose_encoder(accept)
        return encoder(self.registry)

    def ours(self, accept: str | None) -> bytes:
        encoder, _ = prom_exposition.choose_encoder(accept)
        return exposition.render(self.registry, self.reader, encoder)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.provider.shutdown()


@pytest.fixture
def endpoint(metrics: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Endpoint]:
    # `metrics` zeroes every series; callbacks that read the host (CPU, RSS) would differ between
    # the two renders compared, so each test sets the callbacks it wants
    for instrument in instruments.registered():
        monkeypatch.setattr(instrument, "_callbacks", [])
    made = Endpoint()
    yield made
    made.close()


def _fill_many() -> None:
    """Many label sets over every kind, with values that exercise every formatting path."""
    duration = instruments.histogram("covet_http_request_duration_seconds")
    size = instruments.histogram("covet_http_response_body_size_bytes")
    requests = instruments.counter("covet_http_requests_total")
    for i in range(400):
        route = f"/r/{NASTY[i % len(NASTY)]}/{i}"
        series = duration.series(("GET", route, "200"))
        for value in (0.0, 0.0004, 0.003 * (i % 7), 1.5, 30.0 + i, 1e-9):
            series.record(value)
        size.series(("POST", route, "201")).record(1024.0 * i)
        requests.series(("GET", route, "200")).add(i + 0.25)
    # a count beyond 10**6 (floatToGoString switches to exponents there) and extreme sums
    big = duration.series(("PUT", "/big", "500"))
    big.record(0.2)
    (shard,) = big._shards.values()  # this thread's: [bucket counts..., sum, min, max]
    shard[5] += 2_500_000
    shard[-3] = 1e22
    tiny = duration.series(("PUT", "/tiny", "500"))
    tiny.record(1e-7)
    empty = duration.series(("PUT", "/never", "500"))  # a series created but never recorded
    assert empty.count == 0
    requests.series(("GET", "/huge", "200")).add(1.5e21)
    requests.series(("GET", "/exact", "200")).add(123456789.0)
    requests.series(("GET", "/zero", "200"))
    # gauges take NaN and infinities as they are (Prometheus allows them there)
    status = instruments.gauge("covet_db_pool_health_status")
    status.set(math.nan, ("nan",))
    status.set(math.inf, ("inf",))
    status.set(-math.inf, ("-inf",))
    status.set(-3.25, ("negative",))
    status.set(0.5, ("half",))
    instruments.updowncounter("covet_http_requests_in_flight").add(-2, ("GET",))
    instruments.updowncounter("covet_http_requests_in_flight").add(7, ("POST",))
    # callbacks, and a metric without labels
    instruments.counter("covet_process_gc_collections_total").observe(lambda: [(("0",), 12.0), (("1",), 3.0)])
    instruments.gauge("covet_process_threads").observe(lambda: [((), 9.0)])
    instruments.gauge("covet_system_load_average").observe(lambda: [(("1m",), math.inf), (("5m",), 0.7)])


def _sdk_instruments(endpoint: Endpoint) -> None:
    meter = endpoint.provider.get_meter("app.orders", "1.2.3")
    meter.create_counter("app.orders", unit="{order}", description="Orders placed").add(3, {"shop": 'a"b'})
    meter.create_up_down_counter("app.queue.depth", description="Jobs queued").add(-4, {"queue": "q"})
    hist = meter.create_histogram("app.checkout.duration", unit="s", description="Checkout time")
    for value in (0.01, 0.2, 4.0):
        hist.record(value, {"step": "pay\nment"})
    meter.create_observable_gauge(
        "app.temperature",
        description="Room temperature",
        callbacks=[lambda _o: [Observation(21.5, {"room": "x"})]],
    )


def _ours_was_written_by_the_writer(endpoint: Endpoint, monkeypatch: pytest.MonkeyPatch) -> None:
    """The equality below must not hold merely because the writer fell back to the SDK path."""
    calls = []
    original = producer.produce
    monkeypatch.setattr(producer, "produce", lambda *a, **k: calls.append(1) or original(*a, **k))
    endpoint.ours(None)
    assert calls == []
    endpoint.reference(None)
    assert calls == [1]


@pytest.mark.parametrize("accept", ACCEPTS)
def test_same_bytes_as_the_sdk_exporter(endpoint: Endpoint, accept: str | None, monkeypatch) -> None:
    _fill_many()
    _sdk_instruments(endpoint)
    _ours_was_written_by_the_writer(endpoint, monkeypatch)
    reference = endpoint.reference(accept)
    ours = endpoint.ours(accept)
    assert ours == reference
    text = ours.decode()
    # the data really is in it: many label sets, escaped values, exponent counts, NaN and infinities
    assert text.count("covet_http_request_duration_seconds_bucket{") > 400 * 16
    assert 'route="/r/quo\\"te/1"' in text and 'route="/r/new\\nline/3"' in text
    assert 'route="/r/back\\\\slash/2"' in text
    assert (
        'covet_http_request_duration_seconds_count{method="PUT",route="/big",status_code="500"} 2.500001e+06'
        in text
    )
    assert 'covet_http_requests_total{method="GET",route="/huge",status_code="200"} 1.5e+21' in text
    assert 'covet_db_pool_health_status{pool="nan"} NaN' in text
    assert 'covet_db_pool_health_status{pool="-inf"} -Inf' in text
    assert "covet_process_threads 9.0" in text
    assert 'app_orders_total{shop="a\\"b"} 3.0' in text


def test_served_over_http_with_gzip_and_content_type(endpoint: Endpoint) -> None:
    _fill_many()
    _sdk_instruments(endpoint)
    with httpx.Client(timeout=30) as client:
        for accept in (None, PROMETHEUS_3_ACCEPT):
            headers = {"Accept-Encoding": "gzip"} | ({"Accept": accept} if accept else {})
            response = client.get(endpoint.url, headers=headers)
            assert response.status_code == 200
            assert response.headers["content-encoding"] == "gzip"
            assert response.headers["content-type"] == prom_exposition.choose_encoder(accept)[1]
            assert response.content == endpoint.reference(accept)  # httpx decompressed it
            plain = client.get(
                endpoint.url, headers={"Accept-Encoding": "identity"} | ({"Accept": accept} if accept else {})
            )
            assert "content-encoding" not in plain.headers
            assert plain.content == endpoint.reference(accept)
        with client.stream("GET", endpoint.url, headers={"Accept-Encoding": "gzip"}) as raw:
            wire = b"".join(raw.iter_raw())
        assert wire[:2] == b"\x1f\x8b" and gzip.decompress(wire) == endpoint.reference(None)
        # prometheus_client's endpoint behaviour is kept: name[] filter (its answer), OPTIONS, methods
        filtered = client.get(endpoint.url, params={"name[]": "app_orders_total"})
        restricted = endpoint.registry.restricted_registry(["app_orders_total"])
        assert filtered.content == prom_exposition.generate_latest(restricted)
        options = client.request("OPTIONS", endpoint.url)
        assert (options.status_code, options.headers["allow"], options.content) == (200, "OPTIONS,GET", b"")
        post = client.post(endpoint.url)
        assert (
            post.status_code == 405
            and post.text == "# HTTP 405 Method Not Allowed: POST; use OPTIONS or GET\n"
        )


def test_a_name_shared_with_an_sdk_instrument_is_served_as_the_sdk_would(endpoint: Endpoint) -> None:
    """An SDK instrument under a catalogue name merges into one family on the SDK path; the
    writer leaves such a scrape to that path rather than serve two families of one name."""
    instruments.counter("covet_http_requests_total").add(2, ("GET", "/x", "200"))
    endpoint.provider.get_meter("app").create_counter(
        "covet.http.requests", unit="{request}", description=CATALOGUE[0].description
    ).add(1, {"method": "GET", "route": "/y", "status_code": "200"})
    for accept in (None, PROMETHEUS_3_ACCEPT):
        assert endpoint.ours(accept) == endpoint.reference(accept)


def test_promtool_check_metrics_passes_on_the_writers_output(endpoint: Endpoint) -> None:
    """Every catalogue metric plus SDK instruments, as served: no finding from promtool."""
    record_every_sdk_metric('x\\y"z')  # a value that needs escaping
    _sdk_instruments(endpoint)
    text = httpx.get(endpoint.url, timeout=30).text
    assert text.encode() == endpoint.reference(None)
    assert text.count("# TYPE covet_") == sum(1 for d in CATALOGUE if d.source == "sdk")
    result = subprocess.run(
        [str(tools.promtool()), "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    assert (result.returncode, result.stdout.strip(), result.stderr.strip()) == (0, "", "")
