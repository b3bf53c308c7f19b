"""What every settings section builds on: the section base, the credential and text types, URL checks.

Below `crmsync.settings`, which builds `Settings` with one section per CRM (`crmsync.crms.CRMS`): a
CRM's package defines its section here-on (`crmsync/crms/<name>/settings.py`, a `CrmSection`), so this
module imports no CRM and no `Settings`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, ClassVar, Self
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, SecretStr

if TYPE_CHECKING:
    from crmsync.settings import Settings


def _secret(value: SecretStr) -> SecretStr:
    if not value.get_secret_value().strip():
        raise ValueError("is empty: give the value or leave the setting out")
    return value


Secret = Annotated[SecretStr, AfterValidator(_secret)]
"""A credential: masked in every rendering, never empty (an empty variable is a mistake, not a value)."""
Text = Annotated[str, Field(min_length=1)]


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class CrmSection(Section):
    """A CRM's settings section: `Settings.<crm>`, CRMSYNC_<CRM>__*, `[<crm>]` in the TOML file."""

    crm: ClassVar[str]
    """The CRM's name in `crmsync.crms.CRMS`."""

    @classmethod
    def of(cls, settings: Settings) -> Self:
        """This CRM's section of the settings, typed (the code of a CRM's package reads it so)."""
        section = getattr(settings, cls.crm)
        if not isinstance(section, cls):
            raise TypeError(f"settings.{cls.crm} is a {type(section).__name__}, not a {cls.__name__}")
        return section

    def check(self, settings: Settings) -> None:
        """A rule across sections (this one and others), run once the settings are built: raise
        ValueError with a message naming the settings involved. None by default."""


def http_url(value: str, *, exact: bool = False) -> str:
    """An absolute http(s) URL with a host and a valid port, checked now rather than at the first request;
    without its trailing slash unless `exact` (a signed URL must stay as the CRM calls it)."""
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise ValueError("the URL contains spaces or control characters")
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise ValueError(f"not a valid URL ({exc})") from None
    if parts.scheme not in ("http", "https"):
        raise ValueError("expected a URL starting with http:// or https://")
    if not parts.hostname:
        raise ValueError("the URL has no host")
    return value if exact else value.rstrip("/")
