"""Tier-1 lexical evaluation: scoring, generation (tiny model, fake model, fake vLLM), the rule's
function and the score-associations command."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import polars as pl
import pytest
import yaml

from lexalign.config.validation import _validator_with_defaults
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.lexical import evaluate as lexical
from lexalign.lexical import score as score_associations
from lexalign.lexical.evaluate import (
    GENERATIONS_SCHEMA,
    Generation,
    parse_associations,
    precision_at_k,
    rank_agreement,
    score_table,
)
from lexalign.lexical.settings import LexicalJob, LexicalSettings
from lexalign.models import generation

REPO = Path(__file__).resolve().parents[2]


def lexical_settings(**overrides) -> dict:
    """The lexical config section as the schema fills it in (its defaults are the only defaults)."""
    schema = yaml.safe_load((SCHEMA).read_text(encoding="utf-8"))
    settings = dict(overrides)
    _validator_with_defaults(schema).evolve(schema=schema["properties"]["lexical"]).validate(settings)
    return settings


def decoding(**overrides) -> generation.Decoding:
    """The decoding of a lexical section (the schema's defaults for what ``overrides`` leave out)."""
    return LexicalSettings.from_config(lexical_settings(**overrides)).decoding


def evaluate(model_dir, eval_path, associations_path, outputs, *, settings, **job) -> dict:
    """The lexical rule on one job: the test's values, the rule's defaults for the rest."""
    return lexical.run(
        LexicalJob(
            model_dir=str(model_dir),
            eval_path=str(eval_path),
            associations_path=str(associations_path),
            outputs=outputs,
            settings=LexicalSettings.from_config(settings),
            **job,
        )
    )


FAST = lexical_settings(
    batch_size=4, max_new_tokens=6, bootstrap_samples=50, psycholinguistic={"en": {"valence": None, "arousal": None}}
)

# A few test cues in the documented eval.parquet layout, with their human responses.
HUMAN = {
    "en": {
        "dog": [("cat", 9), ("bone", 5), ("puppy", 3), ("leash", 1)],
        "sun": [("hot", 6), ("moon", 4), ("summer", 2)],
        "house": [("home", 8), ("roof", 2), ("door", 2)],
        "winter": [("snow", 7), ("cold", 6)],
        "bread": [("butter", 5), ("toast", 3), ("wheat", 1)],
    },
    "zh": {
        "狗": [("猫", 6), ("宠物", 4), ("骨头", 2)],
        "月亮": [("月饼", 5), ("中秋", 4)],
        "春节": [("饺子", 7), ("红包", 3)],
    },
}
PROMPTS = {
    "en": (
        "You take part in a word-association study.",
        "You are an American.",
        'Which words come to mind for "{cue}"? Reply with words, separated by commas.',
    ),
    "zh": ("你是一名参与词语联想研究的助手。", "你是一名中国人。", "看到词语“{cue}”时，你会联想到哪些词？用“，”分隔。"),
}


def write_eval_inputs(folder: Path, lang: str) -> tuple[Path, Path]:
    system, persona, instruction = PROMPTS[lang]
    rows, assoc = [], []
    for cue, responses in HUMAN[lang].items():
        user = instruction.format(cue=cue)
        rows.append(
            {
                "cue": cue,
                "prompt": [{"role": "system", "content": system}, {"role": "user", "content": user}],
                "prompt_persona": [{"role": "system", "content": persona}, {"role": "user", "content": user}],
                "human": [r for r, _ in responses],
                "human_counts": [c for _, c in responses],
            }
        )
        assoc += [{"cue": cue, "response": r, "count": c, "split": "test"} for r, c in responses]
    assoc.append({"cue": "train-only", "response": "x", "count": 1, "split": "train"})
    folder.mkdir(parents=True, exist_ok=True)
    eval_path, assoc_path = folder / "eval.parquet", folder / "associations.parquet"
    pl.DataFrame(rows).write_parquet(eval_path)
    pl.DataFrame(
        assoc, schema={"cue": pl.String, "response": pl.String, "count": pl.UInt32, "split": pl.String}
    ).write_parquet(assoc_path)
    return eval_path, assoc_path


def outputs_in(folder: Path) -> dict[str, Path]:
    return {
        "scores": folder / "scores.json",
        "generations": folder / "generations.parquet",
        "per_cue": folder / "per_cue.parquet",
    }


@pytest.fixture(scope="session")
def lexical_model(request, tmp_path_factory) -> Path:
    """A tiny prepared model: the suite's shared one where conftest provides it, else built here."""
    try:
        return request.getfixturevalue("tiny_prepared")
    except pytest.FixtureLookupError:
        from lexalign.models.prepare import prepare_model
        from lexalign.testing.tiny_model import build_tiny_model

        root = tmp_path_factory.mktemp("lexical-model")
        return prepare_model("tiny", {"path": str(build_tiny_model(root / "tiny"))}, root / "prepared")


@pytest.fixture(scope="session")
def lexical_adapter(lexical_model, tmp_path_factory) -> Path:
    """An untrained LoRA adapter on the tiny model, as the train stage would save it."""
    from peft import LoraConfig, get_peft_model

    from lexalign.models.loading import load_model

    loaded = load_model(lexical_model)
    peft_model = get_peft_model(
        loaded.model, LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    )
    out = tmp_path_factory.mktemp("adapter") / "adapter"
    peft_model.save_pretrained(out)
    return out


@pytest.fixture
def en_inputs(tmp_path) -> tuple[Path, Path]:
    return write_eval_inputs(tmp_path / "inputs", "en")


# ---------------------------------------------------------------------------------------- scoring


def test_precision_at_k_definition():
    human = {"cat", "bone", "puppy"}
    assert precision_at_k(["cat", "x", "bone", "y", "puppy"], human, 5) == pytest.approx(3 / 5)
    assert precision_at_k(["cat", "bone"], human, 5) == pytest.approx(2 / 5)  # missing slots are misses
    assert precision_at_k(["cat", "cat", "cat"], ["cat"], 3) == pytest.approx(1 / 3)  # a word counts once
    assert precision_at_k([], human, 10) == 0.0
    assert precision_at_k(["x", "cat"], human, 1) == 0.0
    with pytest.raises(ValueError):
        precision_at_k(["cat"], human, 0)


def test_rank_agreement():
    counts = {"cat": 9, "bone": 5, "puppy": 3, "leash": 1}
    assert rank_agreement(["cat", "bone", "x", "puppy"], counts) == pytest.approx(1.0)
    assert rank_agreement(["puppy", "bone", "cat"], counts) == pytest.approx(-1.0)
    assert rank_agreement(["cat", "x", "y"], counts) is None  # one overlap
    assert rank_agreement(["a", "b"], {"a": 2, "b": 2}) is None  # tied human counts


def test_score_table_matches_the_scalar_functions():
    gens = pl.DataFrame(
        {
            "cue": ["dog", "sun", "house", "winter", "nonorms"],
            "parsed": [
                ["puppy", "cat", "bone", "leash", "x"],
                ["moon", "hot", "summer"],
                [],
                ["snow", "ice", "cold"],
                ["a"],
            ],
        }
    )
    human = pl.DataFrame(
        [(cue, r, c) for cue, rs in HUMAN["en"].items() for r, c in rs],
        schema=["cue", "response", "count"],
        orient="row",
    )
    per_cue, summary = score_table(gens, human, ks=(1, 2, 5), bootstrap_samples=200, seed=1)
    lists = dict(zip(gens["cue"], gens["parsed"]))
    for row in per_cue.iter_rows(named=True):
        responses = dict(HUMAN["en"][row["cue"]])
        for k in (1, 2, 5):
            assert row[f"p_at_{k}"] == pytest.approx(precision_at_k(lists[row["cue"]], responses.keys(), k))
        expected = rank_agreement(lists[row["cue"]], responses)
        assert (row["spearman"] is None and expected is None) or row["spearman"] == pytest.approx(expected)
    assert (
        summary["n_cues"] == 4 and summary["n_cues_without_norms"] == 1 and summary["cues_without_norms"] == ["nonorms"]
    )
    assert summary["n_unparsable"] == 1 and summary["unparsable_cues"] == ["house"]
    assert per_cue.filter(pl.col("cue") == "house")["p_at_5"].item() == 0.0
    assert summary["precision_at_k"]["5"]["mean"] == pytest.approx(per_cue["p_at_5"].mean())
    lo, hi = summary["precision_at_k"]["5"]["ci"]
    assert lo <= summary["precision_at_k"]["5"]["mean"] <= hi
    assert summary["spearman"]["n"] == 3 and summary["spearman"]["min_overlap"] == 2
    assert summary["precision_at_k"]["5"]["confidence"] == 0.95 and summary["bootstrap"]["resamples"] == 200


# ------------------------------------------------------------------ study vs corrected definitions

STUDY_PREDICTED = {"a": ["x1", "x2", "x3", "x4"], "b": ["y1", "y2"], "c": ["z3", "z1", "z2"]}
STUDY_HUMAN = {"a": {"x1": 5, "x2": 3, "x4": 1, "q": 9}, "b": {"y1": 2, "y3": 1}, "c": {"z1": 4, "z2": 4, "z3": 1}}


def _average_ranks(values):
    ordered = sorted(values)
    return [sum(i + 1 for i, v in enumerate(ordered) if v == value) / ordered.count(value) for value in values]


def _pearson(x, y):
    mx, my = sum(x) / len(x), sum(y) / len(y)
    cov = sum((a - mx) * (b - my) for a, b in zip(x, y))
    return cov / (sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y)) ** 0.5


