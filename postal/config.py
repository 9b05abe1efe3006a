# -*- test-case-name: tests.test_config -*-
"""
The configuration tree: Postal's v2 YAML schema plus txpostal's own keys.

The whole tree is frozen attrs, built once by L{load_config} and passed
explicitly to whatever needs it; there is no global config object.  Every
key can be overridden from the environment as C{GROUP_KEY} in upper case,
and every bad value fails start-up with a L{ConfigError} naming the key.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import attrs
import yaml

__all__ = [
    "ConfigError",
    "PostalConfig",
    "load_config",
    "default_config",
    "config_path_from",
]

#: Where to look when neither C{--config} nor C{POSTAL_CONFIG_FILE_PATH} is given.
DEFAULT_CONFIG_PATH = "postal.yml"
CONFIG_PATH_VARIABLE = "POSTAL_CONFIG_FILE_PATH"


class ConfigError(Exception):
    """
    The configuration cannot be used; the message names the key and why.
    """


# A field's "kind" tells the loader how to parse a YAML or environment value.
_KIND = "postal_kind"
_PATH = "postal_path"


def _field(default: Any, kind: str, *, path: bool = False) -> Any:
    return attrs.field(default=default, metadata={_KIND: kind, _PATH: path})


def _str(default: str | None) -> Any:
    return _field(default, "str")


def _int(default: int | None) -> Any:
    return _field(default, "int")


def _float(default: float) -> Any:
    return _field(default, "float")


def _bool(default: bool) -> Any:
    return _field(default, "bool")


def _list(default: Sequence[str]) -> Any:
    return _field(tuple(default), "list")


def _path(default: str | None) -> Any:
    return _field(default, "str", path=True)


@attrs.frozen
class PostalSettings:
    """The C{postal} group: installation-wide behaviour."""

    web_hostname: str = _str("postal.example.com")
    web_protocol: str = _str("https")
    smtp_hostname: str = _str("postal.example.com")
    use_ip_pools: bool = _bool(False)
    default_maximum_delivery_attempts: int = _int(18)
    default_maximum_hold_expiry_days: int = _int(7)
    default_suppression_list_automatic_removal_days: int = _int(30)
    default_spam_threshold: int = _int(5)
    default_spam_failure_threshold: int = _int(20)
    use_local_ns_for_domain_verification: bool = _bool(False)
    use_resent_sender_header: bool = _bool(True)
    signing_key_path: str | None = _path("signing.key")
    smtp_relays: tuple[str, ...] = _list(())
    trusted_proxies: tuple[str, ...] = _list(())
    queued_message_lock_stale_days: int = _int(1)
    batch_queued_messages: bool = _bool(True)


@attrs.frozen
class DatabaseSettings:
    """The C{database} group (ours): one SQLAlchemy URL for everything."""

    url: str | None = _str(None)
    pool_size: int = _int(10)


@attrs.frozen
class WebServerSettings:
    default_port: int = _int(5000)
    default_bind_address: str = _str("127.0.0.1")
    max_threads: int = _int(5)
    max_request_size: int = _int(32 * 1024 * 1024)
    tls_enabled: bool = _bool(False)
    tls_port: int = _int(5443)
    tls_certificate_path: str | None = _path("web.cert")
    tls_private_key_path: str | None = _path("web.key")


@attrs.frozen
class SMTPServerSettings:
    default_port: int = _int(25)
    default_bind_address: str = _str("::")
    health_port: int = _int(9091)
    tls_enabled: bool = _bool(False)
    tls_certificate_path: str | None = _path("smtp.cert")
    tls_private_key_path: str | None = _path("smtp.key")
    tls_ciphers: str | None = _str(None)
    ssl_version: str = _str("SSLv23")
    tls_port: int = _int(0)
    proxy_protocol: bool = _bool(False)
    log_connections: bool = _bool(False)
    max_message_size: int = _int(14)
    log_ip_address_exclusion_matcher: str | None = _str(None)
    allow_auth_without_tls: bool = _bool(False)
    max_connections: int = _int(1000)
    max_connections_per_ip: int = _int(100)
    max_recipients: int = _int(1000)
    idle_timeout: float = _float(300.0)
    data_timeout: float = _float(600.0)
    max_auth_failures: int = _int(5)


@attrs.frozen
class WorkerSettings:
    health_port: int = _int(9090)
    threads: int = _int(2)
    concurrency: int = _int(100)
    per_destination_concurrency: int = _int(10)
    lease_seconds: int = _int(300)
    poll_interval: float = _float(5.0)


@attrs.frozen
class CronSettings:
    health_port: int = _int(9092)
    #: A standby cron process takes over within this many seconds of the
    #: active one dying.
    lease_seconds: int = _int(60)
    #: Rows deleted or updated per transaction by retention and pruning.
    batch_size: int = _int(500)


@attrs.frozen
class RequeuerSettings:
    health_port: int = _int(9093)
    interval: float = _float(1.0)


@attrs.frozen
class FastSettings:
    health_port: int = _int(9094)
    http_port: int = _int(80)
    https_port: int = _int(443)
    bind_address: str = _str("::")
    acme_directory_url: str = _str("https://acme-v02.api.letsencrypt.org/directory")
    acme_email: str | None = _str(None)
    acme_ca_bundle: str | None = _path(None)


@attrs.frozen
class DNSSettings:
    mx_records: tuple[str, ...] = _list(("mx1.postal.example.com", "mx2.postal.example.com"))
    spf_include: str = _str("spf.postal.example.com")
    return_path_domain: str = _str("rp.postal.example.com")
    route_domain: str = _str("routes.postal.example.com")
    track_domain: str = _str("track.postal.example.com")
    helo_hostname: str | None = _str(None)
    dkim_identifier: str = _str("postal")
    domain_verify_prefix: str = _str("postal-verification")
    custom_return_path_prefix: str = _str("psrp")
    timeout: float = _float(5.0)
    resolv_conf_path: str = _str("/etc/resolv.conf")
    nameservers: tuple[str, ...] = _list(())


@attrs.frozen
class SMTPSettings:
    """The C{smtp} group: how Postal sends its own e-mails."""

    host: str = _str("127.0.0.1")
    port: int = _int(25)
    username: str | None = _str(None)
    password: str | None = _str(None)
    authentication_type: str = _str("login")
    enable_starttls: bool = _bool(False)
    enable_starttls_auto: bool = _bool(True)
    openssl_verify_mode: str = _str("peer")
    from_name: str = _str("Postal")
    from_address: str = _str("postal@example.com")


@attrs.frozen
class SMTPClientSettings:
    open_timeout: float = _float(30.0)
    read_timeout: float = _float(30.0)
    #: PEM bundle of CAs trusted for STARTTLS/TLS verification (default: the system store).
    ca_file: str | None = _path(None)
    #: Seconds an idle outbound connection is kept for reuse.
    idle_timeout: float = _float(10.0)


@attrs.frozen
class LoggingSettings:
    enabled: bool = _bool(True)
    directory: str | None = _path("log")
    #: Events below this level are dropped: debug, info, warn, error or critical.
    level: str = _str("info")
    sentry_dsn: str | None = _str(None)
    highlighting_enabled: bool = _bool(False)
    rails_log_enabled: bool = _bool(False)


@attrs.frozen
class ScannerSettings:
    """rspamd, spamd and clamav share one shape."""

    enabled: bool = _bool(False)
    host: str = _str("127.0.0.1")
    port: int = _int(0)
    ssl: bool = _bool(False)
    password: str | None = _str(None)
    flags: str | None = _str(None)


@attrs.frozen
class ProcessSettings:
    """How many of each role the supervisor runs (single-active roles run one)."""

    web: int = _int(1)
    smtp: int = _int(1)
    worker: int = _int(1)
    cron: int = _int(1)
    requeuer: int = _int(1)
    fast: int = _int(1)


#: Postal groups we accept for compatibility but do not use.
_IGNORED_GROUPS = frozenset(
    {"main_db", "message_db", "rails", "oidc", "gelf", "migration_waiter"}
)


@attrs.frozen
class PostalConfig:
    """The whole configuration; C{root} is the config file's folder."""

    root: str
    postal: PostalSettings = attrs.field(factory=PostalSettings)
    database: DatabaseSettings = attrs.field(factory=DatabaseSettings)
    web_server: WebServerSettings = attrs.field(factory=WebServerSettings)
    smtp_server: SMTPServerSettings = attrs.field(factory=SMTPServerSettings)
    worker: WorkerSettings = attrs.field(factory=WorkerSettings)
    cron: CronSettings = attrs.field(factory=CronSettings)
    requeuer: RequeuerSettings = attrs.field(factory=RequeuerSettings)
    fast: FastSettings = attrs.field(factory=FastSettings)
    dns: DNSSettings = attrs.field(factory=DNSSettings)
    smtp: SMTPSettings = attrs.field(factory=SMTPSettings)
    smtp_client: SMTPClientSettings = attrs.field(factory=SMTPClientSettings)
    logging: LoggingSettings = attrs.field(factory=LoggingSettings)
    rspamd: ScannerSettings = attrs.field(factory=lambda: ScannerSettings(port=11334))
    spamd: ScannerSettings = attrs.field(factory=lambda: ScannerSettings(port=783))
    clamav: ScannerSettings = attrs.field(factory=lambda: ScannerSettings(port=2000))
    processes: ProcessSettings = attrs.field(factory=ProcessSettings)
    source: str | None = None

    @property
    def database_url(self) -> str:
        """The SQLAlchemy URL, defaulting to SQLite beside the config file."""
        if self.database.url:
            return self.database.url
        return "sqlite:///" + os.path.join(self.root, "postal.sqlite")

    @property
    def max_message_size_bytes(self) -> int:
        return self.smtp_server.max_message_size * 1024 * 1024


