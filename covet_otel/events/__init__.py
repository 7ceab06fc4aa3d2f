"""Application events: security, business, backup and migration signals (docs/events.md)."""

from .backup import BackupRun, backup
from .business import (
    BusinessEvent,
    business_event,
    declare_business_event,
    declared_business_events,
    record_business_event,
)
from .migration import MigrationRun, set_pending_migrations, track_migration
from .security import (
    record_auth_failure,
    record_invalid_token,
    record_permission_denied,
    record_rate_limited,
)

__all__ = [
    "BackupRun",
    "BusinessEvent",
    "MigrationRun",
    "backup",
    "business_event",
    "declare_business_event",
    "declared_business_events",
    "record_auth_failure",
    "record_business_event",
    "record_invalid_token",
    "record_permission_denied",
    "record_rate_limited",
    "set_pending_migrations",
    "track_migration",
]
