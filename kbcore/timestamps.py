"""Time as Kubernetes writes it: RFC 3339 timestamps to and from seconds since the epoch.

Pure arithmetic on values the caller passes in; nothing here reads a clock. The planners write
condition and Lease times with `rfc3339` and read them back with `parse_rfc3339`.
"""

from __future__ import annotations

import datetime as dt
import math
import re


def rfc3339(epoch_seconds: float) -> str:
    """`epoch_seconds` as Kubernetes writes a Time: UTC, whole seconds (floored), `Z`."""
    at = _EPOCH + dt.timedelta(seconds=math.floor(epoch_seconds))
    return at.isoformat() + "Z"


# RFC 3339 as Kubernetes writes Time and MicroTime (Go's time.RFC3339[Nano] in UTC). Go cannot
# write a leap second nor another offset there, and fromisoformat alone would also accept ISO
# 8601 forms that are not RFC 3339 (no seconds, a space for the `T`, week dates).
_STAMP = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z", re.ASCII)
_EPOCH = dt.datetime(1970, 1, 1)


def parse_rfc3339(stamp: str) -> float | None:
    """Seconds since the epoch of an RFC 3339 UTC timestamp (`Z`, optional fraction, as Time
    and MicroTime are written); None when it is not one."""
    if not _STAMP.fullmatch(stamp):
        return None
    try:
        at = dt.datetime.fromisoformat(stamp[:19])
    except ValueError:  # a month, day or time of day out of range
        return None
    # The fraction is added as a float of the seconds' text, all digits kept (fromisoformat
    # stops at microseconds; Go writes nanoseconds).
    days = (at - _EPOCH).days
    return days * 86400 + (at.hour * 3600 + at.minute * 60 + float(stamp[17:-1]))