def test_study_precision_drops_lists_under_three_words():
    assert lexical.mean_precision_at_k(STUDY_PREDICTED, STUDY_HUMAN, 2, "study") == pytest.approx(1.0)  # a, c only
    assert lexical.mean_precision_at_k(STUDY_PREDICTED, STUDY_HUMAN, 2) == pytest.approx((1 + 0.5 + 1) / 3)
    with pytest.raises(LexalignError, match="definition 'paper'"):
        lexical.mean_precision_at_k(STUDY_PREDICTED, STUDY_HUMAN, 2, "paper")


def test_study_spearman_is_one_pooled_rho_over_gold_and_generated_ranks():
    # Gold ranks over every human response (count desc, ties by word): a: q1 x1 2 x2 3 x4 4; c: z1 1 z2 2 z3 3.
    assert lexical.study_rank_pairs(STUDY_PREDICTED["a"], STUDY_HUMAN["a"]) == [(2, 1), (3, 2), (4, 4)]
    assert lexical.study_rank_pairs(STUDY_PREDICTED["c"], STUDY_HUMAN["c"]) == [(3, 1), (1, 2), (2, 3)]
    assert lexical.study_rank_pairs(STUDY_PREDICTED["b"], STUDY_HUMAN["b"]) == []  # one overlap
    gold, generated = [2, 3, 4, 3, 1, 2], [1, 2, 4, 1, 2, 3]
    expected = _pearson(_average_ranks(gold), _average_ranks(generated))
    assert lexical.rank_agreement_over_cues(STUDY_PREDICTED, STUDY_HUMAN, "study") == pytest.approx(expected)


def test_corrected_spearman_is_the_mean_of_per_cue_scipy_rhos():
    from scipy.stats import spearmanr

    rho_a = spearmanr([0, 1, 3], [-5, -3, -1]).statistic
    rho_c = spearmanr([0, 1, 2], [-1, -4, -4]).statistic
    assert lexical.rank_agreement_over_cues(STUDY_PREDICTED, STUDY_HUMAN) == pytest.approx((rho_a + rho_c) / 2)


