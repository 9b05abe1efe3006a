"""Turning SQLAlchemy rows into frozen attrs records at the thread boundary."""

from __future__ import annotations

from typing import Any, TypeVar

import attrs

_T = TypeVar("_T")


def to_record(cls: type[_T], row: Any) -> _T:
    """Build C{cls} from the row's columns that C{cls} has fields for."""
    mapping = row._mapping
    names = [f.name for f in attrs.fields(cls)]  # type: ignore[arg-type]
    return cls(**{name: mapping[name] for name in names if name in mapping})


def to_record_or_none(cls: type[_T], row: Any) -> _T | None:
    return None if row is None else to_record(cls, row)


def inserted_id(result: Any) -> int:
    """The primary key of the row an INSERT made."""
    key = result.inserted_primary_key
    assert key is not None
    return int(key[0])
