"""Start ``scheduler.cli_scale`` the way the tests' subprocesses need it.

Until connectors take the shared limiter from their runtime context, this wraps the
HubSpot transport's pacing so that every call first reserves in the deployment's
Redis budget; once ``RuntimeContext`` has a ``limiter`` it does nothing more than
start the command."""

from __future__ import annotations

import dataclasses
import hashlib
import sys
import time
from typing import Any


def _limit_hubspot_calls() -> None:
    from connectors.base import RuntimeContext

    if "limiter" in {f.name for f in dataclasses.fields(RuntimeContext)}:
        return
    from connectors.hubspot import transport

    args = sys.argv
    path = args[args.index("--deployment") + 1]
    from scheduler.scaleout.deployment import load_deployment
    from scheduler.scaleout.limiter import limiter_for

    limiter_box: dict[str, Any] = {}
    original_init = transport.HubSpotTransport.__init__

    def init(self: Any, *a: Any, **kw: Any) -> None:
        original_init(self, *a, **kw)
        token = kw.get("access_token") or ""
        bucket = "hubspot:" + hashlib.sha256(token.encode()).hexdigest()[:16]
        meter = self.meter
        original_before = meter.before_call

        def before_call(kind: str) -> Any:
            if "limiter" not in limiter_box:  # after the fork: one per pool process
                limiter_box["limiter"] = limiter_for(load_deployment(path))
            limiter = limiter_box["limiter"]
            name = bucket + (":search" if kind == "search" else "")
            while (wait := limiter.reserve(name)) > 0:
                time.sleep(wait)
            return original_before(kind)

        meter.before_call = before_call

    transport.HubSpotTransport.__init__ = init  # type: ignore[method-assign]


if __name__ == "__main__":
    _limit_hubspot_calls()
    from scheduler.cli_scale import main

    sys.argv[0] = "leadsync"
    main()
