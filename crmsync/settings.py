"""Runtime settings: environment `CRMSYNC_*` (nested with `__`) over an optional TOML file.

Each CRM's section (`hubspot`, `salesforce`: CRMSYNC_<CRM>__*, `[<crm>]`) is defined in its package
(crmsync/crms/<name>/settings.py) and added here for each name in `crmsync.crms.CRMS`.
The TOML file comes from `--config` or `CRMSYNC_CONFIG`. A wrong value stops start-up with one
line naming the setting, where it came from and what is expected (see `load_settings`).
Secrets are `SecretStr`: their repr is masked, so they never reach logs or Sentry.
"""

from __future__ import annotations

import ipaddress
import os
import re
import tomllib
from datetime import date, timedelta
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    Field,
    SecretStr,
    ValidationError,
    create_model,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from crmsync.crms import CRMS
from crmsync.definitions import DEFAULT_DEFINITIONS
from crmsync.errors import ConfigError
from crmsync.files import UnreadableFile, read_limited
from crmsync.redact import safe_url
from crmsync.settings_base import CrmSection, Secret, Section

ENV_PREFIX = "CRMSYNC_"
MAX_CONFIG_BYTES = 64 * 1024


class HttpSettings(Section):
    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535, description="0 picks a free port")
    metrics_token: Secret | None = Field(default=None, description="when set, /metrics needs `Bearer <token>`")
    trusted_proxy: bool = Field(default=False, description="derive the signed webhook URL from Forwarded / "
                                "X-Forwarded-Proto / X-Forwarded-Host (only behind a proxy that sets them)")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, le=16_777_216, description="larger bodies get 413")
    request_timeout_seconds: float = Field(default=10.0, gt=0, le=300,
                                           description="a request's head and body must arrive within this")
    keep_alive_seconds: int = Field(default=5, ge=1, le=300, description="idle keep-alive connections are closed")
    max_connections: int = Field(default=1024, ge=1, le=100_000,
                                 description="past this, the connection waiting longest for a request is closed")

    _host = field_validator("host")(lambda cls, v: _host_name(v))


class SyncSettings(Section):
    interval_seconds: int = Field(default=30, ge=1, le=86400)
    sla_sweep_seconds: int = Field(default=60, ge=1, le=86400)
    overlap_seconds: int = Field(default=300, ge=0, le=86400)
    recheck_after_seconds: float = Field(default=5.0, ge=0, le=86400,
                                         description="a write whose record was read this long ago or longer is "
                                                     "re-read before its first send (a person's later edit wins); "
                                                     "0: every write")
    lease_seconds: int | None = Field(default=None, ge=1, le=86400,
                                      description="how long a replica's lease on a CRM lasts without renewal; "
                                                  "default 3 x interval_seconds, at least 15")
    unhealthy_after_failed_passes: int = Field(default=3, ge=1, le=10000,
                                               description="consecutive failed passes of a CRM that turn "
                                                           "/healthz to 503")
    pipeline_backlog_before: date | Literal["first-pass", "none"] = Field(
        default="first-pass",
        description="records the CRM says reached opportunity or customer before this (an ISO date; "
                    "first-pass: crmsync's first pass over the CRM) and first seen there are the backlog: "
                    "a missing BANT is flagged and counted, no owner task; none: every one gets a task")

    @property
    def recheck_after(self) -> timedelta:
        return timedelta(seconds=self.recheck_after_seconds)


def _crm_section(name: str) -> type[CrmSection]:
    section = import_module(f"crmsync.crms.{name}.settings").SECTION
    if not (isinstance(section, type) and issubclass(section, CrmSection) and section.crm == name):
        raise TypeError(f"crmsync.crms.{name}.settings.SECTION must be the CrmSection of {name!r}")
    return section


CRM_SECTIONS: dict[str, type[CrmSection]] = {name: _crm_section(name) for name in CRMS}
"""Each CRM's settings section by name, from its package (crmsync/crms/<name>/settings.py)."""


class _Common(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="__",
        extra="forbid",
        case_sensitive=False,
    )

    database_url: str = "sqlite:///crmsync.db"
    definitions: Path = DEFAULT_DEFINITIONS
    mode: Literal["enforce", "shadow"] = "enforce"
    log_format: Literal["json", "console"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    sentry_dsn: Secret | None = None
    inputs_retention_days: int = Field(
        default=365, ge=1, le=36500,
        description="the daemon's daily retention job and `crmsync prune` drop the inputs behind decisions "
                    "older than this")
    runs_retention_days: int = Field(
        default=90, ge=1, le=36500,
        description="the daily retention job and `crmsync prune` drop the run log's rows older than this "
                    "(SLA sweeps, one a minute per CRM, after a day)")


# One field per CRM, in CRMS order, between the common settings and `http` / `sync` (the order
# `crmsync config show` lists them in). mypy sees `_Common`: a CRM's code reads its section through
# `<Section>.of(settings)`, typed.
if TYPE_CHECKING:
    class _WithCrms(_Common):
        pass
else:
    _WithCrms = create_model("_WithCrms", __base__=_Common,
                             **{name: (section, section()) for name, section in CRM_SECTIONS.items()})


class Settings(_WithCrms):
    http: HttpSettings = HttpSettings()
    sync: SyncSettings = SyncSettings()

    @model_validator(mode="after")
    def _across_sections(self) -> Settings:
        for section in CRM_SECTIONS.values():
            section.of(self).check(self)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return init_settings, env_settings, TomlConfigSettingsSource(settings_cls)

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn(cls, value: SecretStr | None) -> SecretStr | None:
        from sentry_sdk.utils import BadDsn, Dsn

        if value is not None:
            try:
                Dsn(value.get_secret_value())
            except (BadDsn, ValueError) as exc:
                raise ValueError(f"not a Sentry DSN ({exc})") from None
        return value


_HOST_LABEL = re.compile(r"(?!-)[A-Za-z0-9-]{1,63}(?<!-)")


def _host_name(value: str) -> str:
    """An IP address or a DNS name (RFC 1123) to listen on."""
    try:
        ipaddress.ip_address(value)
        return value
    except ValueError:
        pass
    if len(value) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in value.rstrip(".").split(".")):
        raise ValueError("expected an IP address or a host name such as 0.0.0.0 or localhost")
    return value


