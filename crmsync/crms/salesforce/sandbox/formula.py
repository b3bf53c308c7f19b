"""The validation-rule formulas the sandbox can evaluate: exactly the shape `crmsync setup --guard`
generates, and nothing else.

Functions: AND, OR, NOT, ISBLANK, TRIM, ISNEW, ISCHANGED and ISPICKVAL (Salesforce Help, "Formula
Operators and Functions": https://help.salesforce.com/s/articleView?id=sf.customize_functions.htm);
operands: field API names (a checkbox field is a boolean), "double-quoted" text and TRUE / FALSE.
A formula using anything else is refused when the rule is saved (`FormulaError`), never silently
accepted: a rule the sandbox cannot evaluate would let every save through.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

from crmsync.crms.salesforce.sandbox.soql import MalformedQuery, tokenize

Record = dict[str, Any]
Evaluate = Callable[[Record, Record | None], Any]
"""(the record as it would be saved, the record before the save or None on insert) -> value."""

BOOLEAN_FIELDS = {"IsConverted", "IsDeleted"}
"""Standard Lead checkboxes (the org's field kinds call them read-only or system)."""

_TOKEN = re.compile(r'\s*(?:(?P<string>"(?:[^"\\]|\\.)*")|(?P<punct>[(),])|(?P<word>[A-Za-z_$][A-Za-z0-9_.]*))')


class FormulaError(ValueError):
    """A formula the sandbox cannot evaluate (bad syntax, an unknown field or function, a wrong type)."""


def compile_formula(text: str, fields: dict[str, str]) -> Evaluate:
    """The formula as a function, checked against the object's fields (name -> kind)."""
    return _compile(text, tuple(sorted(fields.items())))


@lru_cache(maxsize=64)
def _compile(text: str, fields: tuple[tuple[str, str], ...]) -> Evaluate:
    parser = _Parser(_tokens(text), dict(fields))
    function, kind = parser.expression()
    if parser.tokens:
        raise FormulaError(f"unexpected {parser.tokens[0][1]!r} after the end of the formula")
    if kind != "boolean":
        raise FormulaError("a validation rule's formula must be a boolean")
    return function


def _tokens(text: str) -> list[tuple[str, str]]:
    try:
        return tokenize(text, _TOKEN)
    except MalformedQuery as exc:
        raise FormulaError(f"cannot read the formula: {exc}") from None


class _Parser:
    def __init__(self, tokens: list[tuple[str, str]], fields: dict[str, str]) -> None:
        self.tokens, self.fields = tokens, fields

    def take(self, expected: str | None = None) -> tuple[str, str]:
        if not self.tokens:
            raise FormulaError("the formula ends too early")
        token = self.tokens.pop(0)
        if expected is not None and token[1] != expected:
            raise FormulaError(f"expected {expected!r}, got {token[1]!r}")
        return token

    def expression(self) -> tuple[Evaluate, str]:
        kind, value = self.take()
        if kind == "string":
            text = re.sub(r"\\(.)", r"\1", value[1:-1])
            return (lambda new, old: text), "text"
        if kind != "word":
            raise FormulaError(f"unexpected {value!r}")
        if value.upper() in ("TRUE", "FALSE"):
            constant = value.upper() == "TRUE"
            return (lambda new, old: constant), "boolean"
        if self.tokens and self.tokens[0][1] == "(":
            return self.call(value.upper())
        return self.field(value)

    def field(self, name: str) -> tuple[Evaluate, str]:
        if name not in self.fields:
            raise FormulaError(f"Field {name} does not exist. Check spelling.")
        kind = "boolean" if self.fields[name] == "boolean" or name in BOOLEAN_FIELDS else \
            "picklist" if self.fields[name] == "picklist" else "text"
        return (lambda new, old: new.get(name)), kind

    def arguments(self) -> list[tuple[Evaluate, str, str | None]]:
        """(function, kind, field name when the argument is a bare field)."""
        self.take("(")
        out: list[tuple[Evaluate, str, str | None]] = []
        while self.tokens and self.tokens[0][1] != ")":
            bare = self.tokens[0][1] if self.tokens[0][0] == "word" and self.tokens[1:2] != [("punct", "(")] else None
            function, kind = self.expression()
            out.append((function, kind, bare))
            if self.tokens and self.tokens[0][1] == ",":
                self.take(",")
        self.take(")")
        return out

    def call(self, name: str) -> tuple[Evaluate, str]:
        args = self.arguments()
        kinds = [kind for _, kind, _ in args]
        fns = [fn for fn, _, _ in args]
        if name in ("AND", "OR") and args and all(k == "boolean" for k in kinds):
            join = all if name == "AND" else any
            return (lambda new, old: join(bool(f(new, old)) for f in fns)), "boolean"
        if name == "NOT" and kinds == ["boolean"]:
            return (lambda new, old: not fns[0](new, old)), "boolean"
        if name == "ISBLANK" and kinds in (["text"], ["boolean"]):
            return (lambda new, old: fns[0](new, old) in (None, "")), "boolean"
        if name == "TRIM" and kinds == ["text"]:
            return (lambda new, old: str(fns[0](new, old) or "").strip(" \t\r\n")), "text"
        if name == "ISNEW" and not args:
            return (lambda new, old: old is None), "boolean"
        if name == "ISCHANGED" and len(args) == 1 and args[0][2] in self.fields:
            field = str(args[0][2])
            return (lambda new, old: old is not None and old.get(field) != new.get(field)), "boolean"
        if name == "ISPICKVAL" and kinds == ["picklist", "text"] and args[1][2] is None:
            return (lambda new, old: fns[0](new, old) == fns[1](new, old)), "boolean"
        raise FormulaError(f"the sandbox cannot evaluate {name}({', '.join(kinds)})")
