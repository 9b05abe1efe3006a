# -*- test-case-name: tests.db.test_migrations -*-
"""
The whole data model as SQLAlchemy Core tables (postal-behaviour.md section 2).

One schema for everything: Postal's per-server message databases become
tables with a C{server_id} column.  Times are epoch seconds as floats, as
Postal stores them.  Alembic migrations (L{postal.db.migrations}) must
produce exactly this metadata; a test compares them.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

__all__ = ["metadata"]

metadata = MetaData(
    naming_convention={
        "ix": "ix_%(column_0_label)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

# Identifiers that are ours to keep as an integer primary key everywhere.
_ID = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", _ID, primary_key=True, autoincrement=True)


def _uuid() -> Column[str]:
    return Column("uuid", String(36), nullable=False, unique=True)


def _created() -> Column[float]:
    return Column("created_at", Float, nullable=False)


def _fk(name: str, target: str, *, nullable: bool = False, ondelete: str | None = "CASCADE") -> Column[int]:
    return Column(name, _ID, ForeignKey(target, ondelete=ondelete), nullable=nullable)


# ---------------------------------------------------------------- accounts

users = Table(
    "users", metadata,
    _id(), _uuid(),
    Column("first_name", String(255), nullable=False),
    Column("last_name", String(255), nullable=False),
    Column("email_address", String(255), nullable=False, unique=True),
    Column("password_digest", String(255)),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    Column("admin", Boolean, nullable=False, default=False),
    Column("password_reset_token", String(64)),
    Column("password_reset_token_valid_until", Float),
    Column("oidc_uid", String(255)),
    Column("oidc_issuer", String(255)),
    _created(),
    Column("updated_at", Float, nullable=False),
)

user_sessions = Table(
    "user_sessions", metadata,
    _id(),
    Column("token_hash", String(64), nullable=False, unique=True),
    _fk("user_id", "users.id"),
    Column("active", Boolean, nullable=False, default=True),
    Column("persistent", Boolean, nullable=False, default=False),
    Column("expires_at", Float),
    Column("login_ip", String(64)),
    Column("user_agent", String(512)),
    Column("last_activity_at", Float),
    _created(),
)

ip_pools = Table(
    "ip_pools", metadata,
    _id(), _uuid(),
    Column("name", String(255), nullable=False),
    Column("default", Boolean, nullable=False, default=False),
    _created(),
)

ip_addresses = Table(
    "ip_addresses", metadata,
    _id(),
    _fk("ip_pool_id", "ip_pools.id"),
    Column("ipv4", String(45), nullable=False, unique=True),
    Column("ipv6", String(45), unique=True),
    Column("hostname", String(255), nullable=False),
    Column("priority", Integer, nullable=False, default=100),
    _created(),
)

organizations = Table(
    "organizations", metadata,
    _id(), _uuid(),
    Column("name", String(255), nullable=False),
    Column("permalink", String(255), nullable=False, unique=True),
    Column("time_zone", String(64), nullable=False, default="UTC"),
    _fk("owner_id", "users.id", nullable=True, ondelete="SET NULL"),
    _fk("ip_pool_id", "ip_pools.id", nullable=True, ondelete="SET NULL"),
    Column("deleted_at", Float),
    Column("suspended_at", Float),
    Column("suspension_reason", String(255)),
    _created(),
    Column("updated_at", Float, nullable=False),
)

organization_users = Table(
    "organization_users", metadata,
    _id(),
    _fk("organization_id", "organizations.id"),
    _fk("user_id", "users.id"),
    Column("admin", Boolean, nullable=False, default=False),
    Column("all_servers", Boolean, nullable=False, default=True),
    _created(),
    UniqueConstraint("organization_id", "user_id", name="uq_organization_users_org_user"),
)

organization_ip_pools = Table(
    "organization_ip_pools", metadata,
    _id(),
    _fk("organization_id", "organizations.id"),
    _fk("ip_pool_id", "ip_pools.id"),
    _created(),
    UniqueConstraint("organization_id", "ip_pool_id", name="uq_organization_ip_pools_org_pool"),
)

# ---------------------------------------------------------------- servers

servers = Table(
    "servers", metadata,
    _id(), _uuid(),
    _fk("organization_id", "organizations.id"),
    Column("name", String(255), nullable=False),
    Column("permalink", String(255), nullable=False),
    Column("token", String(32), nullable=False, unique=True),
    Column("mode", String(20), nullable=False, default="Live"),
    _fk("ip_pool_id", "ip_pools.id", nullable=True, ondelete="SET NULL"),
    Column("send_limit", Integer),
    Column("send_limit_approaching_at", Float),
    Column("send_limit_approaching_notified_at", Float),
    Column("send_limit_exceeded_at", Float),
    Column("send_limit_exceeded_notified_at", Float),
    Column("message_retention_days", Integer, default=60),
    Column("raw_message_retention_days", Integer, default=30),
    Column("raw_message_retention_size", Integer, default=2048),
    Column("spam_threshold", Float, nullable=False, default=5),
    Column("spam_failure_threshold", Float, nullable=False, default=20),
    Column("outbound_spam_threshold", Float),
    Column("postmaster_address", String(255)),
    Column("allow_sender", Boolean, nullable=False, default=False),
    Column("privacy_mode", Boolean, nullable=False, default=False),
    Column("log_smtp_data", Boolean, nullable=False, default=False),
    Column("suspended_at", Float),
    Column("suspension_reason", String(255)),
    Column("deleted_at", Float),
    _created(),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("organization_id", "permalink", name="uq_servers_org_permalink"),
    UniqueConstraint("organization_id", "name", name="uq_servers_org_name"),
)

domains = Table(
    "domains", metadata,
    _id(), _uuid(),
    # Owner: always an organization; server_id set when the server owns it.
    _fk("organization_id", "organizations.id"),
    _fk("server_id", "servers.id", nullable=True),
    Column("name", String(255), nullable=False),
    Column("verification_method", String(10), nullable=False, default="DNS"),
    Column("verification_token", String(255), nullable=False),
    Column("verified_at", Float),
    Column("dkim_private_key", Text, nullable=False),
    Column("dkim_identifier_string", String(32), nullable=False),
    Column("dkim_ed25519_private_key", Text),
    Column("dns_checked_at", Float),
    Column("spf_status", String(16)),
    Column("spf_error", String(512)),
    Column("dkim_status", String(16)),
    Column("dkim_error", String(512)),
    Column("mx_status", String(16)),
    Column("mx_error", String(512)),
    Column("return_path_status", String(16)),
    Column("return_path_error", String(512)),
    Column("use_for_any", Boolean, nullable=False, default=False),
    _created(),
    Column("updated_at", Float, nullable=False),
    UniqueConstraint("organization_id", "server_id", "name", name="uq_domains_owner_name"),
    Index("ix_domains_name", "name"),
)

track_domains = Table(
    "track_domains", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    _fk("domain_id", "domains.id"),
    Column("name", String(63), nullable=False),
    Column("dns_checked_at", Float),
    Column("dns_status", String(16)),
    Column("dns_error", String(512)),
    Column("ssl_enabled", Boolean, nullable=False, default=True),
    Column("track_clicks", Boolean, nullable=False, default=True),
    Column("track_loads", Boolean, nullable=False, default=True),
    Column("excluded_click_domains", Text),
    _created(),
    UniqueConstraint("domain_id", "name", name="uq_track_domains_domain_name"),
)

credentials = Table(
    "credentials", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    Column("type", String(10), nullable=False),
    Column("name", String(255)),
    Column("key", String(255), nullable=False, unique=True),
    Column("hold", Boolean, nullable=False, default=False),
    Column("last_used_at", Float),
    _created(),
)

http_endpoints = Table(
    "http_endpoints", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    Column("name", String(255), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("encoding", String(20), nullable=False, default="BodyAsJSON"),
    Column("format", String(20), nullable=False, default="Hash"),
    Column("strip_replies", Boolean, nullable=False, default=False),
    Column("include_attachments", Boolean, nullable=False, default=True),
    Column("timeout", Integer, nullable=False, default=5),
    Column("last_used_at", Float),
    _created(),
)

smtp_endpoints = Table(
    "smtp_endpoints", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    Column("name", String(255), nullable=False),
    Column("hostname", String(255), nullable=False),
    Column("port", Integer, nullable=False, default=25),
    Column("ssl_mode", String(10), nullable=False, default="Auto"),
    Column("last_used_at", Float),
    _created(),
)

address_endpoints = Table(
    "address_endpoints", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    Column("address", String(255), nullable=False),
    Column("last_used_at", Float),
    _created(),
    UniqueConstraint("server_id", "address", name="uq_address_endpoints_server_address"),
)

routes = Table(
    "routes", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    _fk("domain_id", "domains.id", nullable=True),
    Column("name", String(255), nullable=False),
    Column("token", String(16), nullable=False, unique=True),
    Column("mode", String(20), nullable=False, default="Endpoint"),
    Column("spam_mode", String(20), nullable=False, default="Mark"),
    Column("endpoint_type", String(20)),
    Column("endpoint_id", _ID),
    _created(),
    # Postal: (route name, domain) is unique across all servers.
    UniqueConstraint("domain_id", "name", name="uq_routes_domain_name"),
)

additional_route_endpoints = Table(
    "additional_route_endpoints", metadata,
    _id(),
    _fk("route_id", "routes.id"),
    Column("endpoint_type", String(20), nullable=False),
    Column("endpoint_id", _ID, nullable=False),
    _created(),
)

ip_pool_rules = Table(
    "ip_pool_rules", metadata,
    _id(), _uuid(),
    _fk("organization_id", "organizations.id"),
    _fk("server_id", "servers.id", nullable=True),
    _fk("ip_pool_id", "ip_pools.id"),
    Column("from_text", Text),
    Column("to_text", Text),
    _created(),
)

# ---------------------------------------------------------------- webhooks

webhooks = Table(
    "webhooks", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    Column("name", String(255)),
    Column("url", String(2048), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("all_events", Boolean, nullable=False, default=False),
    Column("sign", Boolean, nullable=False, default=True),
    Column("last_used_at", Float),
    _created(),
)

webhook_events = Table(
    "webhook_events", metadata,
    _id(),
    _fk("webhook_id", "webhooks.id"),
    Column("event", String(64), nullable=False),
    _created(),
    UniqueConstraint("webhook_id", "event", name="uq_webhook_events_webhook_event"),
)

# The webhook delivery queue (Postal's main-DB webhook_requests).
webhook_requests = Table(
    "webhook_requests", metadata,
    _id(), _uuid(),
    _fk("server_id", "servers.id"),
    _fk("webhook_id", "webhooks.id", nullable=True, ondelete="SET NULL"),
    Column("url", String(2048), nullable=False),
    Column("event", String(64), nullable=False),
    Column("payload", Text, nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("retry_after", Float),
    Column("error", Text),
    Column("locked_by", String(255)),
    Column("locked_until", Float),
    _created(),
    Index("ix_webhook_requests_ready", "locked_by", "retry_after"),
)

# Every attempt to send a webhook request: the history the UI shows
# (Postal's message-DB webhook_requests).
webhook_attempts = Table(
    "webhook_attempts", metadata,
    _id(),
    _fk("server_id", "servers.id"),
    Column("uuid", String(36), nullable=False),
    _fk("webhook_id", "webhooks.id", nullable=True, ondelete="SET NULL"),
    Column("event", String(64), nullable=False),
    Column("url", String(2048), nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("timestamp", Float, nullable=False),
    Column("status_code", Integer),
    Column("body", Text),
    Column("payload", Text),
    Column("will_retry", Boolean, nullable=False, default=False),
    Index("ix_webhook_attempts_server_timestamp", "server_id", "timestamp"),
    Index("ix_webhook_attempts_uuid", "uuid"),
)

# ---------------------------------------------------------------- messages

# One row per received transaction (SMTP DATA, API call); shared by its recipients.
raw_messages = Table(
    "raw_messages", metadata,
    _id(),
    _fk("server_id", "servers.id"),
    Column("data", LargeBinary, nullable=False),
    Column("size", BigInteger, nullable=False),
    _created(),
    Index("ix_raw_messages_server_created", "server_id", "created_at"),
)

messages = Table(
    "messages", metadata,
    _id(),
    _fk("server_id", "servers.id"),
    Column("token", String(32), nullable=False),
    Column("scope", String(10), nullable=False),
    Column("rcpt_to", String(512)),
    Column("mail_from", String(512)),
    Column("subject", String(255)),
    Column("message_id", String(512)),
    Column("timestamp", Float, nullable=False),
    _fk("route_id", "routes.id", nullable=True, ondelete="SET NULL"),
    _fk("domain_id", "domains.id", nullable=True, ondelete="SET NULL"),
    _fk("credential_id", "credentials.id", nullable=True, ondelete="SET NULL"),
    Column("status", String(20), nullable=False, default="Pending"),
    Column("held", Boolean, nullable=False, default=False),
    Column("size", BigInteger),
    Column("last_delivery_attempt", Float),
    _fk("raw_message_id", "raw_messages.id", nullable=True, ondelete="SET NULL"),
    # Headers the worker prepends (DKIM, X-Postal-MsgID, spam headers) are
    # kept apart so the shared raw message is never rewritten.
    Column("prepended_headers", LargeBinary),
    Column("inspected", Boolean, nullable=False, default=False),
    Column("spam", Boolean, nullable=False, default=False),
    Column("spam_score", Float, nullable=False, default=0),
    Column("threat", Boolean, nullable=False, default=False),
    Column("threat_details", String(512)),
    Column("bounce", Boolean, nullable=False, default=False),
    Column("bounce_for_id", _ID, nullable=False, default=0),
    Column("tag", String(255)),
    Column("loaded", Float),
    Column("clicked", Float),
    Column("received_with_ssl", Boolean),
    Column("hold_expiry", Float),
    Column("tracked_links", Integer, nullable=False, default=0),
    Column("tracked_images", Integer, nullable=False, default=0),
    Column("parsed", Boolean, nullable=False, default=False),
    Column("endpoint_id", _ID),
    Column("endpoint_type", String(20)),
    Index("ix_messages_server_token", "server_id", "token"),
    Index("ix_messages_server_scope_timestamp", "server_id", "scope", "timestamp"),
    Index("ix_messages_server_status", "server_id", "status"),
    Index("ix_messages_server_held", "server_id", "held"),
    Index("ix_messages_server_rcpt_timestamp", "server_id", "rcpt_to", "timestamp"),
    Index("ix_messages_message_id", "message_id"),
    Index("ix_messages_raw_message_id", "raw_message_id"),
)

deliveries = Table(
    "deliveries", metadata,
    _id(),
    _fk("message_id", "messages.id"),
    Column("status", String(20), nullable=False),
    Column("code", Integer),
    Column("output", String(512)),
    Column("details", String(512)),
    Column("sent_with_ssl", Boolean, nullable=False, default=False),
    Column("log_id", String(16)),
    Column("timestamp", Float, nullable=False),
    Column("time", Float),
    Index("ix_deliveries_message_id", "message_id"),
)

queued_messages = Table(
    "queued_messages", metadata,
    _id(),
    _fk("server_id", "servers.id"),
    _fk("message_id", "messages.id"),
    Column("domain", String(255)),
    _fk("route_id", "routes.id", nullable=True, ondelete="SET NULL"),
    _fk("ip_address_id", "ip_addresses.id", nullable=True, ondelete="SET NULL"),
    Column("attempts", Integer, nullable=False, default=0),
    # NULL = ready now; otherwise not before this time.
    Column("retry_after", Float),
    Column("locked_by", String(255)),
    Column("locked_at", Float),
    # A claim is a lease: once this passes the requeuer returns the row.
    Column("locked_until", Float),
    Column("manual", Boolean, nullable=False, default=False),
    Column("batch_key", String(255)),
    _created(),
    UniqueConstraint("message_id", name="uq_queued_messages_message_id"),
    Index("ix_queued_messages_ready", "locked_by", "retry_after"),
    Index("ix_queued_messages_batch", "batch_key", "locked_by"),
    Index("ix_queued_messages_locked_until", "locked_until"),
)

links = Table(
    "links", metadata,
    _id(),
    _fk("message_id", "messages.id"),
    Column("token", String(32), nullable=False),
    Column("hash", String(40), nullable=False),
    Column("url", Text, nullable=False),
    Column("timestamp", Float, nullable=False),
    Index("ix_links_token", "token"),
    Index("ix_links_message_id", "message_id"),
)

clicks = Table(
    "clicks", metadata,
    _id(),
    _fk("message_id", "messages.id"),
    _fk("link_id", "links.id"),
    Column("ip_address", String(64)),
    Column("country", String(64)),
    Column("city", String(64)),
    Column("user_agent", String(512)),
    Column("timestamp", Float, nullable=False),
    Index("ix_clicks_message_id", "message_id"),
)

loads = Table(
    "loads", metadata,
    _id(),
    _fk("message_id", "messages.id"),
    Column("ip_address", String(64)),
    Column("country", String(64)),
    Column("city", String(64)),
    Column("user_agent", String(512)),
    Column("timestamp", Float, nullable=False),
    Index("ix_loads_message_id", "message_id"),
)

spam_checks = Table(
    "spam_checks", metadata,
    _id(),
    _fk("message_id", "messages.id"),
    Column("score", Float, nullable=False),
    Column("code", String(255), nullable=False),
    Column("description", String(512)),
    Index("ix_spam_checks_message_id", "message_id"),
)

suppressions = Table(
    "suppressions", metadata,
    _id(),
    _fk("server_id", "servers.id"),
    Column("type", String(20), nullable=False, default="recipient"),
    Column("address", String(512), nullable=False),
    Column("reason", String(255)),
    Column("timestamp", Float, nullable=False),
    Column("keep_until", Float, nullable=False),
    UniqueConstraint("server_id", "type", "address", name="uq_suppressions_server_type_address"),
    Index("ix_suppressions_keep_until", "keep_until"),
)

# ---------------------------------------------------------------- statistics

live_stats = Table(
    "live_stats", metadata,
    _fk("server_id", "servers.id"),
    Column("type", String(20), nullable=False),
    Column("minute", Integer, nullable=False),
    Column("count", BigInteger, nullable=False, default=0),
    Column("timestamp", Float, nullable=False),
    UniqueConstraint("server_id", "minute", "type", name="uq_live_stats_server_minute_type"),
)


def _period_stats(name: str) -> Table:
    return Table(
        name, metadata,
        _id(),
        _fk("server_id", "servers.id"),
        Column("time", Float, nullable=False),
        Column("incoming", BigInteger, nullable=False, default=0),
        Column("outgoing", BigInteger, nullable=False, default=0),
        Column("spam", BigInteger, nullable=False, default=0),
        Column("bounces", BigInteger, nullable=False, default=0),
        Column("held", BigInteger, nullable=False, default=0),
        UniqueConstraint("server_id", "time", name=f"uq_{name}_server_time"),
    )


stats_hourly = _period_stats("stats_hourly")
stats_daily = _period_stats("stats_daily")
stats_monthly = _period_stats("stats_monthly")
stats_yearly = _period_stats("stats_yearly")

statistics = Table(
    "statistics", metadata,
    _id(),
    Column("total_messages", BigInteger, nullable=False, default=0),
    Column("total_outgoing", BigInteger, nullable=False, default=0),
    Column("total_incoming", BigInteger, nullable=False, default=0),
)

# ---------------------------------------------------------------- operations

scheduled_tasks = Table(
    "scheduled_tasks", metadata,
    _id(),
    Column("name", String(255), nullable=False, unique=True),
    Column("next_run_after", Float, nullable=False),
    Column("last_run_at", Float),
    Column("last_status", String(16)),
    Column("last_error", Text),
)

# One active holder per role (cron, requeuer); see postal.db.leases.
role_leases = Table(
    "role_leases", metadata,
    Column("role", String(64), primary_key=True),
    Column("holder", String(255), nullable=False),
    Column("acquired_at", Float, nullable=False),
    Column("expires_at", Float, nullable=False),
)

tls_certificates = Table(
    "tls_certificates", metadata,
    _id(),
    Column("domain", String(255), nullable=False, unique=True),
    Column("certificate", Text, nullable=False),
    Column("private_key", Text, nullable=False),
    Column("expires_at", Float, nullable=False),
    _created(),
    Column("updated_at", Float, nullable=False),
)
