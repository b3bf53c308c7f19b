"""Regular expressions from the definitions, which run on text anyone can type into the CRM.

Every pattern is compiled and run with RE2 (`google-re2`), whose matching time is linear in the
text: no pattern can make a hostile job title or page URL take exponential time. RE2 has no
backreferences or lookaround; a pattern using them is refused at `validate` with RE2's reason.

Nested quantifiers such as `(a+)+` are refused too. RE2 runs them in linear time, but they are
the classic catastrophic-backtracking form in the engines where these governed patterns are also
likely to be pasted (Salesforce validation rules and Apex use Java's regex, HubSpot workflows
JavaScript's), and they never say more than the pattern without the outer repeat.
"""

from __future__ import annotations

import re
import re._constants as sre  # the standard library's own regex parser, for the nesting check
import re._parser as sre_parse
from typing import Any

import re2

MAX_LENGTH = 500
"""Longer patterns are a mistake in a definitions file, and cost RE2 memory per pattern."""


class Found:
    """What a pattern matched (like `re.Match.group(0)`); always truthy, even for an empty match."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def group(self, index: int = 0) -> str:
        return self.text


class Pattern:
    """A compiled definitions pattern: `search` is case-insensitive, linear in the text, and never
    raises on odd text (lone surrogates are matched as U+FFFD).

    It calls RE2 directly (`_regexp.Match`): the `re2` module's own `search` builds a full match
    object with character offsets, about five times slower for the engine's short texts.
    """

    __slots__ = ("_match", "pattern")

    def __init__(self, pattern: str, compiled: Any) -> None:
        self.pattern = pattern
        self._match = compiled._regexp.Match

    def search(self, text: str) -> Found | None:
        data = text.encode("utf-8", "replace")
        start, end = self._match(_UNANCHORED, data, 0, len(data))[0]
        return None if start < 0 else Found(data[start:end].decode("utf-8", "replace"))


def _options() -> Any:
    options = re2.Options()
    options.case_sensitive = False  # every definitions pattern matches case-insensitively
    options.log_errors = False  # the reason goes into the validation message, not to stderr
    options.never_capture = True  # only whether and what matched is used
    return options


_UNANCHORED = re2._Anchor.UNANCHORED


_OPTIONS = _options()


def compile_pattern(pattern: str) -> Pattern:
    """The RE2 form of a definitions pattern, or `ValueError` saying why it is refused."""
    if len(pattern) > MAX_LENGTH:
        raise ValueError(f"pattern is {len(pattern)} characters long, more than {MAX_LENGTH}")
    try:
        compiled = re2.compile(pattern, _OPTIONS)
    except re2.error as exc:
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else str(exc)
        raise ValueError(f"not a valid regular expression for RE2, which runs in linear time and has no "
                         f"backreferences or lookaround ({reason})") from None
    if _nested_quantifier(pattern):
        raise ValueError("nested quantifier (a repeated group that itself repeats, like (a+)+): catastrophic "
                         "backtracking in most regex engines; drop the outer repeat")
    return Pattern(pattern, compiled)


def _nested_quantifier(pattern: str) -> bool:
    try:
        tree = sre_parse.parse(pattern)
    except re.error:
        return False  # RE2 accepted a syntax Python's parser does not know (e.g. \pL): nothing to add
    return _walk(tree, inside_repeat=False)


def _walk(items: Any, *, inside_repeat: bool) -> bool:
    """Whether a repeat (max > 1) sits inside another repeat."""
    for op, av in items:
        if op in (sre.MAX_REPEAT, sre.MIN_REPEAT, sre.POSSESSIVE_REPEAT):
            _, high, body = av
            if high > 1 and inside_repeat:
                return True
            if _walk(body, inside_repeat=inside_repeat or high > 1):
                return True
        elif any(_walk(child, inside_repeat=inside_repeat) for child in _children(av)):
            return True
    return False


def _children(value: Any) -> list[Any]:
    if isinstance(value, sre_parse.SubPattern):
        return [value]
    if isinstance(value, tuple | list):
        return [child for item in value for child in _children(item)]
    return []
