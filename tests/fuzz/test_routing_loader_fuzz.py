"""Fuzzing ``callswitch.routing.check_text``: it never raises and every error is located.

Inputs: arbitrary YAML documents (recursive dicts/lists/scalars), structural mutations of
config/routing.example.yaml (delete/replace/rename/wrap keys and values) and line-level damage
of its text (syntax errors). Tables are read from config/ like the real file does.

CI budget: a few hundred examples, well under 20 s. Long run::

    HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/fuzz/test_routing_loader_fuzz.py -q
"""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import given
from hypothesis import strategies as st

from callswitch.routing import check_text
from tests.fuzz._budget import budget
from tests.fuzz._yamlfuzz import DOCUMENTS, assert_located, dump, mutated, text_mutations

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EXAMPLE_TEXT = (CONFIG_DIR / "routing.example.yaml").read_text(encoding="utf-8")
EXAMPLE = yaml.safe_load(EXAMPLE_TEXT)
FILE = str(CONFIG_DIR / "routing.fuzz.yaml")


def check(text: str) -> None:
    result = check_text(text, FILE, base_dir=CONFIG_DIR)
    if result.rules is not None:
        assert not result.errors
    else:
        assert result.problems
    for problem in result.errors:
        assert_located(problem, FILE)


def test_the_example_itself_is_valid() -> None:
    assert check_text(EXAMPLE_TEXT, FILE, base_dir=CONFIG_DIR).ok


@budget(80)
@given(doc=DOCUMENTS)
def test_arbitrary_documents(doc: object) -> None:
    check(dump(doc))


@budget(80)
@given(doc=mutated(EXAMPLE))
def test_mutated_example(doc: object) -> None:
    check(dump(doc))


@budget(80)
@given(text=text_mutations(EXAMPLE_TEXT))
def test_damaged_example_text(text: str) -> None:
    check(text)


@budget(60)
@given(text=st.text(max_size=200))
def test_arbitrary_text(text: str) -> None:
    check(text)


def test_empty_document_errors_are_located() -> None:
    for text in ("", "# only a comment\n"):
        for problem in check_text(text, FILE, base_dir=CONFIG_DIR).errors:
            assert_located(problem, FILE)


def test_unacceptable_character_is_located() -> None:
    for problem in check_text("\x1f", FILE, base_dir=CONFIG_DIR).errors:
        assert_located(problem, FILE)
