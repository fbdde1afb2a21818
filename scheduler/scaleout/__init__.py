"""Many tenants (CRM portals and orgs) served by Celery workers.

``deployment`` reads the deployment file, ``limiter`` holds the API budgets every
worker shares in Redis, ``dispatch`` decides when each tenant's run is due,
``worker`` runs one tenant's run, ``celery_app`` ties them to Celery, and ``status``
reports per tenant. ``leadsync schedule`` stays the one-machine default; this package
is only imported by the ``worker``, ``beat`` and ``deployment`` commands.
"""
