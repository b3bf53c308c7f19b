"""The SOQL the connector sends, parsed and evaluated: SELECT fields FROM Object [WHERE ...]
[ORDER BY field [ASC|DESC], ...] [LIMIT n].

WHERE supports comparisons (=, !=, <>, <, >, <=, >=) on strings, numbers, booleans, null and
date-time literals, IN / NOT IN lists, LIKE, AND / OR / NOT and parentheses. Anything else is a
MALFORMED_QUERY, as Salesforce answers.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

Record = dict[str, Any]
Predicate = Callable[[Record], bool]

_TOKEN = re.compile(r"""
    \s*(?:
      (?P<string>'(?:[^'\\]|\\.)*')
    | (?P<datetime>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:Z|[+-]\d{2}:?\d{2}))
    | (?P<date>\d{4}-\d{2}-\d{2})
    | (?P<number>-?\d+(?:\.\d+)?)
    | (?P<op><=|>=|!=|<>|=|<|>)
    | (?P<punct>[(),])
    | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
    )""", re.VERBOSE)


class MalformedQuery(ValueError):
    pass


@dataclass
class Query:
    """`fields` is empty for SELECT COUNT()."""

    fields: list[str]
    sobject: str
    where: Predicate | None
    order: list[tuple[str, bool]]
    limit: int | None


def parse(soql: str) -> Query:
    tokens = tokenize(soql)
    parser = _Parser(tokens)
    return parser.query()


def unescape(literal: str) -> str:
    body = literal[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m.group(1), m.group(1)), body)


def tokenize(text: str, pattern: re.Pattern[str] = _TOKEN) -> list[tuple[str, str]]:
    """(kind, text) tokens by `pattern`'s named groups (SOQL's, or a formula's: formula.py)."""
    tokens: list[tuple[str, str]] = []
    position = 0
    text = text.rstrip()
    while position < len(text):
        match = pattern.match(text, position)
        if not match or match.end() == position:
            raise MalformedQuery(f"unexpected token at position {position}: {text[position:position + 20]!r}")
        kind = match.lastgroup or ""
        tokens.append((kind, match.group(kind)))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]]) -> None:
        self.tokens = tokens
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str]:
        index = self.i + offset
        return self.tokens[index] if index < len(self.tokens) else ("end", "")

    def word(self, *expected: str) -> bool:
        kind, value = self.peek()
        return kind == "word" and value.upper() in expected

    def take(self) -> tuple[str, str]:
        token = self.peek()
        self.i += 1
        return token

    def expect_word(self, word: str) -> None:
        if not self.word(word):
            raise MalformedQuery(f"expected {word} near {self.peek()[1]!r}")
        self.i += 1

    def query(self) -> Query:
        self.expect_word("SELECT")
        fields: list[str] = []
        if self.word("COUNT") and self.peek(1) == ("punct", "(") and self.peek(2) == ("punct", ")"):
            self.i += 3
        else:
            fields.append(self.field())
            while self.peek() == ("punct", ","):
                self.i += 1
                fields.append(self.field())
        self.expect_word("FROM")
        kind, sobject = self.take()
        if kind != "word":
            raise MalformedQuery("expected an object name after FROM")
        where = None
        if self.word("WHERE"):
            self.i += 1
            where = self.disjunction()
        order: list[tuple[str, bool]] = []
        if self.word("ORDER"):
            self.i += 1
            self.expect_word("BY")
            while True:
                name = self.field()
                descending = False
                if self.word("ASC", "DESC"):
                    descending = self.take()[1].upper() == "DESC"
                order.append((name, descending))
                if self.peek() != ("punct", ","):
                    break
                self.i += 1
        limit = None
        if self.word("LIMIT"):
            self.i += 1
            kind, value = self.take()
            if kind != "number":
                raise MalformedQuery("LIMIT needs a number")
            limit = int(value)
        if self.peek()[0] != "end":
            raise MalformedQuery(f"unexpected {self.peek()[1]!r}")
        return Query(fields, sobject, where, order, limit)

    def field(self) -> str:
        kind, value = self.take()
        if kind != "word":
            raise MalformedQuery(f"expected a field name, got {value!r}")
        return value

    def disjunction(self) -> Predicate:
        parts = [self.conjunction()]
        while self.word("OR"):
            self.i += 1
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else (lambda r: any(p(r) for p in parts))

    def conjunction(self) -> Predicate:
        parts = [self.negation()]
        while self.word("AND"):
            self.i += 1
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else (lambda r: all(p(r) for p in parts))

    def negation(self) -> Predicate:
        if self.word("NOT"):
            self.i += 1
            inner = self.negation()
            return lambda r: not inner(r)
        if self.peek() == ("punct", "("):
            self.i += 1
            inner = self.disjunction()
            if self.take() != ("punct", ")"):
                raise MalformedQuery("missing )")
            return inner
        return self.comparison()

    def comparison(self) -> Predicate:
        name = self.field()
        if self.word("IN") or (self.word("NOT") and self.peek(1)[1].upper() == "IN"):
            negate = self.take()[1].upper() == "NOT"
            if negate:
                self.i += 1
            if self.take() != ("punct", "("):
                raise MalformedQuery("IN needs a list in parentheses")
            values = [self.literal()]
            while self.peek() == ("punct", ","):
                self.i += 1
                values.append(self.literal())
            if self.take() != ("punct", ")"):
                raise MalformedQuery("missing ) after the IN list")
            members = {_key(v) for v in values}
            return lambda r: (_key(_get(r, name)) in members) is not negate
        if self.word("LIKE"):
            self.i += 1
            pattern = self.literal()
            if not isinstance(pattern, str):
                raise MalformedQuery("LIKE needs a string")
            regex = re.compile("^" + re.escape(pattern).replace("%", ".*").replace("_", ".") + "$", re.IGNORECASE)
            return lambda r: isinstance(_get(r, name), str) and bool(regex.match(_get(r, name)))
        kind, op = self.take()
        if kind != "op":
            raise MalformedQuery(f"expected an operator after {name}")
        value = self.literal()
        compare = _OPS[op]
        return lambda r: compare(_get(r, name), value)

    def literal(self) -> Any:
        kind, value = self.take()
        if kind == "string":
            return unescape(value)
        if kind == "number":
            return float(value) if "." in value else int(value)
        if kind == "datetime":
            return datetime.fromisoformat(value.replace("Z", "+00:00"))
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "word" and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if kind == "word" and value.lower() == "null":
            return None
        raise MalformedQuery(f"expected a value, got {value!r}")


