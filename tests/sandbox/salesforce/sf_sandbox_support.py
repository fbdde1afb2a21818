"""Helpers shared by the Salesforce sandbox tests (importable: pytest puts this
directory on sys.path, as the directory holds no ``__init__.py``)."""

from __future__ import annotations

from typing import Any

import requests


class PinnedSession(requests.Session):
    """A session whose CA wins over REQUESTS_CA_BUNDLE, which requests otherwise prefers
    to ``session.verify``."""

    def __init__(self, ca_path: str) -> None:
        super().__init__()
        self.verify = ca_path

    def merge_environment_settings(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        settings: dict[str, Any] = super().merge_environment_settings(*args, **kwargs)
        settings["verify"] = self.verify
        return settings
