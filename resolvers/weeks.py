"""ISO weeks in the organisation's time zone.

A week starts on Monday 00:00 local time. It is stored as the date of that Monday and
shown as an ISO week string ("2026-W48"). A moment's week is found from its local
date, so an activity completed on Sunday 23:30 local time counts for that week
whatever the UTC offset is that night (daylight saving changes on Sundays).
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")

MAX_WEEKS = 106  # two years of weeks in one history


class WeekError(ValueError):
    """Text that is not an ISO week or a date; the message says what is expected."""


def monday_of(day: date) -> date:
    return day - timedelta(days=day.weekday())


def week_of(moment: datetime, timezone: str) -> date:
    """The Monday of the week ``moment`` falls in, in ``timezone``."""
    if moment.tzinfo is None:
        raise ValueError("naive datetime given where an aware one is required")
    return monday_of(moment.astimezone(ZoneInfo(timezone)).date())


def current_week(timezone: str) -> date:
    return week_of(datetime.now(UTC), timezone)


def parse_week(text: str) -> date:
    """An ISO week ("2026-W48") or any date in it ("2026-11-25"), as its Monday."""
    text = text.strip()
    if match := _WEEK.match(text):
        year, week = int(match.group(1)), int(match.group(2))
        try:
            return date.fromisocalendar(year, week, 1)
        except ValueError:
            raise WeekError(f"{text!r}: {year} has no ISO week {week}") from None
    if _DATE.match(text):
        try:
            return monday_of(date.fromisoformat(text))
        except ValueError:
            raise WeekError(f"{text!r} is not a valid date") from None
    raise WeekError(f"{text!r} is not an ISO week such as 2026-W48 or a date such as "
                    "2026-11-25")


def format_week(monday: date) -> str:
    year, week, _ = monday.isocalendar()
    return f"{year}-W{week:02d}"


def week_bounds(monday: date, timezone: str) -> tuple[datetime, datetime]:
    """[start, end) of the week in UTC: 168 hours, or one less or more across a
    daylight saving change."""
    zone = ZoneInfo(timezone)
    start = datetime.combine(monday, time.min, tzinfo=zone)
    end = datetime.combine(monday + timedelta(days=7), time.min, tzinfo=zone)
    return start.astimezone(UTC), end.astimezone(UTC)


def weeks_between(first: date, last: date) -> list[date]:
    return [first + timedelta(weeks=n) for n in range((last - first).days // 7 + 1)]
