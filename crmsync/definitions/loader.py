"""Read a definitions file, validate it, and say exactly where it is wrong.

YAML is composed into nodes first so every value keeps its line; pydantic's error locations
are mapped back to those lines. Unknown keys get a "did you mean" from the model's own fields.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import types
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from crmsync.definitions.schema import Definitions
from crmsync.errors import DefinitionsError
from crmsync.files import UnreadableFile, read_limited

Loc = tuple[str | int, ...]

MAX_BYTES = 64 * 1024
"""A definitions file is about 10 KB; anything far larger is a wrong path, not a contract."""
MAX_DEPTH = 32
"""The schema nests 5 levels deep; deeper YAML is refused before it is built."""


@dataclass(frozen=True, slots=True)
class LoadedDefinitions:
    """Validated definitions plus where they came from and their content hash.

    The hash covers the canonical content (not comments or layout), so a reformatted file keeps
    its hash and any change of meaning changes it.
    """

    definitions: Definitions
    path: str
    content_hash: str

    @property
    def version(self) -> str:
        return self.definitions.governance.version


def content_hash(definitions: Definitions) -> str:
    canonical = json.dumps(definitions.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def load_definitions(path: str | Path) -> LoadedDefinitions:
    """Load and validate; raises `DefinitionsError` listing every problem with its line."""
    label = str(path)
    try:
        text = read_limited(Path(path), MAX_BYTES).decode("utf-8")
    except FileNotFoundError:
        raise DefinitionsError(label, ["file not found (set CRMSYNC_DEFINITIONS or pass the path)"]) from None
    except UnreadableFile as exc:
        raise DefinitionsError(label, [f"cannot be used: it {exc}"]) from None
    except UnicodeDecodeError as exc:
        raise DefinitionsError(label, [f"is not UTF-8 text (byte {exc.start})"]) from None
    return parse_definitions(text, label)


def parse_definitions(text: str, label: str = "<definitions>") -> LoadedDefinitions:
    try:
        node = yaml.compose(text, Loader=_PlainLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc)
        raise DefinitionsError(label, [f"{where}not valid YAML ({problem})"]) from None
    if node is None:
        raise DefinitionsError(label, ["the file is empty"])
    lines: dict[Loc, int] = {}
    try:
        data = _construct(node, (), lines)
    except _BadScalar as exc:
        raise DefinitionsError(label, [str(exc)]) from None
    if not isinstance(data, dict):
        raise DefinitionsError(label, ["line 1: expected a mapping of sections (governance, fit, ...)"])
    try:
        definitions = Definitions.model_validate(data)
    except ValidationError as exc:
        raise DefinitionsError(label, [_describe(err, lines) for err in exc.errors()]) from None
    return LoadedDefinitions(definitions, label, content_hash(definitions))


class _PlainLoader(yaml.SafeLoader):
    """YAML without anchors and aliases (a "billion laughs" file expands exponentially, a recursive
    alias never ends) and no deeper than `MAX_DEPTH`; both refused with the line, before building."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise yaml.composer.ComposerError(
                None, None, "anchors and aliases (&name, *name) are not allowed: write the values out",
                event.start_mark)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise yaml.composer.ComposerError(
                    None, None, f"nested more than {MAX_DEPTH} levels deep", event.start_mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


class _BadScalar(Exception):
    """A scalar YAML accepts but Python cannot hold (e.g. an integer of 100,000 digits)."""


def _construct(node: yaml.Node, loc: Loc, lines: dict[Loc, int]) -> Any:
    """Plain Python values from a YAML node, recording the line of every location."""
    lines[loc] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise _BadScalar(f"line {key_node.start_mark.line + 1}: a key must be a plain word, not a list or map")
            key = key_node.value
            out[key] = _construct(value_node, (*loc, key), lines)
            lines[(*loc, key)] = key_node.start_mark.line + 1  # the key's line, not its block's
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_construct(item, (*loc, i), lines) for i, item in enumerate(node.value)]
    return _scalar(node)


def _scalar(node: yaml.Node) -> Any:
    loader = yaml.SafeLoader("")
    try:
        return loader.construct_object(node, deep=True)
    except (ValueError, OverflowError, yaml.YAMLError) as exc:
        problem = str(exc).split("\n")[0].split(";")[0][:120]
        raise _BadScalar(f"line {node.start_mark.line + 1}: value cannot be read ({problem})") from None
    finally:
        loader.dispose()


def _describe(err: Any, lines: dict[Loc, int]) -> str:
    loc: Loc = tuple(err["loc"])
    dotted = ".".join(str(p) for p in loc) or "(top level)"
    line = _line_for(loc, lines)
    where = f"line {line}: " if line else ""
    if err["type"] == "extra_forbidden":
        hint = _did_you_mean(loc)
        return f"{where}{dotted}: unknown key{hint}"
    if err["type"] == "missing":
        return f"{where}{dotted}: required key is missing"
    message = str(err["msg"]).removeprefix("Value error, ")
    value = err.get("input")
    shown = "" if isinstance(value, dict | list) or value is None else f" (got {_short(value)})"
    return f"{where}{dotted}: {message}{shown}"


def _line_for(loc: Loc, lines: dict[Loc, int]) -> int | None:
    for cut in range(len(loc), -1, -1):
        if loc[:cut] in lines:
            return lines[loc[:cut]]
    return None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _did_you_mean(loc: Loc) -> str:
    model = _model_at(Definitions, loc[:-1])
    if model is None:
        return ""
    close = difflib.get_close_matches(str(loc[-1]), list(model.model_fields), n=1, cutoff=0.6)
    allowed = ", ".join(model.model_fields)
    return f"; did you mean {close[0]!r}?" if close else f" (allowed: {allowed})"


def _model_at(model: type[BaseModel], loc: Loc) -> type[BaseModel] | None:
    """The pydantic model that validates the mapping at `loc` (list indices skip through lists)."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            current = _item_type(current)
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    current = _unwrap(current)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    """`X | None` → X; list[X] stays a list (indices handle it)."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0] if len(args) == 1 else annotation
    return annotation


def _item_type(annotation: Any) -> Any:
    args = typing.get_args(_unwrap(annotation))
    return _unwrap(args[0]) if args else None
