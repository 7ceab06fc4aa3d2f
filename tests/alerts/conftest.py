"""Fixtures of the alert tests: a real Alertmanager running the generated config, delivering to
local sinks (a webhook sink standing in for PagerDuty, Slack and the dead man's switch, and an SMTP
sink), configured through the mixin's own override mechanism as a user would."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from harness import Alertmanager
from harness.stack_sinks import SmtpSink, WebhookSink

from covet_otel.mixin import alertmanager
from covet_otel.mixin.config import apply_overrides, load_config

ROUTING_KEYS = {"critical": "pd-key-critical", "security": "pd-key-security"}
FAST_TIMING = {
    f"{severity}_{field}": value
    for severity in ("critical", "high", "medium", "low")
    for field, value in (("group_wait", "1s"), ("group_interval", "2s"))
}


@dataclass
class AlertingEnv:
    alertmanager: Alertmanager
    webhook: WebhookSink
    smtp: SmtpSink
    config_dir: Path

    def post(self, *alerts: dict[str, Any]) -> None:
        self.alertmanager.post_alerts(list(alerts))

    def groups(self) -> list[dict[str, Any]]:
        import httpx

        with httpx.Client(timeout=10, trust_env=False) as client:
            response = client.get(f"{self.alertmanager.url}/api/v2/alerts/groups")
        response.raise_for_status()
        return response.json()

    def status_of(self, alertname: str, **labels: str) -> dict[str, Any]:
        """The status of one alert as the alert-groups API reports it (muting shows only there)."""
        for group in self.groups():
            for alert in group["alerts"]:
                lab = alert["labels"]
                if lab.get("alertname") == alertname and all(lab.get(k) == v for k, v in labels.items()):
                    return {**alert["status"], "receiver": group["receiver"]["name"]}
        raise AssertionError(f"{alertname} {labels} is not in Alertmanager")


def sink_overrides(webhook_url: str, smtp_address: str, secrets_dir: Path) -> dict[str, Any]:
    """The override a user would write to deliver to local sinks."""
    return {
        "alertmanager": {
            "secrets_dir": str(secrets_dir),
            "pagerduty_url": f"{webhook_url}/pagerduty",
            "slack_api_url": f"{webhook_url}/slack",
            "deadmans_switch_url": f"{webhook_url}/deadman",
            "smtp_smarthost": smtp_address,
            "smtp_require_tls": False,
            **FAST_TIMING,
            "watchdog_repeat_interval": "2s",
        }
    }


@pytest.fixture
def alerting(tmp_path: Path) -> Iterator[Callable[..., AlertingEnv]]:
    """``alerting(**alertmanager_overrides)`` -> a started AlertingEnv."""
    started: list[tuple[Alertmanager, WebhookSink, SmtpSink]] = []

    def make(**am_overrides: Any) -> AlertingEnv:
        config_dir = tmp_path / f"am{len(started)}"
        secrets = config_dir / "secrets"
        secrets.mkdir(parents=True)
        for service, key in ROUTING_KEYS.items():
            (secrets / f"pagerduty-{service}-routing-key").write_text(key + "\n")
        webhook = WebhookSink().start()
        smtp = SmtpSink().start()
        overrides = sink_overrides(webhook.url, smtp.address, secrets)
        overrides["alertmanager"].update(am_overrides)
        alertmanager.write(apply_overrides(load_config(), overrides), config_dir)
        server = Alertmanager(config_dir / "alertmanager.yml")
        started.append((server, webhook, smtp))
        server.start()
        return AlertingEnv(server, webhook, smtp, config_dir)

    yield make
    for server, webhook, smtp in reversed(started):
        server.cleanup()
        webhook.stop()
        smtp.stop()
