"""Writes the example contacts and events next to this file.

The files are committed; this script documents how they were made and keeps the
JSONL and CSV event files identical in content. Every timestamp is relative to one
moment, AS_OF, the moment the examples are meant to be scored at. The committed files
use AS_OF = 2026-06-30T00:00:00Z, so score them with the matching ``--as-of``:

    leadsync score --model examples/models/starter.yaml \\
        --contacts examples/data/contacts.csv --events examples/data/events.jsonl \\
        --as-of 2026-06-30T00:00:00Z

To get the same story relative to today (and score without ``--as-of``), write them
again relative to now, into another folder or over these:

    python examples/data/make_examples.py --as-of now --out my-examples

Run: python examples/data/make_examples.py [--as-of now|2026-06-30] [--out DIR]
"""

from __future__ import annotations

import csv
import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
AS_OF = datetime(2026, 6, 30, tzinfo=UTC)

CONTACT_COLUMNS = [
    "id", "email", "first_name", "last_name", "job_title", "company", "company_size",
    "industry", "country", "lifecycle_stage", "owner_id", "created_at", "product_interest",
]  # fmt: skip

# id, email, first, last, title, company, size, industry, country, stage, owner, created days ago, interest
CONTACTS = [
    ("c01", "dana.whitfield@northwind-logistics.com", "Dana", "Whitfield", "VP of Sales", "Northwind Logistics", "1200", "logistics", "US", "marketingqualifiedlead", "o1", 120, ""),
    ("c02", "sam.patel@gmail.com", "Sam", "Patel", "Student", "", "", "", "IN", "subscriber", "", 40, ""),
    ("c03", "maria.gomez@brightpath.io", "Maria", "Gomez", "Director of Marketing", "Brightpath", "250", "software", "ES", "lead", "o2", 90, ""),
    ("c04", "founder@tinyshop.co", "Lee", "Park", "CEO", "Tiny Shop", "8", "retail", "KR", "lead", "", 200, ""),
    ("c05", "jo.brown@acme-corp.com", "Jo", "Brown", "Marketing Associate", "Acme Corp", "400", "manufacturing", "GB", "lead", "o1", 60, ""),
    ("c06", "analyst@rivalcrm.com", "Alex", "Stone", "Product Manager", "RivalCRM", "300", "software", "US", "lead", "", 30, ""),
    ("c07", "jobhunter88@gmail.com", "Chris", "Lane", "", "", "", "", "US", "subscriber", "", 20, ""),
    ("c08", "kim.ng@orbitbank.com", "Kim", "Ng", "Senior Manager, Operations", "Orbit Bank", "5000", "banking", "SG", "lead", "o2", 150, ""),
    ("c09", "pat.quinn@helixhealth.org", "Pat", "Quinn", "Sales Lead", "Helix Health", "800", "healthcare", "IE", "salesqualifiedlead", "o1", 75, ""),
    ("c10", "r.silva@cloudmint.com", "Rita", "Silva", "CMO", "Cloudmint", "150", "software", "BR", "lead", "o2", 180, ""),
    ("c11", "ola@nordicadvice.no", "Ola", "Nordmann", "Independent Consultant", "Nordic Advice", "3", "consulting", "NO", "lead", "", 50, ""),
    ("c12", "it@greenfield-insurance.com", "Gil", "Moreau", "IT Director", "Greenfield Insurance", "2500", "insurance", "FR", "customer", "o1", 400, "services"),
    ("c13", "h.berg@lakeside-finance.de", "Hanna", "Berg", "Head of Operations", "Lakeside Finance", "3000", "finance", "DE", "lead", "o2", 100, "implementation"),
    ("c14", "new.person@quartzlabs.ai", "Noa", "Levi", "Engineer", "Quartz Labs", "45", "software", "IL", "lead", "", 10, ""),
    ("c15", "old.lead@sleepyco.com", "Otto", "Gray", "Director of IT", "Sleepy Co", "120", "retail", "US", "lead", "", 200, ""),
    ("c16", "no-email-on-file", "Ina", "Rahman", "Sales Manager", "Unknown Ltd", "", "", "", "lead", "", 30, ""),
    ("c17", "vik@fastfreight.com", "Vik", "Rao", "Head of Sales", "Fast Freight", "90", "logistics", "IN", "lead", "o1", 80, ""),
    ("c18", "emma@zurich-pharma.ch", "Emma", "Keller", "Chief Marketing Officer", "Zurich Pharma", "1800", "healthcare", "CH", "marketingqualifiedlead", "o2", 60, ""),
    ("c19", "tom.hale@statehealth.gov", "Tom", "Hale", "Program Manager", "State Health Dept", "900", "government", "US", "opportunity", "", 140, "services"),
    ("c20", "lucy.w@yahoo.co.uk", "Lucy", "Wong", "Director", "", "", "", "GB", "lead", "", 35, ""),
]  # fmt: skip

