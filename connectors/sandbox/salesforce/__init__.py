"""A fake Salesforce org for tests, demos and benchmarks (REST API v59.0).

``SalesforceSandbox`` is a ``connectors.sandbox.framework.Flavour``: wrap it in a
``SandboxApp`` and either ``serve(app, port=0, tls=True)`` (simple-salesforce only
builds ``https://`` URLs, so the server speaks TLS with a throw-away CA) or
``mount_responses(app, rsps, base_url)`` for requests-based tests without sockets.

Modelled: SOQL ``query``/``queryAll`` with paging (``nextRecordsUrl`` paths, 2,000 a
page) over a real parser (see :mod:`.soql` for the grammar); sObject create, get,
update, upsert by external id, delete and ``describe`` for Lead, Contact, Account,
Opportunity, OpportunityContactRole, Task, Event, Campaign, CampaignMember, User
(and the lead queue as a read-only Group); sObject Collections (200 records,
``allOrNone``) including upsert; ``limits``; the OAuth token endpoint (JWT bearer,
refresh token, client credentials); sessions that expire; the rolling daily API
allocation with ``Sforce-Limit-Info``; required fields, unknown fields, unique and
external-id custom fields; modification stamps that advance on every write.

Not modelled: Bulk API, SOSL, Apex, Metadata/Tooling API (custom fields come from the
constructor or :meth:`SalesforceSandbox.add_custom_field`), sub-queries, aggregates
other than ``COUNT()``, date functions, relative date literals beyond ``TODAY``,
``YESTERDAY``, ``TOMORROW``, ``LAST_N_DAYS:n`` and ``NEXT_N_DAYS:n``, lead conversion through the API, field-level security, record
types, validation rules, triggers, page views and e-mail opens (no core object holds
them). See ``README.md`` next to this file for the details and the choices made.
"""

from .sandbox import SalesforceSandbox

__all__ = ["SalesforceSandbox"]
