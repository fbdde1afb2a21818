"""The canonical names: event types and contact fields every connector speaks.

Declared once, here at the bottom layer, so that connectors map to these names
instead of repeating string literals, and so that ``leadsync check`` can tell a typo
(``page_veiw``) from a name the data really carries (docs/scoring.md, "Contacts and
events"). Other names stay allowed: files and mapped custom fields may carry any.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = [
    "CONTACT_FIELDS",
    "EVENT_TYPES",
    "edit_distance",
    "near_misses",
]

# Event types (EventRecord.type).
PAGE_VIEW = "page_view"
EMAIL_SEND = "email_send"
EMAIL_OPEN = "email_open"
EMAIL_CLICK = "email_click"
EMAIL_REPLY = "email_reply"
FORM_SUBMIT = "form_submit"
MEETING_BOOKED = "meeting_booked"
MEETING_CANCELLED = "meeting_cancelled"
CALL = "call"
NOTE = "note"
WEBINAR_ATTENDED = "webinar_attended"
CONTENT_DOWNLOAD = "content_download"
UNSUBSCRIBE = "unsubscribe"
APP_EVENT = "app_event"

EVENT_TYPES: frozenset[str] = frozenset(
    {
        PAGE_VIEW,
        EMAIL_SEND,
        EMAIL_OPEN,
        EMAIL_CLICK,
        EMAIL_REPLY,
        FORM_SUBMIT,
        MEETING_BOOKED,
        MEETING_CANCELLED,
        CALL,
        NOTE,
        WEBINAR_ATTENDED,
        CONTENT_DOWNLOAD,
        UNSUBSCRIBE,
        APP_EVENT,
    }
)

# Contact fields (ContactRecord.fields).
ID = "id"
EMAIL = "email"
FIRST_NAME = "first_name"
LAST_NAME = "last_name"
JOB_TITLE = "job_title"
COMPANY = "company"
COMPANY_SIZE = "company_size"
INDUSTRY = "industry"
COUNTRY = "country"
LIFECYCLE_STAGE = "lifecycle_stage"
LEAD_STATUS = "lead_status"
OWNER_ID = "owner_id"
CREATED_AT = "created_at"
UPDATED_AT = "updated_at"

CONTACT_FIELDS: frozenset[str] = frozenset(
    {
        ID,
        EMAIL,
        FIRST_NAME,
        LAST_NAME,
        JOB_TITLE,
        COMPANY,
        COMPANY_SIZE,
        INDUSTRY,
        COUNTRY,
        LIFECYCLE_STAGE,
        LEAD_STATUS,
        OWNER_ID,
        CREATED_AT,
        UPDATED_AT,
    }
)

# The lifecycle stages a CRM such as HubSpot moves a person through, in order, and the
# fields that date when the person entered each one. The sync keeps those dates with
# the contact, so that a backtest can tell the stage as of a past day instead of
# trusting today's stage, which the CRM changes at conversion.
LIFECYCLE_STAGES: tuple[str, ...] = (
    "subscriber",
    "lead",
    "marketingqualifiedlead",
    "salesqualifiedlead",
    "opportunity",
    "customer",
    "evangelist",
    "other",
)
STAGE_DATE_PREFIX = "hs_lifecyclestage_"
STAGE_DATE_SUFFIX = "_date"
STAGE_DATE_FIELDS: frozenset[str] = frozenset(
    f"{STAGE_DATE_PREFIX}{stage}{STAGE_DATE_SUFFIX}" for stage in LIFECYCLE_STAGES
)

# Canonical contact fields that hold numbers (CSV gives text; readers convert once).
NUMERIC_FIELDS: frozenset[str] = frozenset({COMPANY_SIZE})


def edit_distance(a: str, b: str, *, limit: int | None = None) -> int:
    """Levenshtein distance, with transpositions counting once (``veiw``/``view``:
    one), the commonest typo. With ``limit``, any value above it means "too far"."""
    if a == b:
        return 0
    if limit is not None and abs(len(a) - len(b)) > limit:
        return limit + 1
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        current = [i] + [0] * len(b)
        for j, cb in enumerate(b, 1):
            cost = 0 if ca == cb else 1
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                current[j] = min(current[j], previous2[j - 2] + 1)
        previous2, previous = previous, current
    return previous[-1]


def near_misses(name: str, known: Iterable[str], *, distance: int = 2) -> list[str]:
    """The known names within ``distance`` edits of ``name``, closest first; empty
    when ``name`` is itself known (a known name is never a typo)."""
    names = set(known)
    if name in names:
        return []
    scored = sorted(
        (d, other)
        for other in names
        if (d := edit_distance(name, other, limit=distance)) <= distance
        # very short names are all within two edits of each other ("call", "id")
        and d < max(len(other), len(name))
    )
    return [other for _, other in scored]
