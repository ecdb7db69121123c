"""UTS #39 (Unicode security mechanisms) for IDs, pure: confusable skeletons and script mixing.

The data is Unicode's own (``confusables.txt`` and ``Scripts.txt``) as the
``confusable_homoglyphs`` package ships it, so it works offline and is updated
with that package, not by hand.

That package stores ``confusables.txt`` as an undirected graph (each line
``source → prototype`` is kept in both directions). Every source has exactly
one prototype and prototypes are never sources, so each connected piece is a
star around its prototype: a character with several neighbours, or whose one
neighbour is a string of several characters, is the centre. A pair of single
characters with only each other has no telling which is which; either one
stands for both (the smaller), which keeps ``skeleton(a) == skeleton(b)``
exactly as Unicode's mapping would decide it.
"""

from __future__ import annotations

import bisect
import json
import unicodedata
from functools import cache
from importlib import resources

_LRM = "\u200e"  # the package wraps right-to-left characters in LRM for display


def _load(name: str) -> object:
    return json.loads(resources.files("confusable_homoglyphs").joinpath(name).read_text(encoding="utf-8"))


@cache
def _prototypes() -> dict[str, str]:
    raw = _load("confusables.json")
    assert isinstance(raw, dict)
    graph: dict[str, list[str]] = {
        key.replace(_LRM, ""): [str(e["c"]).replace(_LRM, "") for e in entries] for key, entries in raw.items()
    }
    out: dict[str, str] = {}
    for char, targets in graph.items():
        if len(char) != 1 or len(targets) != 1:
            continue  # a prototype of several sources (or a string): it stands for itself
        target = targets[0]
        if len(target) > 1 or len(graph.get(target, ())) > 1:
            out[char] = target
        else:
            out[char] = min(char, target)
    return out


def skeleton(text: str) -> str:
    """UTS #39 ``skeleton``: strings that look alike have the same skeleton (``аlice`` → ``alice``)."""
    table = _prototypes()
    mapped = "".join(table.get(ch, ch) for ch in unicodedata.normalize("NFD", text))
    return unicodedata.normalize("NFD", mapped)


@cache
def _script_ranges() -> tuple[list[int], list[int], list[str]]:
    raw = _load("categories.json")
    assert isinstance(raw, dict)
    names: list[str] = raw["iso_15924_aliases"]
    starts: list[int] = []
    ends: list[int] = []
    scripts: list[str] = []
    for start, end, alias, _category in raw["code_points_ranges"]:
        starts.append(start)
        ends.append(end)
        scripts.append(names[alias])
    return starts, ends, scripts


def script(ch: str) -> str:
    """The Unicode Script property in upper case (``LATIN``, ``HANGUL``, ``COMMON`` …); ``UNKNOWN`` if none."""
    starts, ends, scripts = _script_ranges()
    cp = ord(ch)
    i = bisect.bisect_right(starts, cp) - 1
    if i >= 0 and cp <= ends[i]:
        return scripts[i]
    return "UNKNOWN"


_ANY_SCRIPT = frozenset({"COMMON", "INHERITED"})
# UTS #39 5.2 "Highly Restrictive": one script, or Latin with one of these East Asian sets.
_WITH_LATIN = (
    frozenset({"HAN", "HIRAGANA", "KATAKANA"}),  # Japanese
    frozenset({"HAN", "BOPOMOFO"}),  # Chinese
    frozenset({"HAN", "HANGUL"}),  # Korean
)


def scripts_of(text: str) -> set[str]:
    """The scripts ``text`` uses, leaving out Common and Inherited (digits, marks), which go with any."""
    return {s for s in map(script, text) if s not in _ANY_SCRIPT}


def highly_restrictive(text: str) -> bool:
    """Whether ``text`` passes UTS #39's "Highly Restrictive" level (5.2)."""
    used = scripts_of(text)
    if len(used) <= 1:
        return True
    rest = used - {"LATIN"}
    return any(rest <= allowed for allowed in _WITH_LATIN)


def mixed_digits(text: str) -> bool:
    """Whether ``text`` has decimal digits from more than one number system (``1`` and ``١``), UTS #39 5.3."""
    zeros = {ord(ch) - unicodedata.digit(ch) for ch in text if unicodedata.category(ch) == "Nd"}
    return len(zeros) > 1