# contact, type, days before AS_OF, hour (UTC), attributes, timestamp style
EVENTS: list[tuple[str, str, float, int, dict[str, str], str]] = []


def add(
    contact: str, kind: str, days_ago: float, hour: int = 10, style: str = "Z", **attrs: str
) -> None:
    EVENTS.append((contact, kind, days_ago, hour, attrs, style))


# c01: VP of Sales at a large company, pricing on three days, a demo request -> hot, immediate
for day in (1, 3, 6):
    add("c01", "page_view", day, url="https://leadsync.example/pricing")
    add("c01", "page_view", day, hour=11, url="https://leadsync.example/pricing?plan=team")
for day in (2, 4, 8, 12):
    add("c01", "page_view", day, url="https://leadsync.example/product/integrations")
add("c01", "email_open", 9, email_id="nurture-3", campaign="spring")
add("c01", "email_click", 9, email_id="nurture-3", campaign="spring")
add("c01", "form_submit", 1, hour=15, form="demo-request")
add("c01", "meeting_booked", 0.5, hour=9, name="intro call")

# c02: student with a gmail address, a couple of blog reads -> cold
add("c02", "page_view", 5, url="https://leadsync.example/blog/what-is-lead-scoring")
add("c02", "page_view", 5, hour=11, url="https://leadsync.example/blog/lead-scoring-101")
add("c02", "email_open", 6, email_id="newsletter-22")

# c03: director, some pricing interest and e-mail clicks -> warm
add("c03", "page_view", 10, url="https://leadsync.example/pricing")
for day in (11, 14, 20):
    add("c03", "page_view", day, url="https://leadsync.example/blog/scoring-models")
add("c03", "email_click", 12, email_id="nurture-2", campaign="spring")
add("c03", "email_click", 25, email_id="nurture-1", campaign="spring")

# c04: CEO of a tiny shop, active long ago -> decayed, cold
for day in (100, 101, 102):
    add("c04", "page_view", day, url="https://leadsync.example/pricing")
add("c04", "form_submit", 101, form="newsletter")

# c05: marketing associate opening every e-mail: opens are capped -> cold
for day in range(1, 40, 3):
    add("c05", "email_open", day, email_id=f"nurture-{day}")
add("c05", "page_view", 2, url="https://leadsync.example/blog/email-benchmarks")

# c06: competitor studying our pricing page daily -> cold despite the activity
for day in range(1, 10):
    add("c06", "page_view", day, url="https://leadsync.example/pricing")
    add("c06", "page_view", day, hour=12, url="https://leadsync.example/product/scoring")

# c07: job seeker on careers pages -> cold
for day in (2, 3, 4):
    add("c07", "page_view", day, url="https://leadsync.example/careers/backend-engineer")
add("c07", "page_view", 3, url="https://leadsync.example/about")

# c08: senior manager, engaged, then unsubscribed -> penalised
add("c08", "page_view", 15, url="https://leadsync.example/pricing")
add("c08", "email_click", 16, email_id="nurture-4")
add("c08", "email_reply", 14, email_id="nurture-4")
add("c08", "unsubscribe", 7, email_id="newsletter-23")

# c09: sales lead, meeting booked and replies -> warm or hot
add("c09", "meeting_booked", 3, name="discovery")
add("c09", "email_reply", 4, email_id="sdr-1")
add("c09", "email_reply", 2, email_id="sdr-2")
add("c09", "page_view", 3, url="https://leadsync.example/plans")
add("c09", "page_view", 5, url="https://leadsync.example/security")
add("c09", "form_submit", 6, form="whitepaper")

# c10: CMO quiet for 45 days -> first decay step
for day in (45, 46, 50):
    add("c10", "page_view", day, url="https://leadsync.example/product/reports")
add("c10", "email_click", 47, email_id="nurture-1")

# c11: consultant downloading content -> cold
add("c11", "content_download", 8, asset="buyers-guide.pdf")
add("c11", "page_view", 8, url="https://leadsync.example/partners")

# c12: a customer (not scored by the platform model) interested in services
add("c12", "webinar_attended", 20, name="Implementation best practices")
add("c12", "content_download", 18, asset="implementation-checklist.pdf")
add("c12", "page_view", 18, url="https://leadsync.example/services/onboarding")

