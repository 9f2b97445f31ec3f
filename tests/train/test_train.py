"""Rule train's module: presets, TRL configs, data, collators, every method on the tiny model with the
smoke preset, seed determinism, resume after a real kill, and the multi-process launch path."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest
import torch
import yaml

from lexalign.config import methods
from lexalign.config.presets import (
    TrainSection,
    TrainSettings,
    check_presets,
    method_settings,
    preset_resources,
    resolve_preset,
)
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.norms.templates import SCHEMAS
from lexalign.report.fields import SCHEMA_VERSIONS
from lexalign.train import run as train_run
from lexalign.train.run import last_checkpoint, prepare_checkpoints, run
from lexalign.train.trainers import TrainJob, build_trainer, load_split, trainer_config

REPO = Path(__file__).resolve().parents[2]
SYSTEM = "You answer word-association questions."
ASSOCIATIONS = {
    "dog": ["bark", "pet", "animal", "bone", "puppy", "leash", "friend", "tail", "cat", "walk"],
    "cat": ["dog", "pet", "meow", "fur", "mouse", "animal", "kitten", "tail", "milk", "claws"],
    "sun": ["hot", "bright", "yellow", "sky", "light", "summer", "day", "star", "moon", "warm"],
    "tree": ["leaf", "green", "wood", "branch", "forest", "bark", "oak", "roots", "shade", "apple"],
    "water": ["drink", "wet", "blue", "ocean", "river", "rain", "cold", "fish", "lake", "clear"],
    "house": ["home", "roof", "family", "door", "window", "garden", "room", "bed", "warm", "live"],
}
VAL = {"school": ["teacher", "book", "class", "learn", "student", "desk", "bus", "pen", "exam", "friend"]}


def _prompt(user: str) -> list[dict]:
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def _answer(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]


def _rows():
    for split, cues in (("train", ASSOCIATIONS), ("val", VAL)):
        for cue, words in cues.items():
            yield split, cue, words


def write_tables(folder: Path) -> dict[str, Path]:
    """Small sft/ranking/dpo tables in the documented contract layout (TRL conversational format)."""
    folder.mkdir(parents=True, exist_ok=True)
    sft, ranking, dpo = [], [], []
    for split, cue, words in _rows():
        for copy in range(3 if split == "train" else 1):
            kept = words[copy:] if copy else words
            sft.append(
                {
                    "cue": cue,
                    "split": split,
                    "prompt": _prompt(f'Words for "{cue}"?'),
                    "completion": _answer(", ".join(kept)),
                }
            )
        shown = list(reversed(words))
        user = f'Rank these answers for "{cue}": {", ".join(shown)}. End with "Final ranking: word, word, ...".'
        ranking.append(
            {
                "cue": cue,
                "split": split,
                "prompt": _prompt(user),
                "words": shown,
                "gold": words,
                "gold_counts": list(range(len(words), 0, -1)),
            }
        )
        dpo.append(
            {
                "cue": cue,
                "split": split,
                "prompt": _prompt(f'Words for "{cue}"?'),
                "chosen": _answer(", ".join(words)),
                "rejected": _answer(", ".join(reversed(words))),
            }
        )
    schemas = {name: SCHEMAS[name] for name in ("sft", "ranking", "dpo")}
    paths = {}
    for name, rows in (("sft", sft), ("ranking", ranking), ("dpo", dpo)):
        paths[name] = folder / f"{name}.parquet"
        pl.DataFrame(rows, schema=schemas[name], orient="row").write_parquet(paths[name])
    return paths


@pytest.fixture(scope="session")
def train_model(tmp_path_factory) -> Path:
    """The tiny random Llama, prepared like any user model."""
    from lexalign.models.prepare import prepare_model
    from lexalign.testing.tiny_model import build_tiny_model

    raw = build_tiny_model(
        tmp_path_factory.mktemp("train-model") / "tiny", extra_text=[" ".join(w) for w in ASSOCIATIONS.values()]
    )
    return prepare_model("tiny", {"path": str(raw)}, tmp_path_factory.mktemp("train-prepared") / "tiny")


@pytest.fixture(scope="session")
def tables(tmp_path_factory) -> dict[str, Path]:
    return write_tables(tmp_path_factory.mktemp("templates") / "en")


def make_job(method, model, tables, out: Path, overrides=None, **fields) -> TrainJob:
    settings = method_settings(TrainSection(preset="smoke"), method).with_hyper(**(overrides or {}))
    return TrainJob(
        method=method,
        model_dir=str(model),
        data=str(tables[methods.get(method).data_table]),
        adapter_out=str(out / "adapter"),
        metrics_out=str(out / "metrics.json"),
        history_out=str(out / "log_history.jsonl"),
        checkpoint_dir=str(out.parent / "checkpoints" / out.name),
        settings=settings,
        prompt_language="en",
        threads=1,
        **fields,
    )


def adapter_tensors(folder: str | Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(Path(folder) / "adapter_model.safetensors"))


# ---- presets --------------------------------------------------------------------------------


def test_paper_preset_has_the_study_settings():
    paper = resolve_preset(TrainSection(preset="paper"))
    assert paper["lora"] == {
        "r": 64,
        "alpha": 256,
        "dropout": 0.05,
        "target_modules": ["q_proj", "v_proj"],
        "loraplus_lr_ratio": 16,
    }
    sft = method_settings(TrainSection(preset="paper"), "sft").hyper
    assert (sft["learning_rate"], sft["lr_scheduler_type"], sft["warmup_ratio"], sft["num_train_epochs"]) == (
        1e-5,
        "cosine",
        0.1,
        1.5,
    )
    assert (sft["per_device_train_batch_size"], sft["gradient_accumulation_steps"], sft["max_length"], sft["bf16"]) == (
        18,
        2,
        2048,
        True,
    )
    rl = method_settings(TrainSection(preset="paper"), "rl").hyper
    assert (rl["learning_rate"], rl["beta"]) == (5e-7, 0.1)
    assert preset_resources(TrainSection(preset="paper"))["gpus"] == 4


def test_builtin_presets_match_the_config_schema():
    import jsonschema

    schema = yaml.safe_load((SCHEMA).read_text(encoding="utf-8"))
    validator = jsonschema.Draft202012Validator(schema).evolve(schema=schema["properties"]["train"]["$defs"]["preset"])
    from lexalign.config.presets import builtin_presets

    for name, preset in builtin_presets().items():
        assert [e.message for e in validator.iter_errors(preset)] == [], name
        for method in methods.TRAINED:
            assert set(preset[method]) <= set(
                schema["properties"]["train"]["$defs"][{"sft_rl": "rl"}.get(method, method)]["properties"]
            ) | set(schema["properties"]["train"]["$defs"]["shared"]["properties"])


def test_config_presets_override_and_extend():
    config = TrainSection(
        preset="mine",
        presets={"mine": {"base": "paper", "train": {"learning_rate": 2e-5}}, "paper": {"resources": {"gpus": 8}}},
    )
    settings = method_settings(config, "sft")
    assert settings.hyper["learning_rate"] == settings.learning_rate == 2e-5
    assert settings.hyper["num_train_epochs"] == 1.5  # from paper
    assert preset_resources(config)["gpus"] == 8  # the config's paper override reaches presets based on it
    assert settings.preset == "mine"
    new = TrainSection(preset="tiny", presets={"tiny": {"train": {"max_steps": 1}}})  # starts from default
    assert method_settings(new, "sft").hyper["max_steps"] == 1
    default = resolve_preset(TrainSection(preset="default"))
    assert dataclasses.asdict(method_settings(new, "sft").lora) == default["lora"]
    # a method's own section is more specific than the shared train section
    assert method_settings(new, "dpo").hyper["max_steps"] == default["dpo"]["max_steps"]


def test_sft_rl_inherits_the_rl_section():
    config = TrainSection(preset="smoke", presets={"smoke": {"rl": {"beta": 0.3}, "sft_rl": {"temperature": 0.5}}})
    rl, sft_rl = method_settings(config, "rl").hyper, method_settings(config, "sft_rl").hyper
    assert rl["beta"] == sft_rl["beta"] == 0.3
    assert (rl["temperature"], sft_rl["temperature"]) == (1.0, 0.5)


@pytest.mark.parametrize(
    "config, message",
    [
        (TrainSection(preset="nope"), "train.preset: 'nope' is not a preset"),
        (TrainSection("a", presets={"a": {"base": "b"}, "b": {"base": "a"}}), "circular base chain a -> b -> a"),
        (TrainSection("a", presets={"a": {"base": "zzz"}}), "train.presets.a.base: 'zzz' is not a preset"),
    ],
)
def test_bad_presets_fail_with_one_line(config, message):
    with pytest.raises(LexalignError, match=message.replace("(", r"\(")):
        method_settings(config, "sft")


def test_check_presets_reports_the_config_source():
    check_presets(TrainSection(preset="paper"), ["vanilla", "sft", "rl", "sft_rl", "dpo"])
    with pytest.raises(LexalignError, match=r"^my.yaml: train.presets.a.base: circular base chain a -> a$"):
        check_presets(TrainSection("a", presets={"a": {"base": "a"}}), ["sft"], source="my.yaml")
    check_presets(TrainSection(preset="nope"), ["vanilla"])  # nothing to train, nothing to check


def test_untrained_methods_are_refused():
    with pytest.raises(LexalignError, match="'vanilla' is not trained"):
        method_settings(TrainSection(preset="smoke"), "vanilla")


@pytest.mark.parametrize(
    ("section", "message"),
    [
        (
            {"preset": "smoke", "distributed": None, "distributd": "fsdp", "presets": {}},
            "config train: unknown key train.distributd",
        ),
        ({"distributed": None, "presets": {}}, "config train: no train.preset "),
    ],
)
def test_train_section_names_a_misspelt_or_missing_key(section, message):
    with pytest.raises(LexalignError) as info:
        TrainSection.from_config(section)
    assert str(info.value).startswith(message)


def test_train_settings_name_a_misspelt_or_missing_key():
    written = method_settings(TrainSection(preset="smoke"), "sft").to_config()
    with pytest.raises(LexalignError, match=r"^config train: unknown key train.hypr$"):
        TrainSettings.from_config({**written, "hypr": {}})
    lora = {k: v for k, v in written["lora"].items() if k != "r"}
    with pytest.raises(LexalignError, match=r"^config train.presets.smoke.lora: no train.presets.smoke.lora.r "):
        TrainSettings.from_config({**written, "lora": lora})


def test_a_job_travels_to_the_workers_as_json_unchanged(tmp_path, train_model, tables):
    """The accelerate workers read the job file the launcher writes: the same typed settings come back."""
    job = make_job("sft", train_model, tables, tmp_path / "sft")
    job = dataclasses.replace(job, settings=dataclasses.replace(job.settings, distributed="fsdp"))
    again = TrainJob.from_json(job.to_json())
    assert again == job and isinstance(again.settings, TrainSettings)
    assert "distributed" not in method_settings(TrainSection(preset="smoke"), "sft").to_config()


# ---- TRL configs and data -------------------------------------------------------------------------


def test_trainer_config_maps_preset_names(tmp_path, train_model, tables, monkeypatch):
    import lexalign.train.trainers

    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr(lexalign.train.trainers, "cpu_has_native_bf16", lambda: False)
    job = make_job(
        "sft",
        train_model,
        tables,
        tmp_path / "sft",
        {"warmup_ratio": 0.1, "gradient_checkpointing": True, "bf16": None},
    )
    args = trainer_config(job, has_eval=True)
    assert type(args).__name__ == "SFTConfig"
    assert args.warmup_steps == 0.1 and args.activation_checkpointing and args.gradient_checkpointing
    assert args.bf16 is False  # null = only where the hardware has bf16
    monkeypatch.setattr(lexalign.train.trainers, "cpu_has_native_bf16", lambda: True)
    assert trainer_config(job, has_eval=True).bf16 is True
    assert args.eval_strategy == "no"  # eval_steps null: one evaluation at the end
    assert (args.seed, args.output_dir, args.save_steps) == (42, job.checkpoint_dir, 1)
    grpo = trainer_config(make_job("rl", train_model, tables, tmp_path / "rl"), has_eval=False)
    assert type(grpo).__name__ == "GRPOConfig" and grpo.beta == 0.1 and grpo.num_generations == 2


def test_trainer_config_rejects_unknown_keys(tmp_path, train_model, tables):
    job = make_job("dpo", train_model, tables, tmp_path / "dpo", {"num_generations": 4})
    with pytest.raises(LexalignError, match="num_generations not a DPOConfig setting"):
        trainer_config(job, has_eval=False)


def test_load_split_selects_columns_and_limits(tables):
    train = load_split(tables["sft"], "sft", "train", limit=5, seed=1)
    assert train.column_names == ["prompt", "completion"] and len(train) == 5
    assert train[0]["completion"][0]["role"] == "assistant"
    assert len(load_split(tables["ranking"], "ranking", "val", None, 1)) == 1
    assert load_split(tables["dpo"], "dpo", "test", None, 1) is None


def test_load_split_names_missing_columns(tmp_path, tables):
    bad = tmp_path / "sft.parquet"
    pl.read_parquet(tables["sft"]).drop("completion").write_parquet(bad)
    with pytest.raises(LexalignError, match=r"sft.parquet: missing column\(s\) completion"):
        load_split(bad, "sft", "train", None, 1)


def test_sft_collator_masks_the_prompt(tmp_path, train_model, tables):
    """Completion-only loss: the labels cover exactly the assistant's answer (and its end of turn)."""
    trainer, _, _ = build_trainer(make_job("sft", train_model, tables, tmp_path / "sft", {"max_train_examples": None}))
    batch = next(iter(trainer.get_train_dataloader()))
    tokenizer = trainer.processing_class
    targets = {", ".join(words[copy:] if copy else words) for _, _, words in _rows() for copy in range(3)}
    for ids, labels in zip(batch["input_ids"], batch["labels"], strict=True):
        kept = [int(t) for t, label in zip(ids, labels, strict=True) if label != -100]
        text = tokenizer.decode(kept)
        assert text.replace("<end_of_turn>", "").strip() in targets, text
        assert "Words for" not in text and SYSTEM not in text


