"""Business group: counts and values of business events (orders placed, revenue).

Event names are declared up front with `declare_business_event`, which checks the name (and the
currencies) and returns a handle whose `record()` / `add_value()` cost one dictionary-free
series update. A bad declaration is a ValueError at declaration time, normally at import, where
a programmer sees it; recording never raises: a bad amount is dropped and logged once. The
by-name helper `record_business_event` counts an undeclared name as `other` (and logs it once),
so a name built from user input cannot create series.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Sequence

from .. import instruments
from ..catalogue import OTHER
from ._common import check_name, non_negative_number, warn_once

EVENTS_METRIC = "covet_business_events_total"
VALUE_METRIC = "covet_business_value_total"
# Declared events are the only values of the `event` label: this caps them (plus `other`).
MAX_BUSINESS_EVENTS = 100
_CURRENCY = re.compile(r"^[A-Z]{3}$")

_declared: dict[str, BusinessEvent] = {}
_lock = threading.Lock()


class BusinessEvent:
    """A declared business event. `record(n)` counts occurrences; `add_value(amount)` adds to
    its value in the declared currency (or one of them, by `currency=`)."""

    __slots__ = ("_count", "_values", "currencies", "name")

    def __init__(self, name: str, currencies: tuple[str, ...]) -> None:
        self.name = name
        self.currencies = currencies
        self._count: instruments.CounterSeries | None = None
        self._values: dict[str, instruments.CounterSeries] = {}

    @property
    def currency(self) -> str | None:
        """The default currency of `add_value` (the first one declared)."""
        return self.currencies[0] if self.currencies else None

    def _bind(self) -> None:
        # Creating the series at declaration exports 0 at once, so the first event is an
        # increase that rate() sees instead of a series appearing at 1.
        self._count = instruments.counter(EVENTS_METRIC).series((self.name,))
        values = instruments.counter(VALUE_METRIC)
        self._values = {c: values.series((self.name, c)) for c in self.currencies}

    def record(self, count: float = 1) -> None:
        """Count `count` occurrences (default one). Negative or non-numeric counts are dropped."""
        try:
            if self._count is None:
                self._bind()
            if not non_negative_number(count):
                warn_once(
                    f"business:{self.name}:count",
                    "covet-otel: business event %r: count %r dropped (counts are numbers >= 0)",
                    self.name,
                    count,
                )
                return
            self._count.add(count)  # type: ignore[union-attr]
        except Exception:
            warn_once("business:error", "covet-otel: cannot record a business event", exc_info=True)

    def add_value(self, amount: float, currency: str | None = None) -> None:
        """Add `amount` to the event's value in `currency` (default: the declared one).

        Values only grow (a counter): record refunds as their own declared event. A negative
        or non-numeric amount, or a currency not declared with the event, is dropped and logged
        once, never mixed into another currency's total.
        """
        try:
            if self._count is None:
                self._bind()
            key = currency if currency is not None else self.currency
            series = self._values.get(key) if key is not None else None
            if series is None:
                warn_once(
                    f"business:{self.name}:currency:{key!r}"[:200],
                    "covet-otel: business event %r has no currency %r (declared: %s); value dropped",
                    self.name,
                    key,
                    ", ".join(self.currencies) or "none",
                )
                return
            if not non_negative_number(amount):
                warn_once(
                    f"business:{self.name}:amount",
                    "covet-otel: business event %r: amount %r dropped (values are numbers >= 0; "
                    "declare a separate event for refunds)",
                    self.name,
                    amount,
                )
                return
            series.add(amount)
        except Exception:
            warn_once("business:error", "covet-otel: cannot record a business value", exc_info=True)

    def __repr__(self) -> str:
        return f"BusinessEvent({self.name!r}, currencies={self.currencies!r})"


def declare_business_event(name: str, currency: str | Sequence[str] | None = None) -> BusinessEvent:
    """Declare a business event and return its handle.

    `name` becomes the `event` label: a fixed identifier such as `order_placed` (ValueError
    otherwise). `currency` is an ISO 4217 code (`"EUR"`) or several (`("EUR", "USD")`) for
    `add_value`; omit it for events that are only counted. Declaring the same name again with
    the same currencies returns the same handle; with other currencies it is a ValueError. At
    most MAX_BUSINESS_EVENTS names can be declared.
    """
    check_name("business event", name)
    if name == OTHER:
        raise ValueError(f"business event name {OTHER!r} is reserved for undeclared events")
    currencies = _currencies(name, currency)
    with _lock:
        existing = _declared.get(name)
        if existing is not None:
            if existing.currencies != currencies:
                raise ValueError(
                    f"business event {name!r} was declared with currencies {existing.currencies}, "
                    f"now with {currencies}: declare it once, with every currency it uses"
                )
            return existing
        if len(_declared) >= MAX_BUSINESS_EVENTS:
            raise ValueError(
                f"cannot declare business event {name!r}: {MAX_BUSINESS_EVENTS} events are declared "
                "already (each is a label value; declare fixed event kinds, not one per object)"
            )
        event = BusinessEvent(name, currencies)
        _declared[name] = event
    try:
        event._bind()
    except Exception:  # settings not loadable yet: the handle binds on first use instead
        event._count = None
    return event


def _currencies(name: str, currency: str | Sequence[str] | None) -> tuple[str, ...]:
    if currency is None:
        return ()
    items = (currency,) if isinstance(currency, str) else tuple(currency)
    for code in items:
        if not isinstance(code, str) or not _CURRENCY.match(code):
            raise ValueError(
                f"business event {name!r}: currency {code!r} is not valid: expected an ISO 4217 "
                "code of three capital letters such as 'EUR'"
            )
    if len(set(items)) != len(items):
        raise ValueError(f"business event {name!r}: currency listed twice in {items}")
    return items


def business_event(name: str) -> BusinessEvent:
    """The handle of a declared event; KeyError (naming the declared ones) otherwise."""
    try:
        return _declared[name]
    except KeyError:
        known = ", ".join(sorted(_declared)) or "none"
        raise KeyError(
            f"business event {name!r} is not declared (declared: {known}); call "
            "declare_business_event() first"
        ) from None


_undeclared: BusinessEvent | None = None


def record_business_event(name: str, count: float = 1) -> None:
    """Count a business event by name. A name that was not declared counts as `other` and is
    logged once: it never raises and never creates a series."""
    global _undeclared
    event = _declared.get(name) if isinstance(name, str) else None
    if event is None:
        warn_once(
            f"business:undeclared:{name!r}"[:200],
            "covet-otel: business event %r is not declared; counted as %r. Declare it with "
            "declare_business_event().",
            name,
            OTHER,
        )
        if _undeclared is None:
            _undeclared = BusinessEvent(OTHER, ())
        event = _undeclared
    event.record(count)


def declared_business_events() -> tuple[BusinessEvent, ...]:
    return tuple(_declared.values())