_GROUPS: tuple[str, ...] = tuple(
    f.name for f in attrs.fields(PostalConfig) if f.name not in ("root", "source")
)


def _group_class(name: str) -> type[Any]:
    cls = {
        "postal": PostalSettings,
        "database": DatabaseSettings,
        "web_server": WebServerSettings,
        "smtp_server": SMTPServerSettings,
        "worker": WorkerSettings,
        "cron": CronSettings,
        "requeuer": RequeuerSettings,
        "fast": FastSettings,
        "dns": DNSSettings,
        "smtp": SMTPSettings,
        "smtp_client": SMTPClientSettings,
        "logging": LoggingSettings,
        "rspamd": ScannerSettings,
        "spamd": ScannerSettings,
        "clamav": ScannerSettings,
        "processes": ProcessSettings,
    }[name]
    return cls


#: Postal's own spelling of keys we renamed, so a Postal file loads as written.
_POSTAL_ALIASES = {
    ("worker", "default_health_server_port"): "health_port",
    ("smtp_server", "default_health_server_port"): "health_port",
}

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off", ""}


def _parse(key: str, kind: str, value: Any, from_env: bool) -> Any:
    """Turn one raw value into the field's type, or raise naming C{key}."""
    if value is None:
        return None
    if kind == "str":
        if isinstance(value, (dict, list)):
            raise ConfigError(f"{key}: expected a string, got {type(value).__name__}")
        return str(value)
    if kind == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ConfigError(f"{key}: expected true or false, got {value!r}")
    if kind in ("int", "float"):
        if isinstance(value, bool):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        try:
            number = int(str(value).strip()) if kind == "int" else float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{key}: expected {'an integer' if kind == 'int' else 'a number'}, got {value!r}") from None
        if number < 0:
            raise ConfigError(f"{key}: must not be negative, got {value!r}")
        return number
    if kind == "list":
        if from_env or isinstance(value, str):
            return tuple(item.strip() for item in str(value).split(",") if item.strip())
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        if any(isinstance(item, (dict, list)) for item in value):
            raise ConfigError(f"{key}: expected a list of strings")
        return tuple(str(item) for item in value)
    raise AssertionError(kind)  # pragma: no cover


