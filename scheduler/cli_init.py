"""``leadsync init``: a commented ``leadsync.yaml`` and the starter model, to edit."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add ``init`` to the ``leadsync`` app."""
