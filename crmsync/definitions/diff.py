"""A semantic diff of two definitions: which criteria, weights, thresholds and mappings changed.

Lists of named things (activity rules, high-intent actions, reason codes, changelog entries)
are matched by name, so reordering is not a change and a changed weight shows as one line.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from crmsync.definitions.schema import Definitions

_KEYS = ("name", "code", "version")


@dataclass(frozen=True, slots=True)
class Change:
    path: str
    change: str  # "added" | "removed" | "changed"
    old: Any = None
    new: Any = None

    @property
    def section(self) -> str:
        return self.path.split(".", 1)[0].split("[", 1)[0]

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "section": self.section, "change": self.change, "old": self.old, "new": self.new}

    def line(self) -> str:
        if self.change == "added":
            return f"+ {self.path}: {_show(self.new)}"
        if self.change == "removed":
            return f"- {self.path}: {_show(self.old)}"
        return f"~ {self.path}: {_show(self.old)} -> {_show(self.new)}"


def diff_definitions(old: Definitions, new: Definitions) -> list[Change]:
    changes: list[Change] = []
    _walk(old.model_dump(mode="json"), new.model_dump(mode="json"), "", changes)
    return changes


def _walk(old: Any, new: Any, path: str, out: list[Change]) -> None:
    if isinstance(old, dict) and isinstance(new, dict):
        for key in list(old) + [k for k in new if k not in old]:
            sub = f"{path}.{key}" if path else str(key)
            if key not in new:
                out.append(Change(sub, "removed", old=old[key]))
            elif key not in old:
                out.append(Change(sub, "added", new=new[key]))
            else:
                _walk(old[key], new[key], sub, out)
        return
    if isinstance(old, list) and isinstance(new, list):
        key = _list_key(old + new)
        if key is not None:
            _walk_named(old, new, path, key, out)
            return
        if all(not isinstance(v, dict | list) for v in old + new):
            for value in old:
                if value not in new:
                    out.append(Change(path, "removed", old=value))
            for value in new:
                if value not in old:
                    out.append(Change(path, "added", new=value))
            return
    if old != new:
        out.append(Change(path, "changed", old, new))


def _list_key(items: list[Any]) -> str | None:
    if not items or not all(isinstance(i, dict) for i in items):
        return None
    for key in _KEYS:
        if all(key in i for i in items):
            return key
    return None


def _walk_named(old: list[dict[str, Any]], new: list[dict[str, Any]], path: str, key: str, out: list[Change]) -> None:
    before = {item[key]: item for item in old}
    after = {item[key]: item for item in new}
    for name, item in before.items():
        sub = f"{path}[{name}]"
        if name not in after:
            out.append(Change(sub, "removed", old=item))
        else:
            _walk(item, after[name], sub, out)
    for name, item in after.items():
        if name not in before:
            out.append(Change(f"{path}[{name}]", "added", new=item))


def _show(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_show(v)}" for k, v in value.items() if v not in (None, [], {})) + "}"
    return repr(value) if isinstance(value, str) else str(value)
