"""Test harness: real servers on free loopback ports (see docs/testing.md)."""

from . import tools
from .servers import (
    Alertmanager,
    PostgresExporter,
    PostgreSQL,
    Prometheus,
    PromQLError,
    Redis,
    Server,
    ServerStartError,
    VictoriaMetrics,
    free_port,
    port_open,
)
from .tools import ToolMissingError

__all__ = [
    "Alertmanager",
    "PostgreSQL",
    "PostgresExporter",
    "PromQLError",
    "Prometheus",
    "Redis",
    "Server",
    "ServerStartError",
    "ToolMissingError",
    "VictoriaMetrics",
    "free_port",
    "port_open",
    "tools",
]
