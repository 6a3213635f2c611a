"""Fuzzing ``callswitch.config.load_config``: it raises only ConfigError, every problem located.

Inputs: structural mutations of config/callswitch.example.yaml (delete/replace/rename/wrap keys
and values), line-level damage of its text, and arbitrary YAML documents. The file is written
next to a copy of the example routing file so ``routing.file`` resolves.

CI budget: a few hundred examples, well under 20 s. Long run::

    HYPOTHESIS_PROFILE=long .venv/bin/pytest tests/fuzz/test_config_loader_fuzz.py -q
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
import yaml
from hypothesis import given

from callswitch.config import Config, ConfigError, load_config
from tests.fuzz._budget import budget
from tests.fuzz._yamlfuzz import DOCUMENTS, assert_located, dump, mutated, text_mutations

CONFIG_DIR = Path(__file__).resolve().parents[2] / "config"
EXAMPLE_TEXT = (CONFIG_DIR / "callswitch.example.yaml").read_text(encoding="utf-8")
EXAMPLE = yaml.safe_load(EXAMPLE_TEXT)
ENV: dict[str, str] = {}  # ${VAR:-default} falls back to the defaults


@pytest.fixture(scope="module")
def workdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="callswitch-config-fuzz-"))
    shutil.copy(CONFIG_DIR / "routing.example.yaml", path / "routing.example.yaml")
    shutil.copytree(CONFIG_DIR / "routing", path / "routing")
    return path


def check(workdir: Path, text: str) -> None:
    path = workdir / "callswitch.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        config = load_config(path, env=ENV)
    except ConfigError as exc:
        assert exc.problems, "ConfigError without problems"
        for problem in exc.problems:
            assert_located(problem, str(path))
    else:
        assert isinstance(config, Config)


def test_the_example_itself_is_valid(workdir: Path) -> None:
    check(workdir, EXAMPLE_TEXT)
    load_config(_write(workdir, EXAMPLE_TEXT), env=ENV)


def _write(workdir: Path, text: str) -> Path:
    path = workdir / "callswitch.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@budget(150)
@given(doc=mutated(EXAMPLE))
def test_mutated_example(workdir: Path, doc: object) -> None:
    check(workdir, dump(doc))


@budget(80)
@given(text=text_mutations(EXAMPLE_TEXT))
def test_damaged_example_text(workdir: Path, text: str) -> None:
    check(workdir, text)


@budget(60)
@given(doc=DOCUMENTS)
def test_arbitrary_documents(workdir: Path, doc: object) -> None:
    check(workdir, dump(doc))


def test_unacceptable_character_is_located(workdir: Path) -> None:
    for text in ("", "\x1f"):
        path = _write(workdir, text)
        with pytest.raises(ConfigError) as info:
            load_config(path, env=ENV)
        for problem in info.value.problems:
            assert_located(problem, str(path))