@pytest.mark.parametrize("padding_free", [False, True])
def test_every_sft_row_supervises_its_end_of_turn_token(tmp_path, train_model, tables, padding_free):
    """The model learns to stop: in every tokenised training row the end-of-turn token after the answer
    (the model's stop token) carries a label, and only the template's newline follows it."""
    from lexalign.models.loading import read_manifest

    stop_ids = set(read_manifest(train_model)["stop_token_ids"])
    overrides = {"max_train_examples": None, "padding_free": padding_free}
    trainer, train_ds, _ = build_trainer(make_job("sft", train_model, tables, tmp_path / "sft", overrides))
    tokenizer = trainer.processing_class
    end_of_turn = tokenizer.convert_tokens_to_ids("<end_of_turn>")
    assert end_of_turn in stop_ids
    rows = 0
    for batch in trainer.get_train_dataloader():
        ids, labels = batch["input_ids"], batch["labels"]
        if padding_free:  # one row per batch: split it where position_ids restart
            starts = (batch["position_ids"][0] == 0).nonzero().flatten().tolist() + [ids.size(1)]
            pieces = [(ids[0, a:b], labels[0, a:b]) for a, b in zip(starts, starts[1:], strict=False)]
        else:
            masks = batch["attention_mask"].bool()
            pieces = [(row[mask], row_labels[mask]) for row, row_labels, mask in zip(ids, labels, masks, strict=True)]
        for row_ids, row_labels in pieces:
            supervised = (row_labels != -100).nonzero().flatten().tolist()
            assert supervised, tokenizer.decode(row_ids)
            taught = [int(row_ids[i]) for i in supervised]
            assert end_of_turn in taught, tokenizer.decode(row_ids[supervised])
            after = tokenizer.decode(taught[taught.index(end_of_turn) + 1 :])
            assert after.strip() == "", after  # the answer ends at the end of turn (the template adds a newline)
            assert all(int(label) == -100 for label in row_labels[supervised[-1] + 1 :])
            rows += 1
    assert rows == len(train_ds)


