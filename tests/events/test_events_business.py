"""Business events: declared names, counts and values, bad input."""

from __future__ import annotations

import logging
import math

import pytest

from covet_otel.events import business as business_module
from covet_otel.events import (
    business_event,
    declare_business_event,
    record_business_event,
)


def test_declared_event_counts_and_adds_value(metrics) -> None:
    orders = declare_business_event("order_placed", currency="EUR")
    assert metrics.scrape().value("covet_business_events_total", event="order_placed") == 0  # at once

    orders.record()
    orders.record(2)
    orders.add_value(19.99)
    orders.add_value(5)

    scraped = metrics.scrape()
    assert scraped.value("covet_business_events_total", event="order_placed") == 3
    assert scraped.value("covet_business_value_total", event="order_placed", currency="EUR") == pytest.approx(
        24.99
    )
    assert scraped.types["covet_business_value"] == "counter"


def test_several_currencies_and_lookup_by_name(metrics) -> None:
    revenue = declare_business_event("subscription_renewed", currency=("EUR", "USD"))
    assert business_event("subscription_renewed") is revenue
    assert (
        declare_business_event("subscription_renewed", ("EUR", "USD")) is revenue
    )  # same again: same handle
    revenue.add_value(10, "USD")
    revenue.add_value(7)  # the first currency declared is the default
    record_business_event("subscription_renewed")

    scraped = metrics.scrape()
    assert scraped.value("covet_business_value_total", event="subscription_renewed", currency="USD") == 10
    assert scraped.value("covet_business_value_total", event="subscription_renewed", currency="EUR") == 7
    assert scraped.value("covet_business_events_total", event="subscription_renewed") == 1


@pytest.mark.parametrize(
    ("name", "currency", "message"),
    [
        ("Order Placed", None, "is not valid"),
        ("orders/42", None, "is not valid"),
        ("", None, "is not valid"),
        ("x" * 65, None, "is not valid"),
        (42, None, "is not valid"),
        ("other", None, "reserved"),
        ("refund_issued", "eur", "ISO 4217"),
        ("refund_issued", "EURO", "ISO 4217"),
        ("refund_issued", ("EUR", "EUR"), "twice"),
    ],
)
def test_bad_declarations_are_clear_errors(name, currency, message) -> None:
    with pytest.raises(ValueError, match=message):
        declare_business_event(name, currency)


def test_redeclaring_with_other_currencies_is_an_error() -> None:
    declare_business_event("invoice_paid", "EUR")
    with pytest.raises(ValueError, match="declared with currencies"):
        declare_business_event("invoice_paid", "USD")


def test_the_number_of_declared_events_is_capped(monkeypatch) -> None:
    declare_business_event("cart_abandoned")
    monkeypatch.setattr(business_module, "MAX_BUSINESS_EVENTS", len(business_module._declared))
    with pytest.raises(ValueError, match="events are declared already"):
        declare_business_event("cart_abandoned_again")
    assert declare_business_event("cart_abandoned").name == "cart_abandoned"  # existing ones still resolve


def test_undeclared_names_are_a_key_error_by_lookup_and_other_when_recorded(metrics, caplog) -> None:
    caplog.set_level(logging.WARNING, logger="covet_otel")
    with pytest.raises(KeyError, match="'user_4711_signed_up' is not declared"):
        business_event("user_4711_signed_up")
    record_business_event("user_4711_signed_up")
    record_business_event("user_4712_signed_up", 2)
    record_business_event(["unhashable"])  # type: ignore[arg-type]

    scraped = metrics.scrape()
    assert scraped.value("covet_business_events_total", event="other") == 4
    assert not any("4711" in labels["event"] for labels in scraped.series("covet_business_events_total"))
    assert sum("user_4711_signed_up" in r.getMessage() for r in caplog.records) == 1


@pytest.mark.parametrize("bad", [-1, -0.01, math.nan, math.inf, "12", None, True])
def test_bad_amounts_are_dropped_never_raised(metrics, bad) -> None:
    event = declare_business_event("payment_captured", "EUR")
    event.record(bad)
    event.add_value(bad)
    event.add_value(3, "GBP")  # a currency not declared with the event
    event.add_value(1.5)

    scraped = metrics.scrape()
    assert scraped.value("covet_business_events_total", event="payment_captured") == 0
    assert scraped.value("covet_business_value_total", event="payment_captured", currency="EUR") == 1.5
    assert (
        scraped.series("covet_business_value_total").count({"event": "payment_captured", "currency": "GBP"})
        == 0
    )


def test_value_of_an_event_without_currency_is_dropped(metrics) -> None:
    logins = declare_business_event("login_succeeded")
    logins.add_value(3)
    logins.record()
    scraped = metrics.scrape()
    assert scraped.value("covet_business_events_total", event="login_succeeded") == 1
    assert {"event": "login_succeeded"} not in [
        {"event": labels["event"]} for labels in scraped.series("covet_business_value_total")
    ]
