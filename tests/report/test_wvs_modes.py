"""The tables across WVS answer modes on hand-made answers: every mode side by side, agreement per item."""

from __future__ import annotations

import polars as pl
import pytest

from lexalign.report import wvs_modes
from lexalign.report.readers import Results, WvsResult
from lexalign.wvs.metrics import js_distance

IDS = ["Q1", "Q2", "Q3", "Q4"]
COUNTRIES = {"usa": "United States", "chn": "China"}


def _answers(probs, extra=None) -> pl.DataFrame:
    """answers.parquet columns the tables read: the distributions, the per-item metrics vs both countries."""
    positions = [None if p is None else max(range(len(p)), key=p.__getitem__) + 1 for p in probs]
    columns = {
        "item_id": IDS,
        "probs": pl.Series(probs, dtype=pl.List(pl.Float64)),
        "answered": [p is not None for p in probs],
        "answer_position": pl.Series(positions, dtype=pl.Int64),
    }
    for key, offset in (("usa", 0.0), ("chn", 0.2)):
        values = [None if p is None else round(0.1 * (i + 1) + offset, 3) for i, p in enumerate(probs)]
        columns[f"js_{key}"] = pl.Series(values, dtype=pl.Float64)
        columns[f"emd_norm_{key}"] = pl.Series([None if v is None else v / 2 for v in values], dtype=pl.Float64)
    return pl.DataFrame({**columns, **(extra or {})})


def _results() -> Results:
    logits = _answers([[0.7, 0.3], [0.2, 0.8], [0.5, 0.5], [0.9, 0.1]])
    generate = _answers(
        [[1.0, 0.0], None, [0.0, 1.0], None],
        {
            "text_outcome": ["option", "refusal", "option", "no valid option"],
            "raw_text": ["1", "I'm sorry, I can't.", "2", "hmm"],
        },
    )
    sample = _answers(
        [[0.75, 0.25], [0.0, 1.0], [0.5, 0.5], None],
        {
            "invalid_share": [0.0, 0.5, 0.0, 1.0],
            "refusal_share": [0.0, 0.25, 0.0, 0.5],
            "text_outcome": pl.Series([None] * 4, dtype=pl.String),
        },
    )
    describe = _answers(
        [[0.6, 0.4], [0.3, 0.7], None, [0.8, 0.2]], {"text_outcome": ["stated", "stated", "refusal", "stated"]}
    )
    results = Results(models=["m"], languages=["en"], methods=["vanilla"])
    for mode, answers in (("logits", logits), ("generate", generate), ("sample", sample), ("describe", describe)):
        result = WvsResult(target="United States", countries=COUNTRIES, framing="interviewer", mode=mode)
        result.answers = answers
        results.wvs_variants[("m", "en", "vanilla", "interviewer", mode)] = result
    return results


def _cell(table, **where) -> dict:
    rows = table.long.filter(pl.all_horizontal(pl.col(k) == v for k, v in where.items())).to_dicts()
    assert len(rows) == 1, (where, rows)
    return rows[0]


def test_every_mode_side_by_side_with_cis_and_invalid_shares():
    table = wvs_modes.modes_table(_results(), 200, 0.9, 1)
    assert table.name == "answer_modes"
    assert table.display["mode"].to_list() == ["logits", "generate", "sample", "describe"]
    # JS and EMD to each country's humans, over the items with a distribution
    js = _cell(table, mode="generate", humans="China", measure="js")
    assert js["mean"] == pytest.approx((0.3 + 0.5) / 2) and js["n_items"] == 2
    emd = _cell(table, mode="logits", humans="United States", measure="emd_norm")
    assert emd["mean"] == pytest.approx((0.05 + 0.1 + 0.15 + 0.2) / 4)
    assert emd["ci_low"] <= emd["mean"] <= emd["ci_high"] and emd["confidence"] == 0.9
    # invalid and refusal shares over every item asked: per item 0/1, sample mode's own shares
    expected = {"logits": (0, 0), "generate": (0.5, 0.25), "sample": (0.375, 0.1875), "describe": (0.25, 0.25)}
    for mode, (invalid, refusal) in expected.items():
        assert _cell(table, mode=mode, measure="invalid")["mean"] == pytest.approx(invalid)
        assert _cell(table, mode=mode, measure="refusal")["mean"] == pytest.approx(refusal)
    assert _cell(table, mode="sample", measure="invalid")["n_items"] == 4
    header = " ".join(table.display.columns)
    assert "js vs US [90% CI]" in header and "emd_norm vs China [90% CI]" in header and "invalid [90% CI]" in header
    assert table.display.filter(pl.col("mode") == "generate")["answered"].item() == "2 / 4"