def test_score_table_study_block_matches_the_scalar_definitions():
    gens = pl.DataFrame({"cue": list(STUDY_PREDICTED), "parsed": list(STUDY_PREDICTED.values())})
    human = pl.DataFrame(
        [(c, w, n) for c, counts in STUDY_HUMAN.items() for w, n in counts.items()],
        schema=["cue", "response", "count"],
        orient="row",
    )
    _, summary = score_table(gens, human, ks=(1, 2), bootstrap_samples=20, seed=0)
    study = summary["study"]
    assert study["n_cues"] == 2 and study["n_cues_dropped"] == 1 and study["definition"] == "study"
    for k in (1, 2):
        assert study["precision_at_k"][str(k)]["mean"] == pytest.approx(
            lexical.mean_precision_at_k(STUDY_PREDICTED, STUDY_HUMAN, k, "study")
        )
        assert summary["precision_at_k"][str(k)]["mean"] == pytest.approx(
            lexical.mean_precision_at_k(STUDY_PREDICTED, STUDY_HUMAN, k)
        )
    assert study["spearman"]["mean"] == pytest.approx(
        lexical.rank_agreement_over_cues(STUDY_PREDICTED, STUDY_HUMAN, "study"), abs=1e-6
    )
    assert study["spearman"]["n_pairs"] == 6 and study["spearman"]["n"] == 2 and study["spearman"]["form"] == "pooled"
    assert summary["spearman"]["mean"] == pytest.approx(
        lexical.rank_agreement_over_cues(STUDY_PREDICTED, STUDY_HUMAN), abs=1e-6
    )
    assert len(study["notes"]) == 2


# ------------------------------------------------------------------------------------- generation


class FakeModel:
    """Stands in for a causal LM: answers every prompt with fixed continuation token ids."""

    def __init__(self, continuations: dict[int, list[int]], pad: int):
        from transformers import GenerationConfig

        self.generation_config = GenerationConfig(max_new_tokens=20)
        self.device = "cpu"
        self.continuations, self.pad, self.calls = continuations, pad, []

    def eval(self):
        return self

    def generate(self, input_ids, attention_mask, generation_config):
        import torch

        self.calls.append((input_ids.clone(), attention_mask.clone(), generation_config))
        rows = []
        for ids, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            # Left padding: the padding sits before the prompt.
            assert mask == sorted(mask)
            new = self.continuations[sum(mask)][: generation_config.max_new_tokens]
            rows.append(ids + new + [self.pad] * (generation_config.max_new_tokens - len(new)))
        return torch.tensor(rows)


def test_hf_generation_sorts_pads_left_stops_and_restores_order(lexical_model, monkeypatch):
    from lexalign.models.loading import LoadedModel, load_tokenizer, read_manifest

    tokenizer = load_tokenizer(lexical_model)
    conversations = [
        [{"role": "user", "content": text}]
        for text in ("short", "a much longer prompt than the others", "mid length one")
    ]
    lengths = [len(generation.prompt_token_ids(tokenizer, c)) for c in conversations]
    assert len(set(lengths)) == 3
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    words = {n: tokenizer.encode(f"word{i}, more", add_special_tokens=False) for i, n in enumerate(lengths)}
    continuations = {
        lengths[0]: words[lengths[0]] + [end_of_turn, 77, 78],
        lengths[1]: words[lengths[1]] * 5,
        lengths[2]: words[lengths[2]] + [tokenizer.eos_token_id],
    }
    fake = FakeModel(continuations, tokenizer.pad_token_id)
    manifest = read_manifest(lexical_model)
    monkeypatch.setattr(
        "lexalign.models.loading.load_model",
        lambda *a, **k: LoadedModel(fake, tokenizer, manifest["stop_token_ids"], manifest),
    )
    answers = generation.generate(lexical_model, conversations, decoding(batch_size=2, max_new_tokens=12))
    capped = tokenizer.decode((words[lengths[1]] * 5)[:12], skip_special_tokens=False)
    assert [a.raw for a in answers] == ["word0, more", capped, "word2, more"]
    assert answers[0].finished and answers[2].finished and not answers[1].finished
    assert answers[1].n_tokens == 12 and answers[0].n_tokens == len(words[lengths[0]])
    first_batch = fake.calls[0][0]
    assert first_batch.shape[0] == 2 and first_batch.shape[1] == max(lengths)  # longest prompts first
    assert not fake.calls[0][2].do_sample and fake.calls[0][2].max_new_tokens == 12
    assert fake.calls[0][2].eos_token_id == manifest["stop_token_ids"] and end_of_turn in manifest["stop_token_ids"]
    assert (
        fake.calls[0][2].repetition_penalty == 1.0 and fake.calls[0][2].no_repeat_ngram_size == 0
    )  # the study's decoding


def test_repetition_controls_reach_generate_and_stop_loops(lexical_model):
    from lexalign.models.loading import load_model

    loaded = load_model(lexical_model)
    real_generate, seen = loaded.model.generate, []

    def spy(**kwargs):
        output = real_generate(**kwargs)
        seen.append((kwargs["generation_config"], output[:, kwargs["input_ids"].shape[1] :].tolist()))
        return output

    loaded.model.generate = spy
    conversations = [[{"role": "user", "content": f"Which words come to mind for {w}?"}] for w in ("dog", "sun")]
    generation.generate_on_model(
        loaded.model,
        loaded.tokenizer,
        conversations,
        stop_token_ids=loaded.stop_token_ids,
        max_new_tokens=24,
        no_repeat_ngram_size=2,
        repetition_penalty=1.3,
    )
    config, rows = seen[0]
    assert (
        config.no_repeat_ngram_size == 2
        and config.repetition_penalty == 1.3
        and config.eos_token_id == loaded.stop_token_ids
    )
    pad = loaded.tokenizer.pad_token_id
    for row in rows:
        tokens = [token for token in row if token != pad]
        bigrams = list(zip(tokens, tokens[1:]))
        assert len(bigrams) == len(set(bigrams))  # no token pair twice
    with pytest.raises(LexalignError, match="no stop token ids"):
        generation.generate_on_model(loaded.model, loaded.tokenizer, conversations, stop_token_ids=[], max_new_tokens=2)


