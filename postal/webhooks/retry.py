# -*- test-case-name: tests.webhooks.test_sender -*-
"""
Postal's webhook retry schedule: after failed attempt N (1-5) wait 2, 3, 6,
10 or 15 minutes; the sixth failure is final.
"""

from __future__ import annotations

__all__ = ["RETRY_DELAYS", "MAX_ATTEMPTS", "retry_delay"]

RETRY_DELAYS = (120.0, 180.0, 360.0, 600.0, 900.0)
MAX_ATTEMPTS = len(RETRY_DELAYS) + 1


def retry_delay(failed_attempt: int) -> float | None:
    """Seconds to wait after failed attempt C{failed_attempt} (1-based), or None to give up."""
    if 1 <= failed_attempt <= len(RETRY_DELAYS):
        return RETRY_DELAYS[failed_attempt - 1]
    return None
