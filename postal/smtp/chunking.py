# -*- test-case-name: tests.smtp.test_chunking -*-
"""
CHUNKING (RFC 3030): the C{BDAT <size> [LAST]} argument, and the message
assembled from its chunks (no dot-stuffing; bytes beyond the size limit are
counted, not kept).
"""

from __future__ import annotations

import attrs

__all__ = ["parse_bdat", "ChunkedBody"]


def parse_bdat(argument: str) -> tuple[int, bool] | None:
    """C{"1024 LAST"} to C{(1024, True)}; None when malformed."""
    words = argument.split()
    if not 1 <= len(words) <= 2 or not words[0].isdigit():
        return None
    if len(words) == 2 and words[1].upper() != "LAST":
        return None
    return int(words[0]), len(words) == 2


@attrs.define
class ChunkedBody:
    """The chunks of one BDAT transaction so far."""

    limit: int
    size: int = 0
    _parts: list[bytes] = attrs.field(factory=list)

    def add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            self._parts = []
        else:
            self._parts.append(data)

    @property
    def too_large(self) -> bool:
        return self.size > self.limit

    def body(self) -> bytes | None:
        return None if self.too_large else b"".join(self._parts)
