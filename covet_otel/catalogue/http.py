"""HTTP/application group: RED metrics by route template for ASGI and WSGI apps."""

from ._model import BYTES_BUCKETS, OTHER, SECONDS_BUCKETS, Label, MetricDef

METHOD = Label(
    "method",
    ("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "_OTHER"),
    "HTTP method; anything outside the standard set is _OTHER",
)
ROUTE = Label(
    "route",
    description="the framework's route template (/items/{item_id}); `unmatched` when no route matched",
)
# Only the codes HTTP defines (RFC 9110: three digits, 100-599): an app that sends 900 or 1234 must
# not create series per invented code.
STATUS = Label(
    "status_code",
    (*(str(code) for code in range(100, 600)), OTHER),
    "HTTP status code of the response, 100-599 (500 for unhandled exceptions); any other number is `other`",
)
AUTH_REASON = Label(
    "reason",
    (
        "unauthorized",
        "forbidden",
        "bad_password",
        "unknown_user",
        "expired_token",
        "invalid_token",
        "missing_credentials",
        "mfa_failed",
        "locked_out",
        OTHER,
    ),
    "`unauthorized`/`forbidden` from a bare 401/403; the others when the app records one",
)

METRICS = (
    MetricDef(
        "covet_http_requests_total",
        "counter",
        "{request}",
        "http",
        "sdk",
        "Completed HTTP requests.",
        (METHOD, ROUTE, STATUS),
    ),
    MetricDef(
        "covet_http_request_duration_seconds",
        "histogram",
        "s",
        "http",
        "sdk",
        "Time from receiving a request to sending the last byte of its response.",
        (METHOD, ROUTE, STATUS),
        buckets=SECONDS_BUCKETS,
    ),
    MetricDef(
        "covet_http_requests_in_flight",
        "updowncounter",
        "{request}",
        "http",
        "sdk",
        "Requests being handled right now.",
        (METHOD,),
    ),
    MetricDef(
        "covet_http_request_body_size_bytes",
        "histogram",
        "By",
        "http",
        "sdk",
        "Size of request bodies.",
        (METHOD, ROUTE),
        buckets=BYTES_BUCKETS,
    ),
    MetricDef(
        "covet_http_response_body_size_bytes",
        "histogram",
        "By",
        "http",
        "sdk",
        "Size of response bodies.",
        (METHOD, ROUTE, STATUS),
        buckets=BYTES_BUCKETS,
    ),
    MetricDef(
        "covet_http_exceptions_total",
        "counter",
        "{exception}",
        "http",
        "sdk",
        "Requests whose handler raised an unhandled exception (also counted as status 500).",
        (METHOD, ROUTE),
    ),
    MetricDef(
        "covet_app_auth_failures_total",
        "counter",
        "{failure}",
        "http",
        "sdk",
        "Authentication and authorisation failures; a request counts once.",
        (AUTH_REASON,),
    ),
)
