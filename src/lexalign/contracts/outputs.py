"""Every stage output with its path, format, schema_version and one row per column or key.

Parquet columns come from the stage's own schema constant, so a column added, removed or retyped there
changes the document (and ``lexalign contracts-doc --check`` fails until it is regenerated); a column
without a meaning here, or a meaning whose column is gone, stops the generator with one line. JSON keys
are written here (the stages build those files as literals); their ``schema_version`` comes from the
stage's constant.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace

import polars as pl

from lexalign.core.errors import LexalignError
from lexalign.lexical import evaluate as lexical
from lexalign.norms.templates import MESSAGE, SCHEMAS
from lexalign.population import compare, simulate
from lexalign.train import run as train_run
from lexalign.wvs import evaluate as wvs
from lexalign.wvs.compare import PER_ITEM_COLUMNS, REFERENCE_ANSWERERS, STUDY_COLUMNS
from lexalign.wvs.sources.official import humans_schema
from lexalign.wvs.text_answers import MODE_COLUMNS

Row = tuple[str, str, str]  # column or key, type, meaning
KEY = "<key>"  # a country's key (ISO alpha-3 lower-cased: usa, chn, deu) in a column name


@dataclass(frozen=True)
class Output:
    rule: str
    path: str
    format: str
    version: str
    rows: tuple[Row, ...]
    note: str = ""


def dtype_name(dtype: pl.DataType) -> str:
    if dtype == pl.List(MESSAGE):
        return "messages"
    if isinstance(dtype, pl.List):
        return f"list[{dtype_name(dtype.inner)}]"
    return "struct" if isinstance(dtype, pl.Struct) else str(dtype)


def columns(
    what: str,
    schema: Mapping[str, pl.DataType],
    meanings: Mapping[str, str],
    placeholders: Mapping[str, Sequence[str]] | None = None,
) -> tuple[Row, ...]:
    """One row per meaning, in the schema's order; ``{name}`` in a meaning's column stands for each of
    ``placeholders[name]`` (one row for ``{metric}_<key>``, not eight)."""
    placeholders = placeholders or {}
    named: dict[str, str] = {}
    for shown in meanings:
        names = [n for n in placeholders if "{" + n + "}" in shown]
        for values in itertools.product(*(placeholders[n] for n in names)):
            named[shown.format(**dict(zip(names, values)))] = shown
    types: dict[str, list[str]] = {}
    for column, dtype in schema.items():
        if column not in named:
            raise LexalignError(
                f"{what}: column {column} has no meaning in lexalign.contracts.outputs; add one and run "
                "`lexalign contracts-doc`"
            )
        kinds = types.setdefault(named[column], [])
        if dtype_name(dtype) not in kinds:
            kinds.append(dtype_name(dtype))
    gone = [shown for shown in meanings if shown not in types]
    if gone:
        raise LexalignError(f"{what}: {', '.join(gone)} in lexalign.contracts.outputs names no column of the schema")
    return tuple((shown, " or ".join(types[shown]), meanings[shown]) for shown in types)


def _version(value: int, constant: str) -> str:
    return f"{value} (`{constant}`)"


ASSOCIATIONS = {"cue": pl.String, "response": pl.String, "count": pl.UInt32, "split": pl.String}
ASSOCIATION_MEANINGS = {
    "cue": "the cue word",
    "response": "one response type",
    "count": "how often participants gave it; rows sorted by cue, count desc, response",
    "split": '"train", "val" or "test" (the cue\'s split)',
}

TEMPLATE_MEANINGS = {
    "sft": {
        "cue": "the cue",
        "split": '"train" or "val"',
        "prompt": "system + user messages",
        "completion": "one assistant message",
    },
    "ranking": {
        "cue": "the cue",
        "split": '"train" or "val"',
        "prompt": "the messages",
        "words": "the words to rank, shuffled as shown",
        "gold": "the human order, most frequent first",
        "gold_counts": "their counts",
    },
    "dpo": {
        "cue": "the cue",
        "split": '"train" or "val"',
        "prompt": "the messages",
        "chosen": "one assistant message",
        "rejected": "one assistant message",
    },
    "eval": {
        "cue": "a test cue (test cues only)",
        "prompt": "the messages",
        "prompt_persona": "the messages with the cultural persona system prompt (the prompt method)",
        "human": "every human response, most frequent first",
        "human_counts": "their counts",
    },
}

LEXICAL_GENERATIONS = {
    "cue": "the test cue",
    "prompt": "the messages the model answered",
    "raw": "the answer, cut before the first stop token",
    "parsed": "the distinct words parsed from it",
    "n_tokens": "tokens generated",
    "finished": "false when it hit max_new_tokens",
    "list_complete": "generation stopped early: the list held enough words",
}

HUMANS = {
    "item_id": "the catalog item (resources/wvs_items.yaml)",
    "topic": "its topic",
    "source": "the source the shares come from",
    "question_en": "question text, English",
    "question_zh": "question text, Chinese",
    "subject_en": "the part that varies inside an item group, English (null for stand-alone items)",
    "subject_zh": "same, Chinese",
    "options_en": "option texts, English",
    "options_zh": "option texts, Chinese",
    "codes": "the answer codes of the options",
    "ordinal": "options are ordered (EMD applies)",
    "n_options": "number of options",
    KEY: "the country's weighted shares over the options (sum 1), one column per `wvs.countries`",
    f"n_{KEY}": "its respondents",
    "tension": "tension_distance between the two countries (corrected)",
    "tension_study": "the same under the study's definition",
}

ANSWERS = {
    "item_id": "the item asked (one row per item)",
    "topic": "its topic",
    "n_options": "number of options",
    "ordinal": "options are ordered",
    "codes": "the options' answer codes",
    "options": "the option texts shown",
    "prompt": "the prompt text",
    "assoc_cues": "the cues whose associations the prompt showed (assoc_prompt method)",
    "raw_text": "the model's text (text modes)",
    "text_outcome": "option, refusal or no valid option (`lexalign.wvs.refusal.classify`; null in logits)",
    "answered": "the model gave an answer distribution (filter on it to match metrics.json)",
    "logprobs": "option-number log-likelihoods",
    "probs": "renormalised over the valid options; null when unanswered",
    "probs_norm": "length-normalised probabilities (acc_norm)",
    "valid_mass": "probability mass on the valid option numbers",
    "label_logprobs": "option label texts scored (wvs.score_labels; null otherwise)",
    "label_probs": "their probabilities",
    "label_probs_norm": "length-normalised",
    "answer_position": "the option the model chose (1-based; null when unanswered)",
    "answer_code": "its answer code",
    f"human_{KEY}": "the country's human distribution",
    "human_tension": "the item's human tension (corrected)",
    "human_tension_study": "the study's",
    "high_tension": "in the high-tension set (corrected)",
    "high_tension_study": "in the study's high-tension set",
    f"{{metric}}_{KEY}": "the model's per-item metric against the country's humans; null when unanswered",
    f"study_{{study}}_{KEY}": "the model under the study's definitions",
    f"{{answerer}}_{{metric}}_{KEY}": "a reference answerer's metric, every item",
    "n_samples": "sample mode: answers sampled for the item",
    "sample_counts": "sample mode: per option, the answers naming it",
    "refusal_share": "sample mode: share of answers that refused",
    "no_option_share": "sample mode: share of answers naming no option",
    "invalid_share": "sample mode: refusals and no option together",
    "sample_outcomes": "sample mode: each answer's outcome",
    "sample_texts": "sample mode: each answer's text",
    "stated_raw": "describe mode: the shares as stated, before normalising",
    "stated_raw_sum": "describe mode: their sum (percent points)",
    "stated_assigned_by": "describe mode: how numbers were matched to options (by reference or position)",
    "stated_numbers": "describe mode: share numbers found in the text",
}
ANSWERS_PLACEHOLDERS = {"metric": PER_ITEM_COLUMNS, "study": STUDY_COLUMNS, "answerer": REFERENCE_ANSWERERS}

POPULATION_GENERATIONS = {
    "temperature": "the sampling temperature",
    "participant": "participant number, 1..N",
    "cue": "the cue",
    "raw": "the answer",
    "responses": "the first three distinct parsed words",
    "n_tokens": "tokens generated",
    "finished": "false when it hit max_new_tokens",
}


def _answers_schema() -> dict[str, pl.DataType]:
    schema = dict(wvs.answers_schema([KEY]))
    for own in MODE_COLUMNS.values():
        schema.update(own)
    return schema


def outputs() -> list[Output]:
    from lexalign.contracts.json_keys import KEYS

    humans = humans_schema([SimpleNamespace(key=KEY)])
    templates = [
        Output(
            "template",
            f"results/templates/{{lang}}/{name}.parquet",
            "parquet",
            "none",
            columns(f"{name}.parquet", SCHEMAS[name], TEMPLATE_MEANINGS[name]),
        )
        for name in SCHEMAS
    ]
    return [
        Output("prepare_model", "results/models/{model}/lexalign_model.json", "JSON", "none", KEYS["manifest"]),
        Output(
            "ingest",
            "results/ingest/{lang}/associations.parquet",
            "parquet",
            "none",
            columns("associations.parquet", ASSOCIATIONS, ASSOCIATION_MEANINGS),
        ),
        Output("ingest", "results/ingest/{lang}/stats.json", "JSON", "none", KEYS["ingest_stats"]),
        *templates,
        Output("template", "results/templates/{lang}/stats.json", "JSON", "none", KEYS["template_stats"]),
        Output(
            "train",
            "results/train/{model}/{lang}/{method}/metrics.json",
            "JSON",
            _version(train_run.SCHEMA_VERSION, "lexalign.train.run.SCHEMA_VERSION"),
            KEYS["train"],
        ),
        Output(
            "lexical",
            "results/lexical/{model}/{lang}/{method}/scores.json",
            "JSON",
            _version(lexical.SCHEMA_VERSION, "lexalign.lexical.evaluate.SCHEMA_VERSION"),
            KEYS["scores"],
            "Every {mean, ci, confidence, n} block is `lexalign.core.stats.summarise`.",
        ),
        Output(
            "lexical",
            "results/lexical/{model}/{lang}/{method}/generations.parquet",
            "parquet",
            "none",
            columns("lexical generations.parquet", lexical.GENERATIONS_SCHEMA, LEXICAL_GENERATIONS),
        ),
        Output(
            "lexical", "results/lexical/{model}/{lang}/{method}/per_cue.parquet", "parquet", "none", KEYS["per_cue"]
        ),
        Output(
            "wvs_humans",
            "results/wvs/humans.parquet",
            "parquet",
            "none",
            columns("humans.parquet", humans, HUMANS),
            "Built by `lexalign.wvs.sources.official.humans_schema(countries)`; read with "
            "`lexalign.wvs.humans.read_humans`.",
        ),
        Output("wvs_humans", "results/wvs/humans.json", "JSON", "none", KEYS["humans"]),
        Output(
            "wvs",
            "results/wvs/{model}/{lang}/{method}/{framing}-{mode}/metrics.json",
            "JSON",
            _version(wvs.SCHEMA_VERSION, "lexalign.wvs.evaluate.SCHEMA_VERSION"),
            KEYS["wvs"],
            "A leaf is {n, emd, emd_norm, js, kl_model_human, kl_human_model, cosine, acc, goqa_similarity, "
            "wvb_emd_below_0_2, distance}: means over the items the model answered.",
        ),
        Output(
            "wvs",
            "results/wvs/{model}/{lang}/{method}/{framing}-{mode}/answers.parquet",
            "parquet",
            "none",
            columns("answers.parquet", _answers_schema(), ANSWERS, ANSWERS_PLACEHOLDERS),
            f"{{metric}}: {', '.join(PER_ITEM_COLUMNS)}; {{study}}: {', '.join(STUDY_COLUMNS)}; "
            f"{{answerer}}: {', '.join(REFERENCE_ANSWERERS)}.",
        ),
        Output(
            "population",
            "results/population/{model}/{lang}/{method}/T{temperature}/participants.csv",
            "CSV",
            "none",
            KEYS["participants"],
        ),
        Output(
            "population",
            "results/population/{model}/{lang}/{method}/generations.parquet",
            "parquet",
            "none",
            columns("population generations.parquet", simulate.GENERATIONS_SCHEMA, POPULATION_GENERATIONS),
        ),
        Output(
            "population",
            "results/population/{model}/{lang}/{method}/population.json",
            "JSON",
            _version(simulate.SCHEMA_VERSION, "lexalign.population.simulate.SCHEMA_VERSION"),
            KEYS["population"],
        ),
        Output(
            "population_ingest",
            "results/population/{model}/{lang}/{method}/T{temperature}/associations.parquet",
            "parquet",
            "none",
            columns("population associations.parquet", ASSOCIATIONS, ASSOCIATION_MEANINGS),
            "ingest's table; split is the cue's split in the human norms. Beside it `stats.json` "
            "(ingest's pooled-count stats + split_cues, split_definition).",
        ),
        Output(
            "population_compare",
            "results/population/{model}/{lang}/{method}/compare.json",
            "JSON",
            _version(compare.SCHEMA_VERSION, "lexalign.population.compare.SCHEMA_VERSION"),
            KEYS["compare"],
        ),
        Output(
            "population_compare",
            "results/population/{model}/{lang}/{method}/per_cue.parquet",
            "parquet",
            "none",
            (
                ("cue", "String", "the cue"),
                ("temperature", "Float64", "the temperature"),
                ("model_tokens, human_tokens", "Int64", "responses the model and the humans gave"),
                *((name, "Float64", meaning) for name, meaning in compare.CUE_MEASURES.items()),
                *((name, "Float64", meaning) for name, meaning in compare.POSITION_MEASURES.items()),
            ),
            "Measures from `lexalign.population.compare.CUE_MEASURES` and `POSITION_MEASURES` (the `*_types` "
            "counts are Int64).",
        ),
    ]
