#!/usr/bin/env python3
"""
Print docs/configuration.md's key table from the attrs tree in postal.config:
every key, its type, default and environment variable.

    python scripts/config_docs.py > docs/configuration.md

tests/test_config.py checks the committed file matches this output.
"""

from __future__ import annotations

import os
import sys

import attrs

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from postal.config import PostalConfig, _KIND, _PATH  # noqa: E402

HEADER = """\
# Configuration

txpostal reads one YAML file: `--config PATH`, else `$POSTAL_CONFIG_FILE_PATH`,
else `./postal.yml`. It is Postal's v2 schema (`version: 2`) with a few
additions (`database`, health ports, `fast`, `processes`); Postal's groups
we do not use (`main_db`, `message_db`, `rails`, `oidc`, `gelf`,
`migration_waiter`) are accepted and ignored, and Postal's
`default_health_server_port` is read as `health_port`.

- **Environment overrides**: every key can be set as `GROUP_KEY` in upper
  case (`SMTP_SERVER_DEFAULT_PORT=2525`, `DATABASE_URL=...`). Lists are
  comma-separated (`POSTAL_SMTP_RELAYS=smtp://a:25,smtp://b:587`);
  booleans are `true/1/yes/on` or `false/0/no/off`.
- **Paths** (marked *path*) are relative to the config file's folder, as is a
  relative SQLite path in `database.url`; `$config-file-root` also names
  that folder.
- **Errors**: an unknown group or key, a wrong type or a bad value stops
  start-up with one line naming the key and why, e.g.
  `postal: configuration error: smtp_server.default_port: 99999 is not a TCP port (0-65535)`.
- **Ports**: every `*port` key is 0-65535; a health port of 0 turns that
  role's health listener off.
- `database.url`: `sqlite:///path` or `postgresql://user:pass@host/db`
  (`postgres://` also works; both use psycopg 3). Default: SQLite in
  `postal.sqlite` beside the config file.

This table is generated from `postal/config.py` by
`python scripts/config_docs.py > docs/configuration.md`.

| key | type | default | environment variable |
|---|---|---|---|
"""


def _default(value: object) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, tuple):
        return ", ".join(value) if value else "[]"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def table() -> str:
    """The whole of docs/configuration.md."""
    defaults = PostalConfig(root="<config dir>")
    rows = []
    for group in attrs.fields(PostalConfig):
        if group.name in ("root", "source"):
            continue
        settings = getattr(defaults, group.name)
        for field in attrs.fields(type(settings)):
            kind = field.metadata[_KIND] + (" (path)" if field.metadata[_PATH] else "")
            default = _default(getattr(settings, field.name))
            if field.metadata[_PATH] and getattr(settings, field.name):
                default = f"<config dir>/{default}"
            if (group.name, field.name) == ("database", "url"):
                default = "sqlite:///<config dir>/postal.sqlite"
            env = f"{group.name}_{field.name}".upper()
            rows.append(f"| `{group.name}.{field.name}` | {kind} | `{default}` | `{env}` |")
    return HEADER + "\n".join(rows) + "\n"


if __name__ == "__main__":
    sys.stdout.write(table())
