"""docs/CONTRIBUTING_CONTRACTS.md is generated from the stages' schemas and stays readable (issue 22)."""

from __future__ import annotations

import polars as pl
import pytest

from lexalign.cli import main as cli_main
from lexalign.contracts import document
from lexalign.contracts.document import MAX_WIDTH, main, render
from lexalign.core.errors import LexalignError
from lexalign.lexical import evaluate as lexical
from lexalign.norms.templates import SCHEMAS
from lexalign.population import simulate
from lexalign.wvs import evaluate as wvs
from lexalign.wvs.text_answers import MODE_COLUMNS


@pytest.fixture
def committed(repo):
    return repo / "docs" / "CONTRIBUTING_CONTRACTS.md"


def test_the_committed_document_is_current(committed, capsys):
    assert main(["--check", "--out", str(committed)]) == 0
    assert cli_main(["contracts-doc", "--check", "--out", str(committed)]) == 0
    assert "up to date" in capsys.readouterr().out


def test_every_line_is_under_120_characters(committed):
    wide = [n for n, line in enumerate(committed.read_text(encoding="utf-8").splitlines(), 1) if len(line) > MAX_WIDTH]
    assert wide == []


def test_a_stale_document_fails_the_check(committed, tmp_path):
    stale = tmp_path / "contracts.md"
    stale.write_text(committed.read_text(encoding="utf-8").replace("| `list_complete` |", "| `complete` |"))
    with pytest.raises(LexalignError, match="out of date.*lexalign contracts-doc"):
        main(["--check", "--out", str(stale)])
    with pytest.raises(LexalignError, match="no such file"):
        main(["--check", "--out", str(tmp_path / "absent.md")])


def test_writing_then_checking_round_trips(tmp_path):
    out = tmp_path / "docs" / "contracts.md"
    assert main(["--out", str(out)]) == 0
    assert main(["--check", "--out", str(out)]) == 0


@pytest.mark.parametrize(
    ("schema", "column"),
    [
        (lexical.GENERATIONS_SCHEMA, "n_tokens"),
        (simulate.GENERATIONS_SCHEMA, "participant"),
        (SCHEMAS["eval"], "human_counts"),
        (MODE_COLUMNS["describe"], "stated_numbers"),
        (wvs.ANSWERS_ITEM_SCHEMA, "answer_code"),
    ],
)
def test_a_retyped_column_makes_the_committed_document_stale(committed, monkeypatch, schema, column):
    monkeypatch.setitem(schema, column, pl.Float32)
    with pytest.raises(LexalignError, match="out of date"):
        main(["--check", "--out", str(committed)])


def test_a_new_column_without_a_meaning_stops_the_generator(monkeypatch):
    monkeypatch.setitem(lexical.GENERATIONS_SCHEMA, "temperature", pl.Float64)
    with pytest.raises(LexalignError, match="column temperature has no meaning"):
        render()


def test_a_removed_column_stops_the_generator(monkeypatch):
    monkeypatch.delitem(wvs.ANSWERS_ITEM_SCHEMA, "valid_mass")
    with pytest.raises(LexalignError, match="valid_mass .* names no column"):
        render()


def test_a_new_schema_version_makes_the_committed_document_stale(committed, monkeypatch):
    monkeypatch.setattr(wvs, "SCHEMA_VERSION", wvs.SCHEMA_VERSION + 1)
    with pytest.raises(LexalignError, match="out of date"):
        main(["--check", "--out", str(committed)])


def test_a_line_over_the_limit_stops_the_generator(monkeypatch):
    monkeypatch.setattr(document, "API", "x" * (MAX_WIDTH + 1) + "\n")
    with pytest.raises(LexalignError, match=f"line over {MAX_WIDTH} characters"):
        render()