def load_settings(config_file: str | Path | None = None) -> Settings:
    """Build the settings or raise `ConfigError` with one line per wrong setting.

    `config_file` wins over `CRMSYNC_CONFIG`; environment variables win over the file.
    """
    path = config_file or os.environ.get(f"{ENV_PREFIX}CONFIG") or None
    settings_cls: type[Settings] = Settings
    toml_file = None
    if path:
        toml_file = Path(path)
        _check_toml(toml_file)
        config = SettingsConfigDict(**{**Settings.model_config, "toml_file": toml_file})
        settings_cls = type("FileSettings", (Settings,), {"model_config": config})
    try:
        return settings_cls()
    except ValidationError as exc:
        raise ConfigError("; ".join(_describe(err, toml_file) for err in exc.errors())) from None
    except SettingsError as exc:
        raise ConfigError(f"settings cannot be read: {_short(str(exc))}") from None
    except RecursionError:
        raise ConfigError("settings cannot be read: a CRMSYNC_* value is JSON nested too deeply") from None


def _check_toml(path: Path) -> None:
    """A regular file of sane size that parses as TOML (deep nesting and huge numbers included)."""
    try:
        tomllib.loads(read_limited(path, MAX_CONFIG_BYTES).decode("utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file {path} not found (given by --config or CRMSYNC_CONFIG)") from None
    except UnreadableFile as exc:
        raise ConfigError(f"config file {path} cannot be used: it {exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config file {path} is not UTF-8 text (byte {exc.start})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from None
    except (ValueError, RecursionError) as exc:
        problem = "nested too deeply" if isinstance(exc, RecursionError) else str(exc).split(";")[0][:120]
        raise ConfigError(f"config file {path} is not valid TOML: {problem}") from None


def _describe(err: Any, toml_file: Path | None) -> str:
    loc = [str(p) for p in err["loc"]]
    if not loc:  # a rule across settings: its message names them
        return str(err["msg"]).removeprefix("Value error, ")
    env_name = ENV_PREFIX + "__".join(p.upper() for p in loc)
    dotted = ".".join(loc)
    where = f"{env_name}" + (f" / {dotted} in {toml_file}" if toml_file else "")
    if err["type"] == "extra_forbidden":
        return f"unknown setting {dotted!r} ({where}): remove it or check the spelling"
    message = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    shown = "" if is_secret(loc) or isinstance(value, dict) else f" (got {_short(repr(value))})"
    return f"setting {where} is invalid: {message}{shown}"


def _short(text: str) -> str:
    return text if len(text) <= 80 else f"{text[:60]}... ({len(text)} characters)"


def is_secret(loc: list[str], model: type[BaseModel] = Settings) -> bool:
    """Whether the setting at `loc` (["salesforce", "private_key"]) is a credential: typed `SecretStr`,
    whatever its name says. A value given for it never appears in an error."""
    field = model.model_fields.get(loc[0]) if loc else None
    if field is None:
        return False
    for kind in (field.annotation, *get_args(field.annotation)):
        if isinstance(kind, type) and issubclass(kind, BaseModel) and len(loc) > 1:
            return is_secret(loc[1:], kind)
        if kind is SecretStr or (get_origin(kind) is Annotated and get_args(kind)[0] is SecretStr):
            return True
    return False


def secret_values(settings: Settings) -> list[str]:
    """Every configured credential, for `crmsync.redact.register_secrets`."""
    found: list[str] = []

    def walk(model: BaseModel) -> None:
        for name in type(model).model_fields:
            value = getattr(model, name)
            if isinstance(value, SecretStr):
                found.append(value.get_secret_value())
            elif isinstance(value, BaseModel):
                walk(value)

    walk(settings)
    return found


def masked(settings: Settings) -> dict[str, Any]:
    """The effective settings for display: every secret replaced by '**********' or None, and the
    password of the database URL by ***."""
    shown = settings.model_dump(mode="json")
    shown["database_url"] = safe_url(shown["database_url"])
    return shown
