# -*- test-case-name: tests.smtp.test_smuggling -*-
"""
Reading the DATA body: only C{CRLF . CRLF} ends it (a lone LF or CR never
does, which is what SMTP smuggling exploits), leading dots are unstuffed
only at the start of a CRLF-delimited line, and bytes beyond the size limit
are counted but not kept.
"""

from __future__ import annotations

import attrs

__all__ = ["DataReader"]

_MARK = b"\r\n."


@attrs.define
class DataReader:
    """
    Feed it raw bytes with L{feed}; once C{done}, C{body()} is the message
    (or None if it was too large) and C{rest} holds bytes after the
    terminator (pipelined commands).

    A virtual CRLF precedes the data so that a C{.} on the very first line
    is handled like any other line start; it is dropped from the body.
    """

    limit: int
    _pending: bytes = b"\r\n"
    _chunks: list[bytes] = attrs.field(factory=list)
    size: int = -2
    too_large: bool = False
    done: bool = False
    rest: bytes = b""

    def _emit(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            self.too_large = True
            self._chunks = []
        if not self.too_large:
            self._chunks.append(chunk)

    def feed(self, data: bytes) -> None:
        """Consume C{data}; sets C{done} and C{rest} at the terminator."""
        buffer = self._pending + data
        position = 0
        while True:
            index = buffer.find(_MARK, position)
            if index < 0:
                break
            after = buffer[index + 3:index + 5]
            if len(after) < 2 and b"\r\n".startswith(after):
                # Could still be the terminator: wait for more bytes.
                self._emit(buffer[position:index])
                self._pending = buffer[index:]
                return
            self._emit(buffer[position:index + 2])
            if after == b"\r\n":
                self.done = True
                self.rest = buffer[index + 5:]
                self._pending = b""
                return
            position = index + 3  # drop the stuffed dot
        # Keep a trailing CR or CRLF: it may start the next mark.
        keep = 2 if buffer.endswith(b"\r\n") else 1 if buffer.endswith(b"\r") else 0
        end = max(position, len(buffer) - keep)
        self._emit(buffer[position:end])
        self._pending = buffer[end:]

    def body(self) -> bytes | None:
        if self.too_large:
            return None
        data = b"".join(self._chunks)
        return data[2:]
