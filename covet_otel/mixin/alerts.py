"""Prometheus rule files (alerts/rules/) generated from the MixinConfig."""

from __future__ import annotations

from pathlib import Path

from .config import MixinConfig


def write(config: MixinConfig, out_dir: Path) -> list[Path]:
    return []
