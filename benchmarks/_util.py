"""Shared measurement helpers for the benchmarks (not a test module)."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def cpu_per_call(fn: Callable[[], object], n: int, rounds: int = 5, warmup: int = 1) -> float:
    """Median over `rounds` of whole-process CPU seconds (all threads) per call of `fn`."""
    for _ in range(warmup):
        for _ in range(max(1, n // 10)):
            fn()
    samples = []
    for _ in range(rounds):
        start = time.process_time()
        for _ in range(n):
            fn()
        samples.append((time.process_time() - start) / n)
    return statistics.median(samples)


def table(rows: list[tuple[str, ...]]) -> str:
    """A Markdown table; the first row is the header."""
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(row) + " |" for row in rows[1:]]
    return "\n".join(out)


def null_tracer_provider() -> object:
    """An SDK TracerProvider that creates, processes and drops every span: the upstream span
    instrumentors' whole cost, without an exporter's I/O."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult

    class NullExporter(SpanExporter):
        def export(self, spans: object) -> SpanExportResult:
            return SpanExportResult.SUCCESS

        def shutdown(self) -> None:
            pass

    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(NullExporter()))
    return provider
