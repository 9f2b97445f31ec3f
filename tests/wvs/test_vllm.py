"""WVS option scoring on vLLM (lexalign.wvs.vllm) against the HF path, through a stand-in ``vllm`` whose
outputs have vLLM's real structure, filled from the tiny HF model's own log-probabilities:

- ``LLM.generate(prompts, sampling_params, use_tqdm, lora_request)`` takes one ``{"prompt_token_ids": ...}``
  per request and one SamplingParams per request (or one for all), and returns one RequestOutput each;
- ``RequestOutput.prompt_logprobs``: one entry per prompt token, None for the first, else a dict
  token id -> Logprob(logprob, rank, decoded_token) holding the ``prompt_logprobs`` most likely tokens
  and the prompt's own token;
- ``RequestOutput.outputs[0].logprobs``: per generated token such a dict of the ``logprobs`` most likely
  tokens and the sampled one (refused above the engine's ``max_logprobs``, as vLLM does).
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.models.generation import VLLM_DEFAULTS
from lexalign.testing.tiny_model import StandInLLM, sampling_params, stand_in_vllm_modules
from lexalign.wvs.prompts import label_answers, option_numbers, render
from lexalign.wvs.scoring import score_options
from lexalign.wvs.vllm import DIGIT_TOP_K, score_options_vllm

REPO = Path(__file__).resolve().parents[2]
WVS_CSV = REPO / "data" / "illustrative" / "wvs" / "WVS_Cross-National_Wave_7_illustrative.csv"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """The tiny model prepared, a random LoRA adapter for it, and both loaded with transformers."""
    from peft import LoraConfig, get_peft_model

    from lexalign.models.loading import load_model
    from lexalign.models.prepare import prepare_model
    from lexalign.testing.tiny_model import build_tiny_model

    root = tmp_path_factory.mktemp("vllm-wvs")
    raw = build_tiny_model(root / "raw", extra_text=["Options: Answer with the option number only. 10 11 12 Agree"])
    prepared = prepare_model("tiny", {"path": str(raw)}, root / "prepared")
    base = load_model(prepared, dtype="float32")
    torch.manual_seed(3)
    peft = get_peft_model(base.model, LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]))
    for name, weight in peft.named_parameters():
        if "lora_B" in name:
            weight.data.normal_(0, 0.5)  # a LoRA adapter that changes the answers
    peft.save_pretrained(root / "adapter")
    adapted = load_model(prepared, root / "adapter", dtype="float32")
    adapted.model.eval()
    plain = load_model(prepared, dtype="float32")
    plain.model.eval()
    return types.SimpleNamespace(prepared=prepared, adapter=root / "adapter", plain=plain, adapted=adapted)


def _items(tokenizer):
    from lexalign.norms.templates import prompt_templates
    from lexalign.wvs.prompts import build_prompt
    from lexalign.wvs.sources.catalog import load_catalog

    catalog = load_catalog()
    chosen = [next(i for i in catalog if i["n_options"] == n) for n in (10, 4, 3)]  # 10: "1" is a prefix of "10"
    templates = prompt_templates("en")
    prompts = [render(tokenizer, build_prompt(i, templates, "en", "United States", "interviewer")[0]) for i in chosen]
    return chosen, prompts


def _assert_same(ours, theirs):
    for a, b in zip(ours, theirs):
        for key in ("logprobs", "probs", "probs_norm"):
            assert a[key] == pytest.approx(b[key], abs=1e-4), key
        assert a["valid_mass"] == pytest.approx(b["valid_mass"], rel=1e-4)


def test_vllm_scores_equal_the_hf_scores_with_an_adapter(tiny):
    tokenizer = tiny.plain.tokenizer
    items, prompts = _items(tokenizer)
    llm = StandInLLM(tiny.plain.model, tokenizer, max_logprobs=len(tokenizer), adapters={"adapter": tiny.adapted.model})
    lora = ("lexalign-adapter", 1, "adapter")
    for answers in ([option_numbers(i["n_options"]) for i in items], [label_answers(i, "en") for i in items]):
        expected = score_options(tiny.adapted.model, tokenizer, prompts, answers, batch_size=4)
        got = score_options_vllm(llm, tokenizer, prompts, answers, sampling_params, lora_request=lora)
        _assert_same(got, expected)
        without = score_options(tiny.plain.model, tokenizer, prompts, answers, batch_size=4)
        assert max(abs(a - b) for g, w in zip(got, without) for a, b in zip(g["probs"], w["probs"])) > 1e-3
    # one generate call per scoring, one request per option, the adapter's LoRARequest on it; the random
    # model's flat next-token distribution after "1" leaves most of it unseen: that request alone again in full
    numbers, again = llm.calls[0], llm.calls[1]
    assert len(numbers["prompts"]) == 10 + 4 + 3 and numbers["lora"] == lora
    top = [p for p in numbers["params"] if p.logprobs is not None]
    assert len(top) == 1 and top[0].logprobs == DIGIT_TOP_K  # only option "1" of the 10-option item
    assert all(p.prompt_logprobs == 1 and p.max_tokens == 1 and p.temperature == 0.0 for p in numbers["params"])
    assert [p.logprobs for p in again["params"]] == [len(tokenizer)] and again["lora"] == lora
    assert all(p.logprobs is None for p in llm.calls[2]["params"])  # label texts: no number prefixes
    assert len(llm.calls) == 3


class _Sharp(torch.nn.Module):
    """The model with its logits scaled: a peaked next-token distribution, as a trained model's after "1"."""

    def __init__(self, model, scale: float):
        super().__init__()
        self.model, self.scale = model, scale

    def forward(self, input_ids):
        return types.SimpleNamespace(logits=self.model(input_ids=input_ids).logits * self.scale)


