"""One line for peers-bench's "queue after" column: rows left in queued_messages."""
import sqlite3
import sys

conn = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True, timeout=30)
queued = conn.execute("SELECT count(*) FROM queued_messages").fetchone()[0]
statuses = conn.execute("SELECT status, count(*) FROM messages GROUP BY status ORDER BY status").fetchall()
print(f"queued rows: {queued}; messages: " + ", ".join(f"{s} {n}" for s, n in statuses))