def test_agreement_between_every_two_modes_per_item():
    summary, items = wvs_modes.agreement_tables(_results(), 200, 0.95, 1)
    pairs = summary.display["modes"].to_list()
    assert pairs == [
        "logits vs generate",
        "logits vs sample",
        "logits vs describe",
        "generate vs sample",
        "generate vs describe",
        "sample vs describe",
    ]
    mine = items.long.filter((pl.col("mode_a") == "logits") & (pl.col("mode_b") == "describe"))
    assert mine["item_id"].to_list() == IDS
    assert mine["agree"].to_list() == [True, True, None, True]
    assert mine["js_between"].to_list()[0] == pytest.approx(js_distance([0.7, 0.3], [0.6, 0.4]))
    agreement = _cell(summary, mode="logits vs generate", measure="agreement")
    assert agreement["mean"] == pytest.approx(0.5) and agreement["n_items"] == 2  # Q1 agrees, Q3 (a tie) does not
    between = _cell(summary, mode="logits vs sample", measure="js_between")
    assert between["n_items"] == 3 and between["mean"] > 0


def test_one_mode_is_no_comparison():
    results = _results()
    results.wvs_variants = {k: v for k, v in results.wvs_variants.items() if k[4] == "logits"}
    summary, items = wvs_modes.agreement_tables(results, 100, 0.95, 1)
    assert summary.long.is_empty() and items.long.is_empty()
    assert "no framing was run in more than one answer mode" in summary.notes[0]
    assert wvs_modes.modes_table(results, 100, 0.95, 1).display.height == 1


def test_a_mode_without_answers_is_left_out_with_a_note():
    results = _results()
    results.wvs_variants[("m", "en", "vanilla", "interviewer", "describe")].answers = None
    table = wvs_modes.modes_table(results, 100, 0.95, 1)
    assert "describe" not in table.display["mode"].to_list()
    assert "no answers.parquet for m/en/vanilla/interviewer/describe" in table.notes[0]


def test_index_text_names_the_modes_read():
    text = " ".join(wvs_modes.index_text(_results()))
    assert "read 4 ways" in text and "sample: the shares of its N sampled text answers" in text
    assert "answer_modes" in text and "mode_agreement" in text
    one = _results()
    one.wvs_variants = {k: v for k, v in one.wvs_variants.items() if k[4] == "logits"}
    assert wvs_modes.index_text(one) == []


def test_an_answers_table_without_distributions_agrees_by_argmax():
    logits = pl.DataFrame({"item_id": ["Q1", "Q2"], "answer_position": [1, 2]})
    text = pl.DataFrame({"item_id": ["Q1", "Q2"], "answer_position": pl.Series([1, None], dtype=pl.Int64)})
    items = wvs_modes.agreement_items(logits, text)
    assert items["agree"].to_list() == [True, None] and items["js_between"].to_list() == [None, None]


@pytest.mark.parametrize("modes", [("logits", "generate", "sample", "describe"), ("logits", "generate")])
def test_the_report_shows_the_modes_asked(tmp_path, modes):
    from test_report import run_report, write_wvs

    root = tmp_path / "results"
    hand_made = {mode: result.answers for (*_, mode), result in _results().wvs_variants.items()}
    for mode in modes:
        write_wvs(root, "m", "en", "vanilla", 0.05, 7, variant=f"interviewer-{mode}")
        hand_made[mode].write_parquet(root / f"wvs/m/en/vanilla/interviewer-{mode}/answers.parquet")
    results, index = run_report(root, tmp_path / "report", methods=["vanilla"], models=["m"], langs=["en"], modes=modes)
    tables = index.parent / "tables/tier2"
    shown = pl.read_csv(tables / "answer_modes.csv")
    assert list(dict.fromkeys(shown["mode"])) == list(modes)
    assert set(shown["measure"]) == {"js", "emd_norm", "invalid", "refusal"}
    assert set(shown.filter(pl.col("measure") == "js")["humans"]) == {"United States", "China"}
    pairs = pl.read_csv(tables / "mode_agreement.csv")
    assert len(set(pairs["mode"])) == len(modes) * (len(modes) - 1) // 2
    per_item = pl.read_csv(tables / "mode_agreement_items.csv")
    assert per_item.height == 4 * len(set(pairs["mode"]))
    gap = pl.read_csv(tables / "logit_text_gap.csv")  # the logit-text gap is still there
    assert dict(zip(gap["measure"], gap["mean"]))["refusal"] == pytest.approx(0.25)
    text = index.read_text(encoding="utf-8")
    assert f"read {len(modes)} ways" in text and "tables/tier2/mode_agreement.csv" in text