def test_a_peaked_distribution_after_a_number_needs_no_full_vocabulary(tiny):
    """Where the top 20 tokens after "1" leave under 1e-4 of the probability unseen, no request asks for the
    full distribution, and the probabilities are the full distribution's within that tolerance."""
    tokenizer = tiny.plain.tokenizer
    items, prompts = _items(tokenizer)
    answers = [option_numbers(i["n_options"]) for i in items]
    llm = StandInLLM(_Sharp(tiny.plain.model, 60.0), tokenizer, max_logprobs=len(tokenizer))
    cheap = score_options_vllm(llm, tokenizer, prompts, answers, sampling_params)
    assert len(llm.calls) == 1 and max(p.logprobs or 0 for p in llm.calls[0]["params"]) == DIGIT_TOP_K
    exact = score_options_vllm(llm, tokenizer, prompts, answers, sampling_params, digit_tolerance=-1.0)
    assert [p.logprobs for p in llm.calls[2]["params"]] == [len(tokenizer)]  # below any unseen mass: in full
    for a, b in zip(cheap, exact):
        assert a["probs"] == pytest.approx(b["probs"], abs=1e-4)


def test_the_engine_must_allow_full_next_token_logprobs(tiny):
    tokenizer = tiny.plain.tokenizer
    items, prompts = _items(tokenizer)
    llm = StandInLLM(tiny.plain.model, tokenizer, max_logprobs=20)
    with pytest.raises(ValueError, match="greater than max allowed"):
        score_options_vllm(llm, tokenizer, prompts[:1], [option_numbers(10)], sampling_params)


# ---- the wvs rule with wvs.backend: vllm ---------------------------------------------------------


def _stand_in_vllm(monkeypatch) -> dict:
    seen: dict = {}
    for name, module in stand_in_vllm_modules(seen).items():
        monkeypatch.setitem(sys.modules, name, module)
    return seen


def _wvs_settings(**overrides):
    from lexalign.wvs.settings import WvsSettings

    schema = yaml.safe_load((SCHEMA).read_text(encoding="utf-8"))
    wvs = schema["properties"]["wvs"]["properties"]
    defaults = {key: spec["default"] for key, spec in wvs.items() if "default" in spec}
    norms = {key: spec["default"] for key, spec in wvs["norms"]["properties"].items()}
    return WvsSettings.from_config({**defaults, "norms": norms, "max_items": 12, "high_tension_n": 3, **overrides})


def _evaluate(tiny, humans, out: Path, settings):
    from lexalign.wvs.evaluate import evaluate
    from lexalign.wvs.settings import WvsJob

    job = WvsJob(
        tiny.prepared,
        humans,
        out / "metrics.json",
        out / "answers.parquet",
        lang="en",
        method="sft",
        prompt_language="en",
        country="United States",
        model_name="tiny",
        framing="interviewer",
        mode="logits",
        adapter_dir=tiny.adapter,
        dtype="float32",
    )
    evaluate(job, settings)
    return json.loads((out / "metrics.json").read_text(encoding="utf-8")), pl.read_parquet(out / "answers.parquet")


def test_wvs_rule_on_the_vllm_backend_writes_the_hf_results(tiny, humans, tmp_path, monkeypatch):
    hf_metrics, hf_answers = _evaluate(tiny, humans, tmp_path / "hf", _wvs_settings(score_labels=True))
    seen = _stand_in_vllm(monkeypatch)
    settings = _wvs_settings(score_labels=True, backend="vllm", vllm={"gpu_memory_utilization": 0.5})
    metrics, answers = _evaluate(tiny, humans, tmp_path / "vllm", settings)
    assert seen["llm"]["enable_lora"] and seen["llm"]["gpu_memory_utilization"] == 0.5
    assert seen["llm"]["max_logprobs"] == len(seen["instance"].tokenizer)
    # option numbers (and the random model's flat distributions after "1" again in full), option labels
    assert [max(p.logprobs or 0 for p in call["params"]) for call in seen["instance"].calls] == [
        DIGIT_TOP_K,
        len(seen["instance"].tokenizer),
        0,
    ]
    assert (seen["llm"]["max_model_len"], VLLM_DEFAULTS["max_model_len"]) == (4096, 4096)  # not the model's own
    for column in ("probs", "probs_norm", "label_probs"):
        for a, b in zip(answers[column].to_list(), hf_answers[column].to_list()):
            assert a == pytest.approx(b, abs=1e-4)
    overall = metrics["results"]["model"]["usa"]["overall"]
    assert overall["js"] == pytest.approx(hf_metrics["results"]["model"]["usa"]["overall"]["js"], abs=1e-4)


def test_vllm_backend_missing_is_a_clear_error(tiny, humans, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "vllm", None)  # import vllm -> ImportError
    with pytest.raises(LexalignError, match=r"^config wvs.backend: 'vllm' is selected but vllm cannot be imported"):
        _evaluate(tiny, humans, tmp_path, _wvs_settings(backend="vllm"))
    assert not (tmp_path / "metrics.json").exists()
