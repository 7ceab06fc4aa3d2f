"""The names README and the guides promise on `covet_otel` itself."""

from __future__ import annotations

import subprocess
import sys

import pytest

import covet_otel


@pytest.mark.parametrize("name", sorted(covet_otel._LAZY))
def test_lazy_public_names_resolve(name: str) -> None:
    assert callable(getattr(covet_otel, name))


def test_unknown_attribute_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        covet_otel.nope  # noqa: B018


def test_importing_covet_otel_does_not_import_the_recording_modules() -> None:
    code = "import sys, covet_otel; print(sorted(m for m in sys.modules if m.startswith('covet_otel.')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "covet_otel.events" not in out and "covet_otel.health" not in out