def test_completion_loss_matches_trl_on_the_tiny_model(tmp_path, train_model, tables):
    """lexalign.train.sft_loss (output layer only at supervised positions) gives TRL's loss and gradients."""
    results = {}
    for plain, padding_free in ((True, False), (False, False), (False, True)):
        job = make_job(
            "sft",
            train_model,
            tables,
            tmp_path / f"{plain}{padding_free}",
            {"per_device_train_batch_size": 4, "padding_free": padding_free},
        )
        trainer, _, _ = build_trainer(job, plain_trl=plain)
        from lexalign.train.sft_loss import CompletionLossMixin

        assert (CompletionLossMixin in type(trainer).__mro__) is not plain
        assert plain or trainer._use_completion_loss(trainer.model)
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        results[plain, padding_free] = (
            loss.item(),
            grads,
            trainer._metrics["train"]["num_tokens"],
            batch["input_ids"].shape,
        )
    loss_trl, grads_trl, tokens_trl, shape = results[True, False]
    assert shape[0] == 4
    for key in ((False, False), (False, True)):  # the padded batch, and the same rows in one padding-free row
        loss_own, grads_own, tokens_own, shape = results[key]
        assert loss_own == pytest.approx(loss_trl, rel=1e-5), key
        assert (
            grads_own.keys() == grads_trl.keys() and len(grads_own) == 8
        )  # LoRA A and B of q_proj, v_proj in 2 layers
        for name, grad in grads_trl.items():
            assert torch.allclose(grads_own[name], grad, atol=1e-6, rtol=1e-4), (key, name)
        assert tokens_own == tokens_trl, key
    assert results[False, True][3][0] == 1