def test_evaluate_records_the_decoding(lexical_model, en_inputs, tmp_path):
    eval_path, assoc_path = en_inputs
    settings = {**FAST, "repetition_penalty": 1.2, "no_repeat_ngram_size": 3, "max_test_cues": 2}
    scores = evaluate(
        lexical_model,
        eval_path,
        assoc_path,
        outputs_in(tmp_path / "out"),
        method="vanilla",
        prompt_language="en",
        settings=settings,
    )
    assert scores["generation"]["repetition_penalty"] == 1.2 and scores["generation"]["no_repeat_ngram_size"] == 3
    assert scores["generation"]["stop_token_ids"] and scores["generation"]["do_sample"] is False
    assert scores["schema_version"] == 2


def test_hf_generation_with_the_tiny_model_is_deterministic(lexical_model):
    conversations = [[{"role": "user", "content": f"Which words come to mind for {w}?"}] for w in ("dog", "sun", "tea")]
    first = generation.generate(lexical_model, conversations, decoding(batch_size=2, max_new_tokens=5))
    second = generation.generate(lexical_model, conversations, decoding(batch_size=3, max_new_tokens=5))
    assert [a.raw for a in first] == [a.raw for a in second]
    assert all(isinstance(a, Generation) and a.n_tokens <= 5 for a in first)
    sampled = generation.generate(
        lexical_model,
        conversations,
        decoding(do_sample=True, temperature=1.5, top_p=0.95, max_new_tokens=5),
        seed=1,
    )
    assert len(sampled) == 3


