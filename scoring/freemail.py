"""The built-in list of free e-mail domains (``free_email`` match operator).

A lead writing from gmail.com tells us little about a company, so starter models
penalise it. The list ships as package data so that an installed wheel works outside
a checkout; a model adds its own domains under ``free_email_domains``.
"""

from __future__ import annotations

from functools import cache
from importlib.resources import files

__all__ = ["default_free_email_domains", "parse_domain_list"]


def parse_domain_list(text: str) -> frozenset[str]:
    """One domain per line; ``#`` starts a comment; case and a leading ``@`` are ignored."""
    domains: set[str] = set()
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip().lower().lstrip("@")
        if line:
            domains.add(line)
    return frozenset(domains)


@cache
def default_free_email_domains() -> frozenset[str]:
    """The packaged list, read once per process."""
    resource = files("scoring").joinpath("data", "free_email_domains.txt")
    return parse_domain_list(resource.read_text(encoding="utf-8"))
