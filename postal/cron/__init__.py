"""
The cron role: scheduled tasks (hold expiry, retention, pruning, send-limit
notices, DNS re-checks, purging deleted accounts) run by one active
process per installation.
"""

__all__: list[str] = []
