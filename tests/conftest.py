"""Fixtures every test folder may use. This folder is on ``sys.path`` (pytest puts a
root conftest's folder there), so shared helper modules such as ``model_texts``
import by name."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest


@pytest.fixture
def model_file(tmp_path: Path) -> Callable[[str, str], Path]:
    """Write a model text to ``tmp_path/<name>`` (default ``m.yaml``) and return the path."""

    def write(text: str, name: str = "m.yaml") -> Path:
        path = tmp_path / name
        path.write_text(text)
        return path

    return write
