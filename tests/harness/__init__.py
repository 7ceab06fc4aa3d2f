"""Test harness: real servers on free loopback ports (see docs/testing.md)."""

from . import tools
from .servers import (
    Alertmanager,
    PostgreSQL,
    Prometheus,
    PromQLError,
    Redis,
    Server,
    ServerStartError,
    free_port,
    port_open,
)
from .tools import ToolMissingError

__all__ = [
    "Alertmanager",
    "PostgreSQL",
    "PromQLError",
    "Prometheus",
    "Redis",
    "Server",
    "ServerStartError",
    "ToolMissingError",
    "free_port",
    "port_open",
    "tools",
]