def _resolve(root: str, value: Any) -> Any:
    if not isinstance(value, str):
        return value
    value = value.replace("$config-file-root", root)
    if os.path.isabs(value):
        return value
    return os.path.normpath(os.path.join(root, value))


def _build_group(
    group: str,
    raw: Mapping[str, Any],
    environ: Mapping[str, str],
    root: str,
) -> Any:
    cls = _group_class(group)
    fields = {f.name: f for f in attrs.fields(cls)}
    raw = {_POSTAL_ALIASES.get((group, key), key): value for key, value in raw.items()}
    for key in raw:
        if key not in fields:
            raise ConfigError(f"{group}.{key}: unknown key")
    values: dict[str, Any] = {}
    for name, field in fields.items():
        key = f"{group}.{name}"
        env_name = f"{group}_{name}".upper()
        kind = field.metadata[_KIND]
        if env_name in environ:
            values[name] = _parse(key, kind, environ[env_name], from_env=True)
        elif name in raw:
            values[name] = _parse(key, kind, raw[name], from_env=False)
        else:
            continue
    instance = cls(**values)
    changes = {}
    for name, field in fields.items():
        if field.metadata[_PATH]:
            changes[name] = _resolve(root, getattr(instance, name))
    return attrs.evolve(instance, **changes)


_LOG_LEVELS = ("debug", "info", "warn", "error", "critical")


def _check_log_level(config: PostalConfig) -> None:
    if config.logging.level not in _LOG_LEVELS:
        raise ConfigError(f"logging.level: {config.logging.level!r} is not one of {', '.join(_LOG_LEVELS)}")


def _check_ports(config: PostalConfig) -> None:
    """Every C{*port} key, in every group, is a TCP port number (0 disables)."""
    for group in _GROUPS:
        settings = getattr(config, group)
        for field in attrs.fields(type(settings)):
            if field.metadata[_KIND] != "int" or not field.name.endswith("port"):
                continue
            value = getattr(settings, field.name)
            if value is not None and value > 65535:
                raise ConfigError(f"{group}.{field.name}: {value} is not a TCP port (0-65535)")


