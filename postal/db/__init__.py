"""Storage: the schema, migrations, the thread-pool runner and one store module per aggregate."""