def test_bf16_sft_casts_frozen_weights_once_with_the_same_result(tmp_path, train_model, tables, monkeypatch):
    """CPU bf16: the frozen linear weights are stored in bfloat16 up front; loss and LoRA gradients are
    those of plain autocast (which casts the same weights to the same values on every call)."""
    import lexalign.train.trainers

    monkeypatch.setattr(lexalign.train.trainers, "cpu_has_native_bf16", lambda: True)
    results = {}
    for plain in (True, False):
        job = make_job(
            "sft", train_model, tables, tmp_path / str(plain), {"per_device_train_batch_size": 4, "bf16": True}
        )
        trainer, _, _ = build_trainer(job, plain_trl=plain)
        dtypes = {p.dtype for n, p in trainer.model.named_parameters() if n.endswith("q_proj.base_layer.weight")}
        assert dtypes == ({torch.float32} if plain else {torch.bfloat16})
        assert {p.dtype for p in trainer.model.parameters() if p.requires_grad} == {torch.float32}
        assert trainer.model.get_input_embeddings().weight.dtype == torch.float32
        batch = next(iter(trainer.get_train_dataloader()))
        trainer.model.train()
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = trainer.compute_loss(trainer.model, dict(batch))
        loss.backward()
        results[plain] = (
            loss.item(),
            {n: p.grad.float() for n, p in trainer.model.named_parameters() if p.grad is not None},
        )
    assert results[False][0] == pytest.approx(results[True][0], rel=2e-2)
    for name, grad in results[True][1].items():  # LoRA A starts with zero gradients (B is zero), B does not
        own = results[False][1][name]
        if "lora_A" in name:
            assert not own.any() and not grad.any(), name
        else:
            assert torch.nn.functional.cosine_similarity(own.flatten(), grad.flatten(), dim=0) > 0.99, name


