"""Every setting is documented: in docs/settings.md, .env.example and config/crmsync.example.toml."""

from __future__ import annotations

from pydantic import BaseModel

from crmsync.settings import Settings
from tests.builders import ROOT


def env_names(model: type[BaseModel], prefix: str = "CRMSYNC_") -> list[str]:
    names = []
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            names += env_names(annotation, f"{prefix}{name.upper()}__")
        else:
            names.append(f"{prefix}{name.upper()}")
    return names


def test_every_setting_is_documented() -> None:
    docs = (ROOT / "docs" / "settings.md").read_text()
    example_env = (ROOT / ".env.example").read_text()
    example_toml = (ROOT / "config" / "crmsync.example.toml").read_text()
    names = env_names(Settings)
    assert len(names) > 25
    for name in names:
        assert f"`{name}`" in docs, f"{name} is missing from docs/settings.md"
        assert name in example_env, f"{name} is missing from .env.example"
        key = name.removeprefix("CRMSYNC_").split("__")[-1].lower()
        assert key in example_toml, f"{key} is missing from config/crmsync.example.toml"
