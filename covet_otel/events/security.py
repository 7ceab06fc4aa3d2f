"""Security group: rate limiting, permission denials and invalid tokens, recorded by the app.

Each function takes a reason from a fixed set (see the catalogue, or the `*_REASONS` tuples
here); anything else is counted as `other` and logged once, so a typo or an exception message
passed as a reason can neither raise nor create a new series. Authentication failures are the
HTTP instrumentation's `record_auth_failure`, re-exported here so all security signals have
one import.
"""

from __future__ import annotations

from ..catalogue import get
from ..instrumentation.http.auth import record_auth_failure
from ._common import ReasonCounter

RATE_LIMIT_REASONS: tuple[str, ...] = get("covet_security_rate_limited_total").labels[0].values or ()
PERMISSION_DENIED_REASONS: tuple[str, ...] = (
    get("covet_security_permission_denied_total").labels[0].values or ()
)
TOKEN_TYPES: tuple[str, ...] = get("covet_security_invalid_tokens_total").labels[0].values or ()
INVALID_TOKEN_REASONS: tuple[str, ...] = get("covet_security_invalid_tokens_total").labels[1].values or ()

_RATE_LIMITED = ReasonCounter("covet_security_rate_limited_total")
_PERMISSION_DENIED = ReasonCounter("covet_security_permission_denied_total")
_INVALID_TOKENS = ReasonCounter("covet_security_invalid_tokens_total")


def record_rate_limited(reason: str) -> None:
    """Count one request rejected by a rate limiter, keyed by what it was limited on
    (`ip`, `user`, `api_key`, `endpoint`, `global`)."""
    _RATE_LIMITED.add((reason,))


def record_permission_denied(reason: str) -> None:
    """Count one authorisation decision that denied access
    (`missing_role`, `missing_scope`, `ownership`, `policy`)."""
    _PERMISSION_DENIED.add((reason,))


def record_invalid_token(token_type: str, reason: str) -> None:
    """Count one invalid or forged token: `token_type` in `csrf`, `jwt`, `signature`, `api_key`,
    `session`; `reason` in `missing`, `malformed`, `bad_signature`, `expired`, `revoked`."""
    _INVALID_TOKENS.add((token_type, reason))


__all__ = [
    "INVALID_TOKEN_REASONS",
    "PERMISSION_DENIED_REASONS",
    "RATE_LIMIT_REASONS",
    "TOKEN_TYPES",
    "record_auth_failure",
    "record_invalid_token",
    "record_permission_denied",
    "record_rate_limited",
]
