"""quantlab.errors.suggest: the one "did you mean" helper of quantlab and bridge."""

from __future__ import annotations

import string

from hypothesis import given
from hypothesis import strategies as st

from quantlab.errors import suggest

NAMES = st.text(alphabet=string.ascii_lowercase + string.digits + "_", min_size=1, max_size=12)


def _suggested(hint: str) -> list[str]:
    """The names in a 'did you mean a, b?' hint (none when it is not one)."""
    if not hint.startswith("did you mean "):
        return []
    return hint.removeprefix("did you mean ").split("?")[0].split(", ")


def test_examples_read_the_same_everywhere() -> None:
    assert suggest("sharp", ["sharpe", "sortino", "calmar"]) == "did you mean sharpe?"
    assert suggest("zzz", ["sharpe"], otherwise="use one of sharpe") == "use one of sharpe"
    assert suggest("prot", ["host", "port"], then="known: host, port") == "did you mean port? known: host, port"
    assert suggest("zzz", ["host"], then="known: host") == "known: host"
    assert suggest("zzz", []) == ""


def test_cutoff_admits_looser_matches() -> None:
    assert suggest("SPX", ["SPY"], cutoff=0.9) == ""
    assert suggest("SPX", ["SPY"], cutoff=0.5) == "did you mean SPY?"


@given(word=NAMES, choices=st.lists(NAMES, max_size=20))
def test_suggests_at_most_three_known_names(word: str, choices: list[str]) -> None:
    names = _suggested(suggest(word, choices))
    assert len(names) <= 3
    assert set(names) <= set(choices)


@given(word=NAMES, choices=st.lists(NAMES, max_size=20))
def test_a_known_name_is_suggested_first(word: str, choices: list[str]) -> None:
    assert _suggested(suggest(word, [*choices, word]))[0] == word


@given(word=NAMES, choices=st.lists(NAMES, max_size=20), then=NAMES, otherwise=NAMES)
def test_then_always_ends_the_hint_and_otherwise_replaces_an_empty_suggestion(
    word: str, choices: list[str], then: str, otherwise: str
) -> None:
    hint = suggest(word, choices, otherwise=otherwise, then=then)
    assert hint.endswith(" " + then)
    if not _suggested(hint):
        assert hint == f"{otherwise} {then}"


@given(word=NAMES, choices=st.lists(NAMES, max_size=20))
def test_the_order_of_the_choices_does_not_change_the_hint(word: str, choices: list[str]) -> None:
    assert suggest(word, choices) == suggest(word, list(reversed(choices)))


def test_suggest_is_the_only_did_you_mean() -> None:
    """One helper for suggestions (issue 11): no module but quantlab/errors.py uses difflib."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    users = sorted(
        str(p.relative_to(root))
        for folder in ("quantlab", "bridge", "research")
        for p in (root / folder).rglob("*.py")
        if "difflib" in p.read_text(encoding="utf-8")
    )
    assert users == ["quantlab/errors.py"]