def test_vllm_backend_missing_is_a_clear_error(lexical_model, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(
        LexalignError, match=r"lexical.backend: 'vllm' is selected but vllm cannot be imported.*lexalign\[vllm\]"
    ):
        generation.generate(lexical_model, [[{"role": "user", "content": "x"}]], decoding(backend="vllm"))


def test_vllm_backend_contract(lexical_model, lexical_adapter, monkeypatch):
    """The vLLM path with a stand-in module: token-id prompts, stop ids, greedy = temperature 0, LoRA."""
    seen = {}

    class LLM:
        def __init__(self, **kwargs):
            seen["llm"] = kwargs

        def generate(self, prompts, sampling, use_tqdm, lora_request):
            seen.update(prompts=prompts, sampling=sampling, lora=lora_request)

            def out(text, reason):
                answer = types.SimpleNamespace(text=text, token_ids=[1, 2, 3], finish_reason=reason)
                return types.SimpleNamespace(outputs=[answer])

            return [out("puppy, bark<end_of_turn>", "stop"), out("moon, hot, sum", "length")]

    vllm = types.ModuleType("vllm")
    vllm.LLM, vllm.SamplingParams = LLM, lambda **kwargs: kwargs
    lora_module = types.ModuleType("vllm.lora.request")
    lora_module.LoRARequest = lambda name, lora_id, path: (name, lora_id, path)
    for name, module in {
        "vllm": vllm,
        "vllm.lora": types.ModuleType("vllm.lora"),
        "vllm.lora.request": lora_module,
    }.items():
        monkeypatch.setitem(sys.modules, name, module)
    conversations = [[{"role": "user", "content": "dog"}], [{"role": "user", "content": "sun"}]]
    answers = generation.generate(
        lexical_model,
        conversations,
        decoding(backend="vllm", vllm={"gpu_memory_utilization": 0.5}),
        adapter_dir=lexical_adapter,
    )
    assert [a.finished for a in answers] == [True, False]
    assert parse_associations(answers[1].raw, "en", truncated=not answers[1].finished) == ["moon", "hot"]
    assert seen["sampling"]["temperature"] == 0.0 and seen["sampling"]["stop_token_ids"]
    assert (
        seen["llm"]["enable_lora"]
        and seen["llm"]["max_lora_rank"] == 8
        and seen["llm"]["gpu_memory_utilization"] == 0.5
    )
    assert seen["lora"][2] == str(lexical_adapter)
    assert all(isinstance(p["prompt_token_ids"], list) for p in seen["prompts"])


# ------------------------------------------------------------------------------------ the rule


def test_evaluate_writes_the_three_outputs(lexical_model, en_inputs, tmp_path):
    eval_path, assoc_path = en_inputs
    outputs = outputs_in(tmp_path / "out")
    scores = evaluate(
        lexical_model,
        eval_path,
        assoc_path,
        outputs,
        method="vanilla",
        prompt_language="en",
        settings=FAST,
        labels={"model": "tiny", "lang": "en"},
    )
    assert json.loads(outputs["scores"].read_text(encoding="utf-8")) == scores
    generations = pl.read_parquet(outputs["generations"])
    assert generations.schema == pl.Schema(GENERATIONS_SCHEMA)
    assert generations["cue"].to_list() == sorted(HUMAN["en"])
    assert generations["prompt"][0][0]["content"] == PROMPTS["en"][0]
    per_cue = pl.read_parquet(outputs["per_cue"])
    assert per_cue.height == len(HUMAN["en"]) and {
        "p_at_5",
        "p_at_50",
        "spearman",
        "unparsable",
        "concreteness_model",
        "concreteness_human",
    } <= set(per_cue.columns)
    assert scores["model"] == "tiny" and scores["method"] == "vanilla" and scores["prompt_column"] == "prompt"
    assert set(scores["precision_at_k"]) == {"5", "10", "20", "30", "40", "50"}
    assert scores["n_cues"] == 5 and scores["generation"]["max_new_tokens"] == 6
    assert scores["psycholinguistic"]["measures"]["valence"]["skipped"]
    assert scores["psycholinguistic"]["measures"]["concreteness"]["human"]["n"] == 5
    assert scores["n_unparsable"] == per_cue["unparsable"].sum()


def test_evaluate_prompt_method_uses_the_persona_and_caps_cues(lexical_model, en_inputs, tmp_path):
    eval_path, assoc_path = en_inputs
    outputs = outputs_in(tmp_path / "out")
    scores = evaluate(
        lexical_model,
        eval_path,
        assoc_path,
        outputs,
        method="prompt",
        prompt_language="en",
        settings={**FAST, "max_test_cues": 2},
    )
    generations = pl.read_parquet(outputs["generations"])
    assert generations.height == 2 and scores["n_cues"] == 2
    assert generations["prompt"][0][0]["content"] == PROMPTS["en"][1]
    assert scores["prompt_column"] == "prompt_persona"


def test_evaluate_with_adapter_and_chinese(lexical_model, lexical_adapter, tmp_path):
    eval_path, assoc_path = write_eval_inputs(tmp_path / "zh", "zh")
    outputs = outputs_in(tmp_path / "out")
    scores = evaluate(
        lexical_model,
        eval_path,
        assoc_path,
        outputs,
        method="sft",
        prompt_language="zh",
        settings=FAST,
        adapter_dir=lexical_adapter,
    )
    assert scores["n_cues"] == 3
    assert "skipped" in scores["psycholinguistic"] and any("zh" in note for note in scores["notes"])
    with pytest.raises(LexalignError, match="trained method but no adapter"):
        evaluate(lexical_model, eval_path, assoc_path, outputs, method="sft", prompt_language="zh", settings=FAST)


def test_evaluate_counts_unparsable_generations(lexical_model, en_inputs, tmp_path, monkeypatch):
    eval_path, assoc_path = en_inputs
    replies = {
        "bread": "butter, toast",
        "dog": "",
        "house": "I'm sorry, I cannot do that for you today.",
        "sun": "hot, moon",
        "winter": "<end_of_turn>",
    }

    def fake_generate(model_dir, conversations, settings, adapter_dir=None, dtype="auto", seed=42, **devices):
        cues = [next(c for c in replies if f'"{c}"' in conv[-1]["content"]) for conv in conversations]
        return [Generation(replies[c], 3, True) for c in cues]

    monkeypatch.setattr(lexical, "generate", fake_generate)
    scores = evaluate(
        lexical_model,
        eval_path,
        assoc_path,
        outputs_in(tmp_path / "out"),
        method="vanilla",
        prompt_language="en",
        settings=FAST,
    )
    assert scores["n_unparsable"] == 3 and sorted(scores["unparsable_cues"]) == ["dog", "house", "winter"]
    assert scores["precision_at_k"]["5"]["mean"] == pytest.approx((2 / 5 + 2 / 5) / 5)
    assert any("3 of 5 generations gave no parsable word" in note for note in scores["notes"])


def test_evaluate_rejects_bad_eval_table(lexical_model, en_inputs, tmp_path):
    _, assoc_path = en_inputs
    bad = tmp_path / "eval.parquet"
    pl.DataFrame({"cue": ["dog"], "question": ["x"]}).write_parquet(bad)
    with pytest.raises(LexalignError, match=r"eval.parquet: missing column\(s\) prompt_persona"):
        evaluate(
            lexical_model,
            bad,
            assoc_path,
            outputs_in(tmp_path / "out"),
            method="prompt",
            prompt_language="en",
            settings=FAST,
        )
    with pytest.raises(LexalignError, match="no lexical evaluation"):
        evaluate(
            lexical_model,
            bad,
            assoc_path,
            outputs_in(tmp_path / "out"),
            method="assoc_prompt",
            prompt_language="en",
            settings=FAST,
        )


# --------------------------------------------------------------------------- score-associations


def run_cli(*args: str) -> int:
    return score_associations.main([str(a) for a in args])


def test_cli_scores_raw_csv_against_a_strength_file(tmp_path, capsys):
    strength = REPO / "data" / "illustrative" / "strength.SWOW-EN.R123.illustrative.csv"
    norms = score_associations.read_norms(strength)
    cues = norms["cue"].unique().sort().to_list()[:3]
    top = {
        cue: norms.filter(pl.col("cue") == cue).sort("count", descending=True)["response"].to_list()[:3] for cue in cues
    }
    rows = [
        {
            "cue": cue.upper(),
            "raw": "Sure! Here are some words:\n" + "\n".join(f"{i + 1}. {w}" for i, w in enumerate(words)),
        }
        for cue, words in top.items()
    ]
    rows.append({"cue": "zzz-not-in-norms", "raw": "a, b"})
    generations = tmp_path / "gens.csv"
    pl.DataFrame(rows).write_csv(generations)
    assert run_cli("--generations", generations, "--norms", strength, "--lang", "en", "--bootstrap", "20") == 0
    printed = capsys.readouterr().out
    assert "P@5" in printed and "Spearman" in printed and "wrote" in printed
    scores = json.loads((tmp_path / "gens.scores.json").read_text(encoding="utf-8"))
    assert scores["n_cues"] == 3 and scores["n_cues_without_norms"] == 1
    assert scores["precision_at_k"]["5"]["mean"] == pytest.approx(3 / 5)
    assert len(scores["per_cue"]) == 3


def test_cli_reads_parsed_lists_from_jsonl_and_parquet_norms(tmp_path, en_inputs):
    _, assoc_path = en_inputs
    jsonl = tmp_path / "gens.jsonl"
    jsonl.write_text(
        "\n".join(
            json.dumps({"cue": c, "parsed": [r for r, _ in rs][::-1]}, ensure_ascii=False)
            for c, rs in HUMAN["en"].items()
        ),
        encoding="utf-8",
    )
    out = tmp_path / "scores.json"
    assert (
        run_cli(
            "--generations", jsonl, "--norms", assoc_path, "--lang", "en", "--out", out, "--k", "1", "2", "--no-profile"
        )
        == 0
    )
    scores = json.loads(out.read_text(encoding="utf-8"))
    assert set(scores["precision_at_k"]) == {"1", "2"} and scores["precision_at_k"]["2"]["mean"] == 1.0
    reversed_rho = [rank_agreement([r for r, _ in rs][::-1], dict(rs)) for rs in HUMAN["en"].values()]
    assert (
        scores["spearman"]["mean"] == pytest.approx(sum(reversed_rho) / 5, abs=1e-6) and max(reversed_rho) < 0
    )  # reversed human order
    assert "psycholinguistic" not in scores


def test_cli_parquet_generations_in_chinese(tmp_path):
    eval_path, assoc_path = write_eval_inputs(tmp_path / "zh", "zh")
    gens = tmp_path / "gens.parquet"
    pl.DataFrame(
        {"cue": ["狗", "月亮", "春节"], "raw": ["好的，以下是联想词：\n1. 猫\n2. 宠物（pet）", "月饼、中秋", ""]}
    ).write_parquet(gens)
    assert (
        run_cli("--generations", gens, "--norms", assoc_path, "--lang", "zh", "--out", tmp_path / "s.json", "--k", "2")
        == 0
    )
    scores = json.loads((tmp_path / "s.json").read_text(encoding="utf-8"))
    assert scores["precision_at_k"]["2"]["mean"] == pytest.approx(2 / 3) and scores["n_unparsable"] == 1
    assert "skipped" in scores["psycholinguistic"]


def test_cli_study_definitions_from_released_outputs(tmp_path, en_inputs, capsys):
    _, assoc_path = en_inputs
    rows = [
        {"cue": "dog", "raw": "cat, bone, puppy"},
        {"cue": "sun", "raw": "moon"},
        {"cue": "winter", "raw": "snow, ice, cold"},
    ]
    gens = tmp_path / "released.csv"
    pl.DataFrame(rows).write_csv(gens)
    out = tmp_path / "s.json"
    assert (
        run_cli(
            "--generations",
            gens,
            "--norms",
            assoc_path,
            "--lang",
            "en",
            "--out",
            out,
            "--k",
            "5",
            "--definitions",
            "study",
            "--no-profile",
            "--bootstrap",
            "10",
        )
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        printed.startswith("study definitions: 3 cues scored") and "2 kept, 1 dropped (fewer than 3 words)" in printed
    )
    scores = json.loads(out.read_text(encoding="utf-8"))
    assert scores["schema_version"] == 2
    assert scores["study"]["precision_at_k"]["5"]["mean"] == pytest.approx((3 / 5 + 2 / 5) / 2)
    assert scores["precision_at_k"]["5"]["mean"] == pytest.approx((3 / 5 + 1 / 5 + 2 / 5) / 3)


def test_cli_reads_the_study_released_layout(tmp_path, en_inputs, capsys):
    """The study's released outputs (converted from its pickle to CSV): several models and prompt types per
    file, an already parsed ", "-joined column; --where picks one model, the column options name the roles."""
    _, assoc_path = en_inputs
    rows = []
    for model, lists in (
        ("tuned", {"dog": "cat, bone, puppy", "sun": "hot, moon, summer"}),
        ("vanilla", {"dog": "x, y, z", "sun": "moon"}),
    ):
        for cue, words in lists.items():
            for prompt_type in ("Complex", "Simple"):
                rows.append(
                    {
                        "Cue Word": cue,
                        "Prompt Type": prompt_type,
                        "Model Type": model,
                        "Generated Associated Words": "Sure! " + words,
                        "Parsed Associated Words": words,
                    }
                )
    released = tmp_path / "swow_us_results.csv"
    pl.DataFrame(rows).write_csv(released)
    out = tmp_path / "s.json"
    args = [
        "--generations",
        released,
        "--norms",
        assoc_path,
        "--lang",
        "en",
        "--out",
        out,
        "--k",
        "5",
        "--no-profile",
        "--bootstrap",
        "10",
        "--cue-column",
        "Cue Word",
        "--parsed-column",
        "Parsed Associated Words",
        "--where",
        "Model Type=tuned",
        "--where",
        "Prompt Type=Complex",
        "--definitions",
        "study",
    ]
    assert run_cli(*args) == 0
    scores = json.loads(out.read_text(encoding="utf-8"))
    assert scores["n_cues"] == 2 and scores["study"]["precision_at_k"]["5"]["mean"] == pytest.approx(
        (3 / 5 + 3 / 5) / 2
    )
    with pytest.raises(LexalignError, match="Model Type=nobody: no row has this value"):
        run_cli(*args[:-6], "--where", "Model Type=nobody")
    with pytest.raises(LexalignError, match="cue 'dog' appears more than once"):
        run_cli(*args[:-6])
    with pytest.raises(LexalignError, match="no column 'Parsed' for the parsed"):
        run_cli(
            "--generations",
            released,
            "--norms",
            assoc_path,
            "--lang",
            "en",
            "--cue-column",
            "Cue Word",
            "--parsed-column",
            "Parsed",
        )


def test_cli_uses_the_finished_flag_of_the_rules_generations(tmp_path):
    path = tmp_path / "g.csv"
    path.write_text('cue,raw,finished\ndog,"cat, bone, pup",false\nsun,"hot, moon, summer",TRUE\n', encoding="utf-8")
    frame = score_associations.read_generations(path, "en")
    assert frame["parsed"].to_list() == [["cat", "bone"], ["hot", "moon", "summer"]]


@pytest.mark.parametrize(
    ("content", "name", "message"),
    [
        (
            "cue,text\ndog,puppy\n",
            "g.csv",
            r"g.csv: generations need a 'cue' column and a 'raw' or 'parsed' column \(found: cue, text\)",
        ),
        ("cue,raw\ndog,puppy\nDog,bark\n", "g.csv", "g.csv: cue 'dog' appears more than once"),
        ("cue,raw\n,puppy\n", "g.csv", r"g.csv: 1 row\(s\) have an empty cue"),
        ("whatever", "g.xlsx", "g.xlsx: unknown file type"),
        ('{"cue": "dog", "raw": ', "g.jsonl", "g.jsonl: cannot read as jsonl"),
    ],
)
def test_cli_bad_generations_files(tmp_path, en_inputs, content, name, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(LexalignError, match=message) as error:
        run_cli("--generations", path, "--norms", en_inputs[1], "--lang", "en")
    assert "\n" not in str(error.value)


def test_cli_no_overlap_and_missing_files(tmp_path, en_inputs):
    gens = tmp_path / "g.csv"
    gens.write_text("cue,raw\nunknown,puppy\n", encoding="utf-8")
    with pytest.raises(LexalignError, match="none of the 1 cues"):
        run_cli("--generations", gens, "--norms", en_inputs[1], "--lang", "en")
    with pytest.raises(LexalignError, match="missing.csv: file not found"):
        run_cli("--generations", tmp_path / "missing.csv", "--norms", en_inputs[1], "--lang", "en")


def test_cli_through_the_lexalign_command(tmp_path, en_inputs, capsys):
    from lexalign.cli import main

    gens = tmp_path / "g.csv"
    gens.write_text("cue,words\ndog,puppy\n", encoding="utf-8")
    assert main(["score-associations", "--generations", str(gens), "--norms", str(en_inputs[1]), "--lang", "en"]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("lexalign error:") and "g.csv" in err and len(err.splitlines()) == 1


def test_rule_contract_in_snakemake_files():
    rule = (REPO / "workflow" / "rules" / "lexical.smk").read_text(encoding="utf-8")
    for needle in (
        '"results/lexical/{model}/{lang}/{method}/scores.json"',
        "adapter=adapter_input",
        '"results/templates/{lang}/eval.parquet"',
        '"results/ingest/{lang}/associations.parquet"',
        'log_path("lexical", "model", "lang", "method")',
    ):
        assert needle in rule


@pytest.mark.parametrize("with_adapter", [False, True], ids=["model", "unmerged-adapter"])
def test_hf_generation_with_a_cached_shared_prefix_gives_the_same_answers(
    lexical_model, lexical_adapter, with_adapter, monkeypatch
):
    """The prompt prefix every conversation shares is run once (key/value cache); the answers are those
    of the plain left-padded batches, for prompts of different lengths in one batch. A LoRA adapter kept
    apart from the weights (a PEFT model, as in a CPU bfloat16 job) takes the cached path too."""
    from lexalign.models.loading import load_model

    loaded = load_model(lexical_model, lexical_adapter if with_adapter else None, padding_side="left")
    assert hasattr(loaded.model, "get_base_model") == with_adapter
    conversations = [
        [{"role": "user", "content": f"Which words come to mind when you read the word {w}? List them."}]
        for w in ("dog", "sunshine over the hills", "tea", "a")
    ]
    prompts = [generation.prompt_token_ids(loaded.tokenizer, c) for c in conversations]
    assert generation._shared_prefix(prompts) >= generation.MIN_SHARED_PREFIX
    assert len({len(p) for p in prompts}) > 1
    assert generation._prefix_cache(loaded.model, prompts[0][:8]) is not None  # the cached path is the one tested

    def run():
        return [
            (a.raw, a.n_tokens, a.finished)
            for a in generation.generate_on_model(
                loaded.model,
                loaded.tokenizer,
                conversations,
                stop_token_ids=loaded.stop_token_ids,
                max_new_tokens=8,
                batch_size=3,
            )
        ]

    cached = run()
    monkeypatch.setattr(generation, "MIN_SHARED_PREFIX", 10**9)  # no prefix cache
    assert cached == run()


def test_complete_ends_a_row_early_and_keeps_only_its_text(lexical_model):
    """``complete(i, text)`` stops row i at the step it holds (the others run on), and the answer is the text
    up to that step, flagged complete and not finished."""
    conversations = [[{"role": "user", "content": f"Which words come to mind for {w}?"}] for w in ("dog", "sun", "tea")]
    plain = generation.generate(lexical_model, conversations, decoding(batch_size=3, max_new_tokens=12))
    seen: list[int] = []

    def complete(i: int, text: str) -> bool:
        seen.append(i)
        return i == 1 and len(text) >= 1

    early = generation.generate(
        lexical_model, conversations, decoding(batch_size=3, max_new_tokens=12), complete=complete
    )
    assert set(seen) >= {0, 1, 2}
    assert early[1].complete and not early[1].finished and early[1].n_tokens < plain[1].n_tokens
    assert plain[1].raw.startswith(early[1].raw)
    assert [a.raw for i, a in enumerate(early) if i != 1] == [a.raw for i, a in enumerate(plain) if i != 1]
    assert not any(a.complete for a in plain)


def test_evaluate_stops_lists_at_max_words(lexical_model, en_inputs, tmp_path, monkeypatch):
    """lexical.max_words ends each answer once it parses to that many words and scores only those."""
    monkeypatch.setattr(
        lexical,
        "parse_associations",
        lambda text, *args, **kwargs: [f"w{n}" for n in range(len(text) // 3)],
    )
    scores = evaluate(
        lexical_model,
        *en_inputs,
        outputs_in(tmp_path / "out"),
        method="vanilla",
        prompt_language="en",
        settings={**FAST, "max_test_cues": 2, "max_words": 2, "max_new_tokens": 24},
    )
    generations = pl.read_parquet(tmp_path / "out" / "generations.parquet")
    assert scores["generation"]["max_words"] == 2
    assert all(len(words) <= 2 for words in generations["parsed"].to_list())
    assert scores["generation"]["n_list_complete"] == int(generations["list_complete"].sum()) > 0
    assert scores["generation"]["n_hit_token_cap"] == int(
        (~generations["finished"] & ~generations["list_complete"]).sum()
    )


def test_lexical_settings_name_the_key_they_refuse():
    section = lexical_settings()
    assert LexicalSettings.from_config({**section, "resources": {}}).decoding.backend == "hf"
    with pytest.raises(LexalignError, match=r"unknown key lexical\.max_word$"):
        LexicalSettings.from_config({**section, "max_word": 3})
    with pytest.raises(LexalignError, match=r"no lexical\.top_p"):
        LexicalSettings.from_config({key: value for key, value in section.items() if key != "top_p"})
    with pytest.raises(LexalignError, match=r"lexical\.backend: 'tgi' is not one of hf, vllm"):
        LexicalSettings.from_config({**section, "backend": "tgi"})


def test_lexical_job_from_rule_reads_the_rule():
    from lexalign.core.snake import Rule

    rule = Rule(
        input={"model": "m", "eval": "e.parquet", "associations": "a.parquet", "adapter": []},
        output={"scores": "s.json", "generations": "g.parquet", "per_cue": "p.parquet"},
        params={
            "prompt_language": "en",
            "dtype": "float32",
            "attn_implementation": None,
            "settings": lexical_settings(),
            "prompts": {"en": {"separator": "; "}},
            "eval_bounds": [20, 30],
            "seed": 7,
        },
        wildcards={"model": "tiny", "lang": "en", "method": "vanilla"},
        threads=2,
    )
    job = LexicalJob.from_rule(rule)
    assert job.adapter_dir is None and job.seed == 7 and job.threads == 2 and job.method == "vanilla"
    assert job.labels == {"model": "tiny", "lang": "en"} and job.outputs["per_cue"] == "p.parquet"
    assert job.eval_bounds == (20, 30) and job.prompt_overrides == {"en": {"separator": "; "}}
    assert job.settings.norms.demonstrations == 3  # the schema's default block
    rule.params["settings"] = {**lexical_settings(), "norms": None}  # what common.smk gives other methods
    assert LexicalJob.from_rule(rule).settings.norms is None


TRAIN_LISTS = {"apple": ["red", "fruit", "pie", "tree"], "rain": ["wet", "cloud", "umbrella"], "car": ["road", "drive"]}


def test_evaluate_norms_prompt_shows_the_same_train_demonstrations_to_every_test_cue(lexical_model, tmp_path):
    eval_path, assoc_path = write_eval_inputs(tmp_path / "inputs", "en")
    rows = [
        {"cue": cue, "response": word, "count": 10 - i, "split": "train"}
        for cue, words in TRAIN_LISTS.items()
        for i, word in enumerate(words)
    ]
    extra = pl.DataFrame(rows, schema={"cue": pl.String, "response": pl.String, "count": pl.UInt32, "split": pl.String})
    pl.concat([pl.read_parquet(assoc_path), extra]).write_parquet(assoc_path)
    system, _, instruction = PROMPTS["en"]
    outputs = outputs_in(tmp_path / "out")
    scores = evaluate(
        lexical_model,
        eval_path,
        assoc_path,
        outputs,
        method="norms_prompt",
        prompt_language="en",
        settings={**FAST, "norms": {"demonstrations": 2, "list_length": 3, "seed": 5}},
        prompt_overrides={"en": {"system": system, "instruction": instruction}},
        eval_bounds=(20, 30),
    )
    shown = scores["norms_context"]
    cues = [d["cue"] for d in shown["demonstrations"]]
    assert len(cues) == 2 and set(cues) <= {"apple", "rain"}  # train cues with 3 or more responses
    assert shown["leakage_check"].startswith("passed") and shown["seed"] == 5 and shown["split"] == "train"
    prompts = [list(p) for p in pl.read_parquet(outputs["generations"])["prompt"].to_list()]
    demo = [
        turn
        for cue in cues
        for turn in (
            {"role": "user", "content": instruction.format(cue=cue)},
            {"role": "assistant", "content": ", ".join(TRAIN_LISTS[cue][:3])},
        )
    ]
    for cue, prompt in zip(sorted(HUMAN["en"]), prompts):
        assert prompt == [
            {"role": "system", "content": system},
            *demo,
            {"role": "user", "content": instruction.format(cue=cue)},
        ]
    assert scores["prompt_column"] == "prompt" and scores["n_cues"] == len(HUMAN["en"])


def test_evaluate_norms_prompt_without_its_settings_is_one_line(lexical_model, en_inputs, tmp_path):
    eval_path, assoc_path = en_inputs
    with pytest.raises(LexalignError, match="lexical norms_prompt: the job has no lexical.norms settings"):
        evaluate(
            lexical_model,
            eval_path,
            assoc_path,
            outputs_in(tmp_path / "out"),
            method="norms_prompt",
            prompt_language="en",
            settings={**FAST, "norms": None},
            eval_bounds=(20, 30),
        )
