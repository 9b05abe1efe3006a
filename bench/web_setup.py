"""
Prepare a database for the web API benchmark: migrate it, then create an
organization, a server, an API credential and a verified domain.  Prints the
API key.  Usage: python bench/web_setup.py DATABASE_URL
"""

from __future__ import annotations

import sys

from postal.db import credentials, domains, organizations, servers
from postal.db.migrate import upgrade
from postal.db.pool import SynchronousDatabasePool, make_engine

KEY = "BenchAPIKey0123456789abc"


def main(url: str) -> None:
    engine = make_engine(url)
    upgrade(engine)
    pool = SynchronousDatabasePool(engine)
    org = pool.call("org", organizations.create_organization_txn, 1.0, "Bench", None, None)
    server = pool.call("server", servers.create_server_txn, 1.0, "bench", "Main", None)
    pool.call("cred", credentials.create_credential_txn, 1.0, server.id, "API", key=KEY)
    pool.call("domain", domains.create_domain_txn, 1.0, org.id, server.id, "bench.test", True)
    engine.dispose()
    print(KEY)


if __name__ == "__main__":
    main(sys.argv[1])
