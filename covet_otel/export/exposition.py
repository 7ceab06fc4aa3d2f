"""The embedded /metrics endpoint, with a text writer of its own for covet-otel's series.

Through the SDK alone, every sample line of a scrape is built three times: an OTel data point
(`producer`), a `prometheus_client` metric family with a label dict per sample (the SDK's
Prometheus exporter), then text, where `prometheus_client` sorts, validates and escapes every
label of every line again. At 10k label sets (~140k lines) that was ~1.2 s of CPU per scrape
(docs/performance.md). This writer renders covet-otel's series straight to text: each series'
label string is escaped once and cached, a histogram's buckets are written in one pass, and
values are formatted without a float round trip where the result is known to be the same.

The output is byte-for-byte what the SDK exporter and `prometheus_client` would serve for the
same data (tests/benchmarks/test_exposition.py compares both, in both text formats): names,
HELP/TYPE/UNIT lines and label names come from the SDK's and `prometheus_client`'s own functions
(computed once per metric), and the rest of the response is theirs. Every other OTel instrument
in the process still goes through the SDK's Prometheus reader; its text comes first, as
`target_info` and the SDK's scopes come before the `covet_otel` scope on the SDK path, and ours is
appended. Anything this writer does not handle (a `name[]` filter, an escaping scheme that
rewrites valid names, OpenMetrics 2, a name shared with an SDK instrument, an error of ours)
is served by the unchanged `prometheus_client` path. The OTLP path does not come here.
"""

from __future__ import annotations

import gzip
import logging
import re
import socket
import threading
from collections.abc import Callable, Iterable
from functools import partial
from itertools import accumulate
from typing import Any
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, make_server

from opentelemetry.exporter.prometheus._mapping import map_unit, sanitize_attribute, sanitize_full_name
from prometheus_client import CollectorRegistry, openmetrics
from prometheus_client import exposition as prom_exposition
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.metrics_core import (
    Metric as PromMetric,
)
from prometheus_client.openmetrics import exposition as om_exposition
from prometheus_client.utils import floatToGoString

from .. import instruments
from ..catalogue import MetricDef
from ..instruments import Instrument
from . import producer, workers

_logger = logging.getLogger("covet_otel")

TEXT = "text"
OPENMETRICS = "openmetrics"
# Escaping schemes that leave a valid legacy name as it is: ours are all valid legacy names.
_PLAIN_ESCAPINGS = (openmetrics.exposition.UNDERSCORES, openmetrics.exposition.ALLOWUTF8)
_LEGACY_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LEGACY_LABEL = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
# prometheus_client compresses at gzip's default level 9. Level 1 costs a quarter of it on a large
# scrape (29 against 106 ms at 140k lines) for a body ~25 % larger (still ~28x smaller than the
# text), and decompresses to the same bytes.
GZIP_LEVEL = 1
# Label strings cached per metric; beyond this many (label sets churning through worker
# snapshots, say) the cache starts over rather than growing.
_MAX_CACHED_LABEL_SETS = 50_000


def _escape_value(value: str) -> str:
    # what prometheus_client does to every label value, in both formats
    return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")


def _num(value: Any) -> str:
    """floatToGoString, without the float round trip for the common case of a small count."""
    if type(value) is int and 0 <= value < 1_000_000:
        return f"{value}.0"  # repr(float(n)) for these, and Go switches to exponents only above
    return floatToGoString(value)


class _One:
    """A registry of one metric family: for the library's own header lines."""

    def __init__(self, family: PromMetric) -> None:
        self.family = family

    def collect(self) -> list[PromMetric]:
        return [self.family]


