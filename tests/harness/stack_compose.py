"""docker-compose.yml as data, for the native stack and its tests: services, the container ports other
services address them by, and the bind mounts (container path -> repository path), so that the native
stack finds the very files a compose service mounts.
"""

from __future__ import annotations

import functools
import glob
import posixpath
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from .tools import REPO_ROOT

COMPOSE_FILE = REPO_ROOT / "docker-compose.yml"


@functools.lru_cache(maxsize=1)
def compose() -> dict[str, Any]:
    """docker-compose.yml parsed (YAML anchors and merge keys resolved, as compose does)."""
    return yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))


def services() -> dict[str, dict[str, Any]]:
    return dict(compose()["services"])


def _container_port(spec: Any) -> int:
    # "8080", "8080:80", "127.0.0.1:8080:80", "80/tcp", or the long form {target: 80, published: 8080}
    if isinstance(spec, dict):
        return int(spec["target"])
    return int(str(spec).split(":")[-1].split("/")[0])


def container_ports(service: str) -> set[int]:
    """The ports other services (``expose``) or the host (``ports``) reach the service on."""
    spec = services()[service]
    return {_container_port(p) for p in [*spec.get("expose", []), *spec.get("ports", [])]}


def published_ports(service: str) -> set[int]:
    """Host ports of ``ports:`` (what a user opens in a browser)."""
    found = set()
    for spec in services()[service].get("ports", []):
        if isinstance(spec, dict):
            found.add(int(spec.get("published", spec["target"])))
        else:
            parts = str(spec).split("/")[0].split(":")
            found.add(int(parts[-2] if len(parts) > 1 else parts[-1]))
    return found


@dataclass(frozen=True)
class Mount:
    source: str  # as written: "./alerts", "/", or a named volume
    target: str  # path inside the container
    named_volume: bool

    @property
    def host_path(self) -> Path:
        """The repository (or host) path of a bind mount."""
        return (REPO_ROOT / self.source).resolve() if self.source.startswith(".") else Path(self.source)


def mounts(service: str) -> list[Mount]:
    found = []
    for spec in services()[service].get("volumes", []):
        if isinstance(spec, dict):
            source, target = str(spec.get("source", "")), str(spec["target"])
            named = spec.get("type") == "volume"
        else:
            parts = str(spec).split(":")
            source, target = parts[0], parts[1]
            named = not source.startswith((".", "/", "~"))
        found.append(Mount(source, target, named))
    return found


def bind_mounts(service: str) -> list[Mount]:
    return [m for m in mounts(service) if not m.named_volume]


def host_path(service: str, container_path: str, relative_to: str = "/") -> Path:
    """Where ``container_path`` (absolute, or relative to ``relative_to`` inside the container) of
    ``service`` lives in the repository, through the service's bind mounts (the deepest mount wins).
    ``LookupError`` when no bind mount covers it."""
    path = posixpath.normpath(posixpath.join(relative_to, container_path))
    best: Mount | None = None
    for mount in bind_mounts(service):
        target = mount.target.rstrip("/") or "/"
        if path == target or path.startswith(target.rstrip("/") + "/"):
            if best is None or len(target) > len(best.target):
                best = mount
    if best is None:
        raise LookupError(f"{container_path!r} is not in a bind mount of compose service {service!r}")
    rest = posixpath.relpath(path, best.target) if path != best.target.rstrip("/") else "."
    return (best.host_path / rest).resolve()


def host_glob(service: str, container_pattern: str, relative_to: str = "/") -> list[Path]:
    """The repository files a container-side glob (e.g. Prometheus's ``rule_files`` entry) matches."""
    directory, pattern = posixpath.split(container_pattern)
    base = host_path(service, directory or ".", relative_to)
    return sorted(Path(p) for p in glob.glob(str(base / pattern)))
