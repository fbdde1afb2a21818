"""``leadsync serve``: CRM webhooks and product events in, an inbox, a worker draining it.

Modules: :mod:`.settings` (the ``serve:`` section), :mod:`.config` (reading it with the
rest of leadsync.yaml), :mod:`.signatures`, :mod:`.intake` (parsing), :mod:`.inbox`
(the durable table), :mod:`.worker` (the :class:`~.worker.Processor` seam and the
drainer), :mod:`.metrics`, :mod:`.app` (Starlette), :mod:`.runner` (uvicorn).
See docs/realtime.md.
"""