def _get(record: Record, name: str) -> Any:
    value: Any = record
    for part in name.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def _key(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _comparable(a: Any, b: Any) -> tuple[Any, Any] | None:
    if a is None or b is None:
        return None
    if isinstance(b, datetime) and isinstance(a, str):
        a = datetime.fromisoformat(a.replace("Z", "+00:00"))
    if isinstance(a, datetime) and a.tzinfo is None:
        a = a.replace(tzinfo=UTC)
    if isinstance(b, date) and not isinstance(b, datetime) and isinstance(a, str):
        a = date.fromisoformat(a[:10])
    try:
        a < b  # noqa: B015 - a probe: are they comparable at all?
    except TypeError:
        return None
    return a, b


def _eq(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is None and b is None
    pair = _comparable(a, b)
    return pair is not None and _key(pair[0]) == _key(pair[1])


def _ordered(test: Callable[[Any, Any], bool]) -> Callable[[Any, Any], bool]:
    def compare(a: Any, b: Any) -> bool:
        pair = _comparable(a, b)
        return pair is not None and bool(test(*pair))
    return compare


_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "=": _eq, "!=": lambda a, b: not _eq(a, b), "<>": lambda a, b: not _eq(a, b),
    "<": _ordered(lambda a, b: a < b), ">": _ordered(lambda a, b: a > b),
    "<=": _ordered(lambda a, b: a <= b), ">=": _ordered(lambda a, b: a >= b),
}


def sort_key(record: Record, name: str) -> tuple[int, Any]:
    value = _get(record, name)
    if value is None:
        return (0, "")  # nulls first, as Salesforce sorts ascending by default
    if isinstance(value, str) and re.match(r"\d{4}-\d{2}-\d{2}T", value):
        return (1, datetime.fromisoformat(value.replace("Z", "+00:00")))
    return (1, value)
