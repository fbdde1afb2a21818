"""Salesforce record ids: 15 case-sensitive characters plus a 3-character checksum.

Ids encode the table row number in base 62 so that lookups by id need no hash map
(100,000 people plus millions of activities stay compact), and ids of one object
sort in creation order, as real ids from one pod roughly do.
"""

from __future__ import annotations

_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_DIGIT = {c: i for i, c in enumerate(_ALPHABET)}
_SUFFIX = "ABCDEFGHIJKLMNOPQRSTUVWXYZ012345"
POD = "8c0"  # instance + reserved characters, fixed for the sandbox

KEY_PREFIXES: dict[str, str] = {
    "Account": "001",
    "Contact": "003",
    "User": "005",
    "Opportunity": "006",
    "OpportunityContactRole": "00K",
    "Lead": "00Q",
    "Task": "00T",
    "Event": "00U",
    "Group": "00G",
    "Campaign": "701",
    "CampaignMember": "00v",
    "Organization": "00D",
    "QueryLocator": "01g",
}
OBJECT_BY_PREFIX = {v: k for k, v in KEY_PREFIXES.items()}


def _suffix(id15: str) -> str:
    out = []
    for chunk in range(3):
        flags = 0
        for bit, char in enumerate(id15[chunk * 5 : chunk * 5 + 5]):
            if "A" <= char <= "Z":
                flags |= 1 << bit
        out.append(_SUFFIX[flags])
    return "".join(out)


def make_id(sobject: str, seq: int) -> str:
    """The 18-character id of row ``seq`` of ``sobject``."""
    digits = []
    n = seq
    for _ in range(9):
        n, rem = divmod(n, 62)
        digits.append(_ALPHABET[rem])
    id15 = KEY_PREFIXES[sobject] + POD + "".join(reversed(digits))
    return id15 + _suffix(id15)


def parse_id(value: str) -> tuple[str, int] | None:
    """``(sobject, seq)`` for a 15- or 18-character id minted here, else ``None``."""
    if len(value) not in (15, 18) or value[3:6] != POD:
        return None
    sobject = OBJECT_BY_PREFIX.get(value[:3])
    if sobject is None:
        return None
    seq = 0
    for char in value[6:15]:
        digit = _DIGIT.get(char)
        if digit is None:
            return None
        seq = seq * 62 + digit
    if len(value) == 18 and value[15:].upper() != _suffix(value[:15]):
        return None
    return sobject, seq


def normalise_id(value: str) -> str:
    """The 18-character form of a 15- or 18-character id (others unchanged)."""
    parsed = parse_id(value)
    if parsed is None:
        return value
    return make_id(*parsed)
