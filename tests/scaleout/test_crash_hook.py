"""A worker serves many tenants: the crash hook kills the run of the tenant named in
``LEADSYNC_TENANT_CRASH_AT`` at its point, and no other tenant's run."""

from __future__ import annotations

import multiprocessing
import signal

import pytest

from scheduler.scaleout.worker import CRASH_ENV, tenant_crash_hook


def _reach(tenant: str, point: str, times: int) -> None:
    hook = tenant_crash_hook(tenant)
    for _ in range(times):
        hook(point)


@pytest.mark.parametrize(
    ("tenant", "point", "times", "killed"),
    [
        ("acme", "after_intents", 1, False),  # the second time, not the first
        ("acme", "after_intents", 2, True),
        ("globex", "after_intents", 5, False),  # another tenant
        ("acme", "before_cursor", 5, False),  # another point
    ],
)
def test_only_the_named_tenant_dies_at_its_point(
    monkeypatch: pytest.MonkeyPatch, tenant: str, point: str, times: int, killed: bool
) -> None:
    monkeypatch.setenv(CRASH_ENV, "acme:after_intents:2")
    proc = multiprocessing.get_context("fork").Process(target=_reach, args=(tenant, point, times))
    proc.start()
    proc.join(30)
    assert proc.exitcode == (-signal.SIGKILL if killed else 0)
