"""`build(config, out_dir)`: write every generated consumer file from one MixinConfig.

Each writer owns its folder under `out_dir` (alerts/, grafana/, runbooks/) and writes its files
deterministically (sorted keys, no timestamps), so the committed copies can be compared byte for
byte with a fresh build.
"""

from __future__ import annotations

from pathlib import Path

from .config import MixinConfig

REPO_ROOT = Path(__file__).resolve().parents[2]


def build(config: MixinConfig, out_dir: Path = REPO_ROOT) -> list[Path]:
    """Write every generated file under `out_dir`; returns the paths written."""
    from . import alerts

    out_dir = Path(out_dir)
    written: list[Path] = []
    written += alerts.write(config, out_dir / "alerts")
    # dashboards and runbooks writers: one call each, added by their owners
    from . import dashboards, runbooks

    written += dashboards.write(config, out_dir / "grafana")

    written += runbooks.write(config, out_dir / "runbooks")

    # the alert table of docs/alerts.md, where out_dir has that page (the repository)
    from . import alerts_doc

    doc = out_dir / "docs" / "alerts.md"
    if doc.is_file():
        alerts_doc.update(config, doc)
        written.append(doc)
    return written