#: Driver names we accept, and the SQLAlchemy driver each one means.
_DRIVERS = {
    "sqlite": "sqlite",
    "sqlite+pysqlite": "sqlite",
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "postgresql+psycopg": "postgresql+psycopg",
}


def _normalised_database_url(url: str | None, root: str) -> str | None:
    """
    C{url} with the driver we ship (psycopg 3) spelled out, so a Postal-style
    C{postgresql://} or C{postgres://} URL works as written, and a relative
    SQLite path made relative to the config file's folder.

    @raise ConfigError: the URL cannot be parsed or names another database.
    """
    if not url:
        return None
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ConfigError(f"database.url: {url!r} is not a database URL "
                          "(e.g. postgresql://user@host/db or sqlite:///path)") from None
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise ConfigError(f"database.url: unsupported database {parsed.drivername!r} "
                          "(use sqlite or postgresql)")
    parsed = parsed.set(drivername=driver)
    if driver == "sqlite" and parsed.database and parsed.database != ":memory:":
        parsed = parsed.set(database=_resolve(root, parsed.database))
    return parsed.render_as_string(hide_password=False)


def _validate(config: PostalConfig) -> None:
    """Checks that span keys or need more than a type."""
    _check_ports(config)
    _check_log_level(config)
    at_least_one = {
        "smtp_server.max_message_size": config.smtp_server.max_message_size,
        "worker.concurrency": config.worker.concurrency,
        "database.pool_size": config.database.pool_size,
    }
    for key, value in at_least_one.items():
        if value < 1:
            raise ConfigError(f"{key}: must be at least 1, got {value}")
    if config.postal.web_protocol not in ("http", "https"):
        raise ConfigError("postal.web_protocol: must be http or https")
    for relay in config.postal.smtp_relays:
        if not relay.startswith("smtp://"):
            raise ConfigError(f"postal.smtp_relays: {relay!r} must look like smtp://host:port?ssl_mode=Auto")
    for server in config.dns.nameservers:
        host, _, port_text = server.rpartition(":")
        if not host or not port_text.isdigit() or int(port_text) > 65535:
            raise ConfigError(f"dns.nameservers: {server!r} must be host:port")


def build_config(
    data: Mapping[str, Any],
    root: str,
    environ: Mapping[str, str],
    source: str | None = None,
) -> PostalConfig:
    """Build and validate the tree from parsed YAML (a mapping of groups)."""
    version = data.get("version", 2)
    if version != 2:
        raise ConfigError(f"version: only version 2 configuration files are supported, got {version!r}")
    groups: dict[str, Any] = {}
    for group, raw in data.items():
        if group == "version" or group in _IGNORED_GROUPS:
            continue
        if group not in _GROUPS:
            raise ConfigError(f"{group}: unknown configuration group")
        if raw is None:
            raw = {}
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{group}: expected a mapping of keys, got {type(raw).__name__}")
    for group in _GROUPS:
        raw = data.get(group) or {}
        groups[group] = _build_group(group, raw, environ, root)
    groups["database"] = attrs.evolve(
        groups["database"], url=_normalised_database_url(groups["database"].url, root))
    config = PostalConfig(root=root, source=source, **groups)
    _validate(config)
    return config


def config_path_from(option: str | None, environ: Mapping[str, str]) -> str:
    """The config file to read: the option, else the environment, else ./postal.yml."""
    return option or environ.get(CONFIG_PATH_VARIABLE) or DEFAULT_CONFIG_PATH


def load_config(path: str, environ: Mapping[str, str] | None = None) -> PostalConfig:
    """
    Read the YAML file at C{path}, apply environment overrides and validate.

    @raise ConfigError: the file is missing, unreadable, not YAML, or a key
        holds a bad value; the message names the file or key.
    """
    env = os.environ if environ is None else environ
    absolute = os.path.abspath(path)
    try:
        text = Path(absolute).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: configuration file not found") from None
    except OSError as e:
        raise ConfigError(f"{path}: cannot read configuration file ({e.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from None
    if data is None:
        data = {}
    if not isinstance(data, Mapping):
        raise ConfigError(f"{path}: expected a mapping of configuration groups")
    return build_config(data, os.path.dirname(absolute), env, source=absolute)


def default_config(root: str, environ: Mapping[str, str] | None = None, **groups: Mapping[str, Any]) -> PostalConfig:
    """A configuration built from in-memory groups (tests, the CLI's dev setup)."""
    return build_config(dict(groups), root, {} if environ is None else environ)