class _Spec:
    """One catalogue metric as the SDK exporter names and types it, and its label strings."""

    __slots__ = (
        "bucket",
        "count",
        "family",
        "headers",
        "kind",
        "label_cache",
        "les",
        "order",
        "plain",
        "split",
        "sum",
    )  # fmt: skip

    def __init__(self, definition: MetricDef, prom_kind: str, bounds: tuple[float, ...] | None) -> None:
        # the exporter's own name and unit mapping, as in its _translate_metric
        name = sanitize_full_name(definition.otel_name)
        unit = map_unit(definition.unit or "")
        keys = [sanitize_attribute(k) for k in definition.label_names]
        if len(set(keys)) != len(keys) or "le" in keys or not all(_LEGACY_LABEL.match(k) for k in keys):
            raise ValueError(f"{definition.name}: label names this writer does not render")
        label_keys = sorted(keys)
        factory = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily}.get(
            prom_kind, HistogramMetricFamily
        )
        self.family = factory(
            name=name, documentation=definition.description or "", labels=label_keys, unit=unit
        )
        if not _LEGACY_NAME.match(self.family.name):
            raise ValueError(f"{definition.name}: a name this writer does not render")
        self.kind = prom_kind
        # catalogue label order -> the sorted order both formats write labels in
        self.order = sorted(range(len(keys)), key=lambda i: keys[i])
        self.plain = [f'{keys[i]}="' for i in self.order]
        # a histogram's `le` sorts in among the labels of its bucket lines
        self.split = sum(1 for key in label_keys if key < "le")
        base = self.family.name
        self.sum = base + "_sum"
        self.count = base + "_count"
        self.bucket = base + "_bucket"
        if prom_kind == "counter":
            self.count = base + "_total"  # the one sample line of a counter
        self.les = [_escape_value(f"{b}") for b in bounds] + ["+Inf"] if bounds is not None else []
        self.headers: dict[tuple[str, str], str] = {}
        self.label_cache: dict[tuple[str, ...], tuple[str, str, str]] = {}

    def header(self, fmt: str, escaping: str) -> str:
        found = self.headers.get((fmt, escaping))
        if found is None:
            if fmt == TEXT:
                found = prom_exposition.generate_latest(_One(self.family), escaping=escaping).decode()
            else:
                found = om_exposition.generate_latest(_One(self.family), escaping=escaping).decode()
                found = found.removesuffix("# EOF\n")
            self.headers[(fmt, escaping)] = found
        return found

    def labels(self, values: tuple[str, ...]) -> tuple[str, str, str]:
        """(all labels, labels before `le` plus a comma, a comma plus labels after `le`)."""
        found = self.label_cache.get(values)
        if found is not None:
            return found
        parts = [f'{key}{_escape_value(str(values[i]))}"' for key, i in zip(self.plain, self.order)]
        before, after = parts[: self.split], parts[self.split :]
        found = (
            ",".join(parts),
            "".join(p + "," for p in before),
            "".join("," + p for p in after),
        )
        if len(self.label_cache) >= _MAX_CACHED_LABEL_SETS:
            self.label_cache.clear()
        self.label_cache[values] = found
        return found


_specs: dict[tuple[str, str], _Spec] = {}


def _prom_kind(instrument: Instrument) -> str:
    kind = instrument.definition.kind
    # a cumulative non-monotonic sum is a gauge to the exporter (Prometheus compatibility spec)
    return {"counter": "counter", "histogram": "histogram"}.get(kind, "gauge")


def _spec(instrument: Instrument) -> _Spec:
    d = instrument.definition
    prom_kind = _prom_kind(instrument)
    found = _specs.get((d.name, prom_kind))
    if found is None:
        bounds = getattr(instrument, "bounds", None) if prom_kind == "histogram" else None
        found = _specs[(d.name, prom_kind)] = _Spec(d, prom_kind, bounds)
    return found


def _write(spec: _Spec, states: dict[tuple[str, ...], list], out: list[str]) -> None:
    if spec.kind == "histogram":
        bucket, les, count_name, sum_name = spec.bucket, spec.les, spec.count, spec.sum
        labels_of = spec.labels
        for labels, values in states.items():
            plain, before, after = labels_of(labels)
            counts = values[0]
            head = f'{bucket}{{{before}le="'
            tail = f'"{after}}} '
            cumulative = list(accumulate(counts))
            total = cumulative[-1] if cumulative else 0
            if type(total) is int and 0 <= total < 1_000_000:
                # every count an int below 10**6 (a float anywhere makes the sum a float)
                out.append("".join([f"{head}{le}{tail}{n}.0\n" for le, n in zip(les, cumulative)]))
                shown = f"{total}.0"
            else:
                out.append("".join([f"{head}{le}{tail}{_num(n)}\n" for le, n in zip(les, cumulative)]))
                shown = _num(total)
            labelled = f"{{{plain}}} " if plain else " "
            out.append(f"{count_name}{labelled}{shown}\n{sum_name}{labelled}{floatToGoString(values[2])}\n")
        return
    name = spec.count if spec.kind == "counter" else spec.family.name
    labels_of = spec.labels
    for labels, values in states.items():
        plain = labels_of(labels)[0]
        if plain:
            out.append(f"{name}{{{plain}}} {floatToGoString(values[0])}\n")
        else:
            out.append(f"{name} {floatToGoString(values[0])}\n")


def render_covet(state: Any, include_workers: bool, fmt: str, escaping: str) -> tuple[list[str], set[str]]:
    """covet-otel's series as exposition text, and the OTel names of the metrics written."""
    out: list[str] = []
    written: set[str] = set()
    with state.lock:
        if include_workers:
            producer.register_worker_metrics()
        for instrument in instruments.registered():
            d = instrument.definition
            try:
                states = producer.local_states(instrument)
                if include_workers:
                    workers.merge_into(d, states)
            except Exception:  # a broken callback must not cost the other metrics, as in produce()
                _logger.warning("covet_otel: collecting %s failed", d.name, exc_info=True)
                continue
            if not states:
                continue
            spec = _spec(instrument)
            out.append(spec.header(fmt, escaping))
            _write(spec, states, out)
            written.add(d.otel_name)
    return out, written


