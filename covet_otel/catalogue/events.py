"""Security and business groups: events the application records through the public API."""

from ._model import OTHER, Label, MetricDef

METRICS = (
    MetricDef(
        "covet_security_rate_limited_total",
        "counter",
        "{request}",
        "security",
        "sdk",
        "Requests rejected by a rate limiter.",
        (Label("reason", ("ip", "user", "api_key", "endpoint", "global", OTHER)),),
    ),
    MetricDef(
        "covet_security_permission_denied_total",
        "counter",
        "{event}",
        "security",
        "sdk",
        "Authorisation decisions that denied access.",
        (Label("reason", ("missing_role", "missing_scope", "ownership", "policy", OTHER)),),
    ),
    MetricDef(
        "covet_security_invalid_tokens_total",
        "counter",
        "{token}",
        "security",
        "sdk",
        "Invalid or forged tokens presented to the application.",
        (
            Label("token_type", ("csrf", "jwt", "signature", "api_key", "session", OTHER)),
            Label("reason", ("missing", "malformed", "bad_signature", "expired", "revoked", OTHER)),
        ),
    ),
    MetricDef(
        "covet_business_events_total",
        "counter",
        "{event}",
        "business",
        "sdk",
        "Business events (orders placed, sign-ups...) by declared event name.",
        (Label("event", description="declared with declare_business_event; undeclared: other"),),
    ),
    MetricDef(
        "covet_business_value_total",
        "counter",
        "",
        "business",
        "sdk",
        "Business value (revenue...) added by declared event name and currency.",
        (
            Label("event", description="a name declared with declare_business_event"),
            Label("currency", description="an ISO 4217 code declared with the event"),
        ),
    ),
)
