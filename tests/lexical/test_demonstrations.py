"""Tier-1 norms in context (the norms_prompt method): the seeded draw of demonstrations from the train cues
only, their chat turns, the same demonstrations for every test cue of a job, and the leakage check."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lexalign.core.errors import LexalignError
from lexalign.lexical.demonstrations import (
    Demonstration,
    check_leakage,
    demonstration_turns,
    draw_demonstrations,
    prepare,
    train_lists,
    with_demonstrations,
)
from lexalign.lexical.settings import DemonstrationSettings
from lexalign.norms.ingest import ingest, load_associations
from lexalign.norms.templates import prompt_templates

TEMPLATES = prompt_templates("en")
BOUNDS = [20, 30]
FORM = DemonstrationSettings(demonstrations=3, list_length=4, seed=7)


def associations(n_train: int = 12, n_val: int = 4, n_test: int = 4, words: int = 6) -> pl.DataFrame:
    """An ingested associations table: cue ``<split><i>``, responses ``w0`` (most frequent) .. ``w<words-1>``.
    Validation and test cues get longer lists than train cues, so a draw that looked at them would find them."""
    rows = []
    for split, n, length in (("train", n_train, words), ("val", n_val, words + 5), ("test", n_test, words + 5)):
        for i in range(n):
            cue = f"{split}{i:02d}"
            rows += [{"cue": cue, "response": f"w{j}", "count": 100 - j, "split": split} for j in range(length)]
    return pl.DataFrame(rows, schema={"cue": pl.String, "response": pl.String, "count": pl.Int64, "split": pl.String})


def test_the_draw_is_seeded():
    table = associations()
    first = draw_demonstrations(table, 3, 4, seed=1)
    assert draw_demonstrations(table, 3, 4, seed=1) == first
    assert len({d.cue for d in first}) == 3
    draws = {tuple(d.cue for d in draw_demonstrations(table, 3, 4, seed=seed)) for seed in range(10)}
    assert len(draws) > 1  # the seed picks the cues


def test_the_draw_does_not_depend_on_row_order():
    table = associations()
    assert draw_demonstrations(table.reverse(), 3, 4, 5) == draw_demonstrations(
        table.sample(fraction=1.0, seed=3), 3, 4, 5
    )


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), k=st.integers(1, 6), length=st.integers(1, 12))
def test_only_train_cues_are_drawn(seed, k, length):
    table = associations()
    drawn = draw_demonstrations(table, k, length, seed)
    splits = dict(table.select("cue", "split").unique().iter_rows())
    assert len(drawn) == k
    assert {splits[d.cue] for d in drawn} == {"train"}
    assert all(len(d.words) == min(length, 6) for d in drawn)


def test_lists_keep_the_norms_order_and_are_cut_at_the_list_length():
    table = pl.DataFrame(
        {
            "cue": ["dog"] * 4 + ["cat"] * 3,
            "response": ["bone", "cat", "bark", "puppy", "mouse", "dog", "milk"],
            "count": [3, 9, 3, 1, 2, 8, 2],
            "split": ["train"] * 7,
        }
    )
    assert train_lists(table) == [
        Demonstration("cat", ("dog", "milk", "mouse")),  # count descending, ties by word
        Demonstration("dog", ("cat", "bark", "bone", "puppy")),
    ]
    assert {d.words for d in draw_demonstrations(table, 2, 2, 0)} == {("dog", "milk"), ("cat", "bark")}


def test_cues_with_a_full_list_are_preferred():
    short = associations(n_train=10, words=3)
    full = associations(n_train=3, words=8).with_columns(pl.col("cue").str.replace("train", "long"))
    table = pl.concat([short, full.filter(pl.col("split") == "train")])
    for seed in range(20):
        assert {d.cue[:4] for d in draw_demonstrations(table, 3, 8, seed)} == {"long"}


def test_too_few_full_lists_fall_back_to_every_train_cue(caplog):
    drawn = draw_demonstrations(associations(n_train=5, words=3), 4, 10, seed=0)
    assert len(drawn) == 4 and all(len(d.words) == 3 for d in drawn)
    assert "only 0 train cues have 10 or more responses" in caplog.text


def test_fewer_train_cues_than_demonstrations_is_one_line():
    with pytest.raises(LexalignError, match="lexical.norms.demonstrations: 6 demonstrations need 6 train"):
        draw_demonstrations(associations(n_train=5), 6, 3, seed=0)


def test_every_test_cue_of_a_job_gets_the_same_demonstrations():
    table = associations()
    test_cues = sorted(table.filter(pl.col("split") == "test")["cue"].unique())
    turns, context = prepare(table, FORM, TEMPLATES, BOUNDS, test_cues)
    prompts = [
        [
            {"role": "system", "content": TEMPLATES["system"]},
            {"role": "user", "content": TEMPLATES["instruction"].format(cue=cue, lo=20, hi=30)},
        ]
        for cue in test_cues
    ]
    shown = [with_demonstrations(prompt, turns) for prompt in prompts]
    assert {str(prompt[:-1]) for prompt in shown} == {str(shown[0][:-1])}  # one prefix for every test cue
    assert [prompt[-1] for prompt in shown] == [prompt[-1] for prompt in prompts]  # each cue's own turn last
    assert shown[0][0] == prompts[0][0] and len(shown[0]) == 2 + 2 * FORM.demonstrations
    # another job on the same norms (another model or a subset of the cues) draws the same demonstrations
    assert prepare(table, FORM, TEMPLATES, BOUNDS, test_cues[:2])[0] == turns
    assert [d["cue"] for d in context["demonstrations"]] == [t["content"].split('"')[1] for t in turns[::2]]
    assert context["list_length"] == 4 and context["seed"] == 7 and context["leakage_check"].startswith("passed")


def test_turns_are_the_task_in_its_own_form():
    turns = demonstration_turns([Demonstration("dog", ("cat", "bone"))], TEMPLATES, BOUNDS)
    assert turns == [
        {"role": "user", "content": TEMPLATES["instruction"].format(cue="dog", lo=20, hi=30)},
        {"role": "assistant", "content": "cat, bone"},
    ]
    zh = prompt_templates("zh")
    assert demonstration_turns([Demonstration("狗", ("猫", "骨头"))], zh, BOUNDS)[1]["content"] == "猫，骨头"


def test_a_prompt_without_a_system_message_gets_the_turns_first():
    turns = demonstration_turns([Demonstration("dog", ("cat",))], TEMPLATES, BOUNDS)
    assert with_demonstrations([{"role": "user", "content": "x"}], turns) == [*turns, {"role": "user", "content": "x"}]


def test_the_leakage_check_refuses_validation_test_and_evaluated_cues():
    table = associations()
    assert check_leakage([Demonstration("train01", ())], table, ["test00"]).startswith("passed: 1 demonstrations")
    for cue, split in (("val01", "val"), ("test02", "test"), ("nowhere", "not in the norms")):
        with pytest.raises(RuntimeError, match=f"{cue}' \\({split}\\)"):
            check_leakage([Demonstration(cue, ())], table, [])
    with pytest.raises(RuntimeError, match="train03"):
        check_leakage([Demonstration("train03", ())], table, ["train03"])


def test_the_list_length_defaults_to_the_lower_evaluation_bound():
    assert DemonstrationSettings(3, None, 1).words([20, 30]) == 20
    assert DemonstrationSettings(3, 12, 1).words([20, 30]) == 12


def test_settings_name_a_misspelt_or_missing_key():
    assert DemonstrationSettings.from_config({"demonstrations": 3, "list_length": None, "seed": 4}).seed == 4
    with pytest.raises(LexalignError, match="unknown key lexical.norms.demonstration"):
        DemonstrationSettings.from_config({"demonstration": 3, "demonstrations": 3, "list_length": None, "seed": 4})
    with pytest.raises(LexalignError, match="no lexical.norms.seed"):
        DemonstrationSettings.from_config({"demonstrations": 3, "list_length": None})
    with pytest.raises(LexalignError, match="demonstrations: 0 is not at least 1"):
        DemonstrationSettings(0, None, 1)


def test_illustrative_norms_demonstrations_are_train_cues(swow_en, tmp_path):
    split = {"train": 0.7, "val": 0.2, "test": 0.1}
    ingest(swow_en, {"format": "raw"}, split, 42, tmp_path / "a.parquet", tmp_path / "s.json")
    table = load_associations(tmp_path / "a.parquet")
    test_cues = table.filter(pl.col("split") == "test")["cue"].unique().to_list()
    turns, context = prepare(table, DemonstrationSettings(3, None, 42), TEMPLATES, BOUNDS, test_cues)
    train = set(table.filter(pl.col("split") == "train")["cue"].to_list())
    assert {d["cue"] for d in context["demonstrations"]} <= train
    assert [d["n_words"] for d in context["demonstrations"]] == [20, 20, 20]
    assert len(turns) == 6 and turns[1]["content"].count(", ") == 19