# c13: finance company, services interest, contact-us form -> services hot, immediate
add("c13", "webinar_attended", 12, name="Implementation best practices")
add("c13", "webinar_attended", 40, name="Data migration")
add("c13", "content_download", 11, asset="implementation-guide.pdf")
add("c13", "page_view", 10, style="+02:00", url="https://leadsync.example/services")
add("c13", "page_view", 9, style="+02:00", url="https://leadsync.example/pricing")
add("c13", "meeting_booked", 5, name="services scoping")
add("c13", "form_submit", 4, style="naive", form="services-contact")

# c14: brand new lead, nothing yet -> cold, no decay
# c15: created 200 days ago and never active -> cold, full decay (nothing to remove)

# c16: address without a domain, a few pages
add("c16", "page_view", 3, url="https://leadsync.example/product")
add("c16", "page_view", 3, hour=12, url="https://leadsync.example/pricing")

# c17: head of sales at a 90-person company, events at UTC midnight and in other zones
add("c17", "page_view", 2, hour=0, url="https://leadsync.example/pricing")
add("c17", "page_view", 2, hour=23, style="-05:00", url="https://leadsync.example/pricing")
add("c17", "page_view", 20, url="https://leadsync.example/blog/hot-leads")
add("c17", "email_click", 3, email_id="nurture-5")
add("c17", "form_submit", 40, form="demo-request")  # older than the 30-day window

# c18: CMO at a large pharma company, heavy engagement -> hot
for day in (1, 2, 5, 7):
    add("c18", "page_view", day, url="https://leadsync.example/pricing")
for day in (1, 2, 3, 5, 8):
    add("c18", "page_view", day, hour=14, url="https://leadsync.example/customers")
add("c18", "email_click", 4, email_id="nurture-6")
add("c18", "email_reply", 4, email_id="nurture-6")
add("c18", "meeting_booked", 2, name="evaluation")

# c19: open opportunity (not scored by the platform model), services webinar
add("c19", "webinar_attended", 30, name="Implementation best practices")

# c20: director with a yahoo address, moderate engagement
add("c20", "page_view", 12, url="https://leadsync.example/pricing")
add("c20", "page_view", 13, url="https://leadsync.example/blog/nurture")
add("c20", "email_open", 14, email_id="newsletter-21")


def stamp(days_ago: float, hour: int, style: str, as_of: datetime = AS_OF) -> str:
    day = (as_of - timedelta(days=days_ago)).replace(hour=0, minute=0, second=0)
    moment = day + timedelta(hours=hour, minutes=7, seconds=30)
    if days_ago < 1:
        moment = as_of - timedelta(hours=6)
    if style == "naive":
        return moment.strftime("%Y-%m-%dT%H:%M:%S")
    if style == "Z":
        return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    sign = 1 if style[0] == "+" else -1
    offset = timedelta(hours=int(style[1:3]), minutes=int(style[4:6])) * sign
    return moment.astimezone(timezone(offset)).isoformat()


def parse_as_of(text: str, now: datetime | None = None) -> datetime:
    """``now`` (today at 00:00 UTC) or an ISO date, read as midnight UTC."""
    if text == "now":
        moment = now or datetime.now(UTC)
        return moment.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    try:
        day = datetime.fromisoformat(text)
    except ValueError:
        message = f"--as-of: expected 'now' or a date such as 2026-06-30, got {text!r}"
        raise SystemExit(message) from None
    if day.tzinfo is None:
        day = day.replace(tzinfo=UTC)
    return day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)


def main(out_dir: Path = HERE, as_of: datetime = AS_OF) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / "contacts.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(CONTACT_COLUMNS)
        for *fields, created_days, interest in CONTACTS:
            created = (as_of - timedelta(days=created_days)).strftime("%Y-%m-%dT09:00:00Z")
            writer.writerow([*fields, created, interest])
    rows = []
    ordered = sorted(EVENTS, key=lambda e: (e[0], -e[2], e[3]))
    for number, (contact, kind, days_ago, hour, attrs, style) in enumerate(ordered, start=1):
        rows.append(
            {
                "id": f"ev{number:03d}",
                "contact_id": contact,
                "type": kind,
                "occurred_at": stamp(days_ago, hour, style, as_of),
                **attrs,
            }
        )
    with open(out_dir / "events.jsonl", "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    attributes = sorted(
        {key for row in rows for key in row} - {"id", "contact_id", "type", "occurred_at"}
    )
    columns = ["id", "contact_id", "type", "occurred_at", *attributes]
    with open(out_dir / "events.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    import argparse

    parser = argparse.ArgumentParser(description="Write the example contacts and events.")
    parser.add_argument("--as-of", default=AS_OF.date().isoformat(), help="now or a date")
    parser.add_argument("--out", type=Path, default=HERE, help="folder to write to")
    args = parser.parse_args()
    main(args.out, parse_as_of(args.as_of))