def _encoder_format(encoder: Callable) -> tuple[str, str] | None:
    """(format, escaping) of what prometheus_client's content negotiation chose, when this writer
    renders it exactly; None for the cases left to prometheus_client."""
    func = encoder.func if isinstance(encoder, partial) else encoder
    keywords = encoder.keywords if isinstance(encoder, partial) else {}
    escaping = keywords.get("escaping", openmetrics.exposition.UNDERSCORES)
    if escaping not in _PLAIN_ESCAPINGS:
        return None
    if func is prom_exposition.generate_latest:
        return TEXT, escaping
    if func is om_exposition.generate_latest and str(keywords.get("version", "1.0.0")).startswith("1."):
        return OPENMETRICS, escaping
    return None


_failed_once = False


def render(registry: CollectorRegistry, reader: Any, encoder: Callable) -> bytes:
    """The response body for `encoder` (prometheus_client's choice for the request's Accept)."""
    global _failed_once
    chosen = _encoder_format(encoder)
    state = getattr(reader, "_covet_state", None)
    collector = getattr(reader, "_collector", None)
    # scope labels, a prefix or resource labels would change every line: the SDK path does those
    plain = (
        collector is not None
        and not getattr(collector, "_scope_info_enabled", True)
        and not getattr(collector, "_prefix", "x")
        and getattr(collector, "_resource_attribute_filter", 1) is None
    )
    if chosen is not None and state is not None and plain:
        try:
            fmt, escaping = chosen
            ours, written = render_covet(state, reader._covet_include_workers, fmt, escaping)
            with producer.covet_scope_left_out(bool(ours)) as sdk_names:
                sdk = encoder(registry)
            if not written & sdk_names:  # a shared name merges into one family: the SDK path does that
                if fmt == OPENMETRICS:
                    return sdk.removesuffix(b"# EOF\n") + "".join(ours).encode() + b"# EOF\n"
                return sdk + "".join(ours).encode()
        except Exception:
            if not _failed_once:
                _failed_once = True
                _logger.warning("covet_otel: /metrics writer failed; serving the SDK's text", exc_info=True)
    return encoder(registry)


def make_wsgi_app(registry: CollectorRegistry, reader: Any) -> Callable:
    """prometheus_client's /metrics WSGI app (methods, paths, content negotiation, gzip), with
    covet-otel's series written by `render`."""

    def app(environ: dict, start_response: Callable) -> Iterable[bytes]:
        method = environ["REQUEST_METHOD"]
        if method == "OPTIONS":
            status, headers, output = "200 OK", [("Allow", "OPTIONS,GET")], b""
        elif method != "GET":
            status = "405 Method Not Allowed"
            headers = [("Allow", "OPTIONS,GET")]
            output = f"# HTTP {status}: {method}; use OPTIONS or GET\n".encode()
        elif environ["PATH_INFO"] == "/favicon.ico":
            status, headers, output = "200 OK", [], b""
        else:
            params = parse_qs(environ.get("QUERY_STRING", ""))
            encoder, content_type = prom_exposition.choose_encoder(environ.get("HTTP_ACCEPT"))
            if "name[]" in params:
                output = encoder(registry.restricted_registry(params["name[]"]))
            else:
                output = render(registry, reader, encoder)
            status, headers = "200 OK", [("Content-Type", content_type)]
            if prom_exposition.gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING")):
                output = gzip.compress(output, compresslevel=GZIP_LEVEL)
                headers.append(("Content-Encoding", "gzip"))
        start_response(status, headers)
        return [output]

    return app


class _SilentHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes are not logged (prometheus_client's endpoint does not either)."""


def start_server(
    port: int, addr: str, registry: CollectorRegistry, reader: Any
) -> tuple[Any, threading.Thread]:
    """Serve /metrics on a daemon thread, as prometheus_client.start_http_server does."""

    class Server(prom_exposition.ThreadingWSGIServer):
        pass

    # the address family follows the address (IPv6 for ::), as in prometheus_client
    family, _, _, _, sockaddr = socket.getaddrinfo(
        addr, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )[0]
    Server.address_family = family
    httpd = make_server(
        sockaddr[0], port, make_wsgi_app(registry, reader), Server, handler_class=_SilentHandler
    )
    thread = threading.Thread(target=httpd.serve_forever, name="covet-otel-metrics", daemon=True)
    thread.start()
    return httpd, thread