def test_frozen_linears_to_leaves_tied_and_trainable_weights_alone():
    from lexalign.train.sft_loss import frozen_linears_to

    embedding, head, frozen, trained = (
        torch.nn.Embedding(10, 4),
        torch.nn.Linear(4, 10, bias=False),
        torch.nn.Linear(4, 4),
        torch.nn.Linear(4, 4),
    )
    head.weight = embedding.weight  # a tied output layer
    for module in (embedding, frozen):
        module.requires_grad_(False)
    assert frozen_linears_to(torch.nn.ModuleList([embedding, head, frozen, trained]), torch.bfloat16) == 1
    assert (frozen.weight.dtype, frozen.bias.dtype) == (torch.bfloat16, torch.bfloat16)
    assert embedding.weight.dtype == head.weight.dtype == trained.weight.dtype == torch.float32


def test_linear_cross_entropy_matches_plain_cross_entropy():
    """The fused op against logits + F.cross_entropy, with chunks smaller than the input and a softcap."""
    from lexalign.train.sft_loss import linear_cross_entropy

    torch.manual_seed(0)
    hidden = torch.randn(37, 16, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(50, 16, dtype=torch.float64)
    targets = torch.randint(0, 50, (37,))
    for softcap in (None, 3.0):
        total, correct = linear_cross_entropy(hidden, weight, targets, softcap=softcap, chunk=8)
        (grad,) = torch.autograd.grad(total * 0.5, hidden)
        logits = hidden @ weight.t()
        if softcap:
            logits = torch.tanh(logits / softcap) * softcap
        expected = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
        (expected_grad,) = torch.autograd.grad(expected * 0.5, hidden)
        assert torch.allclose(total.double(), expected, rtol=1e-5)
        assert int(correct) == int((logits.argmax(-1) == targets).sum())
        assert torch.allclose(grad, expected_grad, rtol=1e-5, atol=1e-7)


def test_dpo_collator_pairs_chosen_and_rejected(tmp_path, train_model, tables):
    trainer, _, _ = build_trainer(make_job("dpo", train_model, tables, tmp_path / "dpo"))
    batch = next(iter(trainer.get_train_dataloader()))
    size = trainer.args.per_device_train_batch_size
    # chosen and rejected completions of the same prompts travel in one batch, chosen first
    assert batch["input_ids"].shape[0] == 2 * size
    assert (batch["completion_mask"].sum(dim=1) > 0).all()


def test_last_checkpoint_skips_incomplete_ones(tmp_path):
    for step, complete in ((2, True), (4, True), (6, False)):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_checkpoint(tmp_path) == tmp_path / "checkpoint-4"
    assert not (tmp_path / "checkpoint-6").exists()
    assert last_checkpoint(tmp_path / "none") is None


def test_checkpoints_of_other_settings_are_discarded(tmp_path, train_model, tables):
    job = make_job("sft", train_model, tables, tmp_path / "sft")
    assert prepare_checkpoints(job) is None
    (Path(job.checkpoint_dir) / "checkpoint-3").mkdir()
    (Path(job.checkpoint_dir) / "checkpoint-3" / "trainer_state.json").write_text("{}")
    assert prepare_checkpoints(job) == Path(job.checkpoint_dir) / "checkpoint-3"
    changed = dataclasses.replace(job, seed=7)
    assert prepare_checkpoints(changed) is None
    assert not (Path(job.checkpoint_dir) / "checkpoint-3").exists()


def test_checkpoints_made_on_other_weights_are_discarded(tmp_path, tiny_model_dir):
    """The same prepared model name and manifest, but its weights file replaced: no resume."""
    import shutil

    from lexalign.models.prepare import prepare_model

    raw = tmp_path / "raw"
    shutil.copytree(tiny_model_dir, raw)
    model = prepare_model("tiny", {"path": str(raw)}, tmp_path / "prepared")
    job = make_job("sft", model, write_tables(tmp_path / "tables"), tmp_path / "sft")
    prepare_checkpoints(job)
    (Path(job.checkpoint_dir) / "checkpoint-2").mkdir()
    (Path(job.checkpoint_dir) / "checkpoint-2" / "trainer_state.json").write_text("{}")
    assert prepare_checkpoints(job) == Path(job.checkpoint_dir) / "checkpoint-2"
    weights = raw / "model.safetensors"
    data = weights.read_bytes()
    weights.write_bytes(data + b" ")  # other weights: size and mtime change, the manifest does not
    assert prepare_checkpoints(job) is None
    assert not (Path(job.checkpoint_dir) / "checkpoint-2").exists()


# ---- training -------------------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("method", ["sft", "dpo", "rl"])
def test_every_method_trains_an_adapter(tmp_path, train_model, tables, method):
    out = tmp_path / method
    run(make_job(method, train_model, tables, out))
    assert sorted(p.name for p in (out / "adapter").iterdir() if p.suffix in (".json", ".safetensors", ".bin")) == [
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert json.loads((out / "adapter" / "adapter_config.json").read_text())["r"] == 4
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == method and metrics["global_step"] == 3 and metrics["preset"] == "smoke"
    assert metrics["schema_version"] == train_run.SCHEMA_VERSION <= SCHEMA_VERSIONS["train"]  # the report reads it
    for key in ("train_loss", "runtime_s", "samples_per_s", "tokens_per_s", "num_tokens", "trainable_parameters"):
        assert metrics[key] is not None, key
    if method == "rl":
        assert metrics["reward"]["points"] == 3 and -1.0 <= metrics["reward"]["mean"] <= 1.0
        assert metrics["eval_loss"] is None
    else:
        assert metrics["eval_loss"] is not None and metrics["eval_examples"] == 1
    history = [json.loads(line) for line in (out / "log_history.jsonl").read_text().splitlines()]
    assert [r["step"] for r in history if "loss" in r] == [1, 2, 3]
    assert not Path(make_job(method, train_model, tables, out).checkpoint_dir).exists()  # removed after success


@pytest.mark.slow
def test_sft_rl_continues_the_sft_adapter(tmp_path, train_model, tables):
    from lexalign.models.loading import load_model

    sft = tmp_path / "sft"
    run(make_job("sft", train_model, tables, sft, {"max_steps": 2}))
    out = tmp_path / "sft_rl"
    run(make_job("sft_rl", train_model, tables, out, init_adapter=str(sft / "adapter")))
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["method"] == "sft_rl" and metrics["reward"]["points"] == 3
    start, end = adapter_tensors(sft / "adapter"), adapter_tensors(out / "adapter")
    assert start.keys() == end.keys()  # the same LoRA, continued (the frozen "ref" copy is not saved)
    loaded = load_model(train_model, adapter_dir=out / "adapter")
    assert list(loaded.model.peft_config) == ["default"]


@pytest.mark.parametrize(
    "method, save_steps, problem",
    [
        (
            "sft",
            1,
            r"\d+ adapter weight tensor\(s\) became nan/inf by step 1",
        ),  # caught when the checkpoint would be saved
        ("sft", 100, r"(loss|grad_norm) became nan at step 2"),  # caught in the step's log record
        ("dpo", 100, r"(loss|grad_norm) became nan at step 2"),
    ],
)
def test_a_diverging_run_stops_and_writes_nothing(tmp_path, train_model, tables, method, save_steps, problem):
    """A run whose weights, loss or gradient norm become nan/inf stops with one line naming the step and
    the preset, and writes no adapter, metrics or history, and no checkpoint with non-finite weights.
    (An infinite learning rate diverges at once; the config schema refuses it, a diverging run is the
    same case at a later step.)"""
    out = tmp_path / method
    job = make_job(
        method,
        train_model,
        tables,
        out,
        {"learning_rate": float("inf"), "max_steps": 6, "save_steps": save_steps, "logging_steps": 1},
    )
    with pytest.raises(LexalignError) as caught:
        run(job)
    message = str(caught.value)
    assert re.fullmatch(
        rf"train {method}: training diverged: {problem}; no adapter or metrics written "
        r"\(learning_rate inf of train preset smoke too high\?\)",
        message,
    ), message
    assert not out.exists()
    for checkpoint in Path(job.checkpoint_dir).glob("checkpoint-*"):  # what is left to resume from is finite
        assert all(bool(t.isfinite().all()) for t in adapter_tensors(checkpoint).values()), checkpoint


def test_sft_rl_needs_the_sft_adapter(tmp_path, train_model, tables):
    with pytest.raises(LexalignError, match="method sft_rl needs the sft adapter as input"):
        run(make_job("sft_rl", train_model, tables, tmp_path / "sft_rl"))


@pytest.mark.slow
def test_same_seed_same_adapter(tmp_path, train_model, tables):
    runs = {}
    for name, seed in (("a", 42), ("b", 42), ("c", 7)):
        run(make_job("sft", train_model, tables, tmp_path / name, {"max_steps": 2}, seed=seed))
        runs[name] = adapter_tensors(tmp_path / name / "adapter")
    assert runs["a"].keys() == runs["b"].keys()
    assert all((runs["a"][k] == runs["b"][k]).all() for k in runs["a"])
    assert any(not (runs["a"][k] == runs["c"][k]).all() for k in runs["a"])


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_checkpoint(tmp_path, train_model, tables):
    out = tmp_path / "sft"
    job = make_job(
        "sft",
        train_model,
        tables,
        out,
        {"max_steps": 40, "save_steps": 2, "max_train_examples": None},
        log_file=str(tmp_path / "train.log"),
    )
    job_file = tmp_path / "job.json"
    job_file.write_text(job.to_json())
    command = [sys.executable, "-m", "lexalign.train.run", str(job_file)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    first = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, start_new_session=True
    )
    checkpoints = Path(job.checkpoint_dir)
    deadline = time.time() + 120
    while not (checkpoints / "checkpoint-4" / "trainer_state.json").exists():
        assert first.poll() is None, first.stderr.read().decode()[-2000:]
        assert time.time() < deadline, "no checkpoint-4 within 120 s"
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)  # the training process and anything it started
    first.wait(timeout=30)
    first.stderr.close()
    assert not (out / "metrics.json").exists()
    killed_at = max(int(p.name.split("-")[1]) for p in checkpoints.glob("checkpoint-*"))
    assert 4 <= killed_at < 40

    second = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert second.returncode == 0, second.stderr[-3000:]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["global_step"] == 40
    assert 4 <= metrics["resumed_from_step"] <= killed_at
    steps = [
        json.loads(line)["step"] for line in (out / "log_history.jsonl").read_text().splitlines() if '"loss"' in line
    ]
    assert steps == list(range(1, 41))  # one curve across the kill, no step twice
    log = (tmp_path / "train.log").read_text()
    assert f"resuming from {checkpoints}/checkpoint-{metrics['resumed_from_step']}" in log
    assert "step 40/40" in log
    assert not checkpoints.exists()


def train_rule(train_model, tables, tmp_path, gpus: int, log: str | None = None, threads: int = 1):
    """Rule train's job for the tiny model's SFT on the smoke preset, with ``resources: gpu``."""
    from lexalign.core.snake import Rule

    out = tmp_path / "results" / "train" / "tiny" / "en" / "sft"
    return Rule(
        input={"model": str(train_model), "data": str(tables["sft"])},
        output={
            "adapter": str(out / "adapter"),
            "metrics": str(out / "metrics.json"),
            "history": str(out / "log_history.jsonl"),
        },
        params={
            "settings": method_settings(TrainSection(preset="smoke"), "sft").to_config(),
            "checkpoints": str(tmp_path / "checkpoints"),
            "seed": 42,
            "dtype": "auto",
            "attn_implementation": None,
            "prompt_language": "en",
            "prompts": {},
        },
        wildcards={"model": "tiny", "lang": "en", "method": "sft"},
        resources={"gpu": gpus},
        log=log,
        threads=threads,
    )


@pytest.mark.slow
def test_rule_with_two_gpus_launches_two_workers(tmp_path, train_model, tables, monkeypatch):
    """rule train's job with resources gpu=2: two data-parallel workers started by
    ``accelerate launch -m lexalign.train.run`` (CPU/gloo workers here; GPUs on a cluster)."""
    from lexalign.core.snake import setup_logging

    monkeypatch.setattr("torch.cuda.device_count", lambda: 2)
    out = tmp_path / "results" / "train" / "tiny" / "en" / "sft"
    log_file = tmp_path / "train.log"
    rule = train_rule(train_model, tables, tmp_path, gpus=2, log=str(log_file), threads=2)
    setup_logging(str(log_file))  # what run_script does first: the rule's log, truncated
    try:
        logging.getLogger("lexalign").info("rule started")
        run(TrainJob.from_rule(rule))
        logging.getLogger("lexalign").info("rule finished")
    finally:
        for handler in logging.root.handlers[:]:
            logging.root.removeHandler(handler)
            handler.close()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["num_processes"] == 2 and metrics["global_step"] == 3
    assert metrics["epochs"] == pytest.approx(3 * 2 * 2 / 16)  # each step saw two per-device batches of 2
    lines = log_file.read_text().splitlines()
    assert "rule started" in lines[0] and "rule finished" in lines[-1]
    assert any("launching 2 CPU workers" in line for line in lines)
    assert any("[rank 0]" in line and "step 3/3" in line for line in lines)  # the workers' lines survive
    assert not any("[rank 1]" in line for line in lines)  # only the main worker writes the log


def test_fused_output_layer_scores_only_labelled_positions_on_cpu(tiny_model_dir, monkeypatch):
    from transformers import AutoModelForCausalLM
    from trl.trainer import utils

    from lexalign.train.trainers import score_labelled_positions_only

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir, dtype=torch.float32)
    utils.add_fused_lm_head(model, outputs=("log_probs", "entropy"))
    ids = torch.randint(5, 200, (2, 16))
    labels = ids.clone()
    labels[:, :10] = -100  # the prompt
    rows = []
    chunked = utils._ChunkedLogProbFunction

    class Recording:
        @staticmethod
        def apply(hidden, *args):
            rows.append(hidden.shape[0])
            return chunked.apply(hidden, *args)

    monkeypatch.setattr(utils, "_ChunkedLogProbFunction", Recording)
    from trl.kernels import chunked_logprob

    monkeypatch.setattr(utils, "_use_triton", chunked_logprob._use_triton)  # TRL's own, whatever ran before
    with torch.no_grad():
        every = model(input_ids=ids, labels=labels, fused_lm_head=True)
        score_labelled_positions_only()
        score_labelled_positions_only()  # once is enough; a second call changes nothing
        labelled = model(input_ids=ids, labels=labels, fused_lm_head=True)
    assert rows == [2 * 15, 2 * 6]  # every shifted position, then the labelled ones only
    torch.testing.assert_close(labelled.log_probs, every.log_probs)
    torch.testing.assert_close(labelled.entropy, every.entropy)
