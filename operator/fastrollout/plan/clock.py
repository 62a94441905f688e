"""Time as status stores it: RFC 3339 in UTC with a `Z`, to the second (metav1.Time's precision)."""

from datetime import UTC, datetime


def utc(now: datetime) -> datetime:
    """`now` in UTC; a naive datetime is taken to be UTC already."""
    return now.replace(tzinfo=UTC) if now.tzinfo is None else now.astimezone(UTC)


def to_text(moment: datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def from_text(text: str | None) -> datetime | None:
    """Parses what `to_text` wrote (and any RFC 3339 time); None for missing or unreadable values, which
    callers treat as "not recorded" rather than failing the whole reconcile."""
    if not text:
        return None
    try:
        return utc(datetime.fromisoformat(text))
    except ValueError:
        return None


def whole_seconds(now: datetime) -> datetime:
    return utc(now).replace(microsecond=0)
