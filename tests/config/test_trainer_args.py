"""Trainer-argument pass-through: any TRL config field in a preset, checked at start-up from the cached
field list; GRPO's vLLM rollout options; the model-loading attn_implementation."""

from __future__ import annotations

import copy
import dataclasses
import json
import typing
from pathlib import Path

import pytest
import yaml

from lexalign.config import trainer_args
from lexalign.config.presets import TrainSection, check_presets, method_settings
from lexalign.config.validation import validate_config
from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.train.trainers import TrainJob, check_vllm_rollouts, trainer_config, vllm_rollout_stops

ALL = ["vanilla", "sft", "rl", "sft_rl", "dpo"]


def test_cached_field_list_matches_the_installed_trl():
    """resources/trainer_fields.json is what ``python -m lexalign.config.trainer_args`` writes for this TRL."""
    stored = json.loads(trainer_args.FIELDS_FILE.read_text(encoding="utf-8"))
    assert stored["classes"] == trainer_args.installed_fields()
    assert trainer_args.main(["--check"]) == 0


def test_json_kinds_of_annotations():
    kinds = trainer_args._json_kinds
    assert kinds(bool) == ["boolean"]
    assert kinds(int | None) == ["integer", "null"]
    assert kinds(str | None | typing.Literal[False]) == ["string", "null", "boolean"]
    assert kinds(dict[str, typing.Any] | str | None) == ["object", "string", "null"]
    assert kinds(list[float] | None) == ["array", "null"]
    assert kinds(typing.Any) is None


def _preset(**sections) -> TrainSection:
    return TrainSection(preset="paper", presets={"paper": sections})


def test_trl_and_transformers_fields_pass_through():
    check_presets(
        _preset(
            train={
                "optim": "adamw_torch_fused",
                "report_to": "tensorboard",
                "use_liger_kernel": True,
                "gradient_checkpointing_kwargs": {"use_reentrant": False},
                "torch_compile": False,
            },
            sft={"packing_strategy": "bfd", "dataset_num_proc": 4},
            rl={"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3},
            dpo={"use_weighting": True, "sync_ref_model": False},
        ),
        ALL,
    )


@pytest.mark.parametrize(
    ("sections", "message"),
    [
        (
            {"sft": {"learning_rat": 1e-4}},
            r"^my.yaml: train.presets.paper.sft.learning_rat: not a SFTConfig setting "
            r"\(did you mean learning_rate\?\)$",
        ),
        (
            {"rl": {"use_vlm": True}},
            r"^my.yaml: train.presets.paper.rl.use_vlm: not a GRPOConfig setting "
            r"\(did you mean use_vllm\?\)$",
        ),
        ({"dpo": {"num_generations": 4}}, r"train.presets.paper.dpo.num_generations: not a DPOConfig setting"),
        (
            {"train": {"optimm": "adamw_torch"}},
            r"train.optimm: not a SFTConfig, GRPOConfig or DPOConfig setting \(did you mean optim, ",
        ),
        (
            {"train": {"packing": True}},
            r"train.packing: a SFTConfig setting, not a GRPOConfig, DPOConfig one; set it under sft instead$",
        ),
        ({"rl": {"use_vllm": "yes"}}, r"train.presets.paper.rl.use_vllm: 'yes' is not of type boolean"),
        ({"train": {"torch_compile": 1}}, r"train.torch_compile: 1 is not of type boolean"),
        ({"train": {"output_dir": "out"}}, r"train.output_dir: set by the workflow, not by a preset \(training"),
        ({"train": {"deepspeed": "ds.json"}}, r"train.deepspeed: set by the workflow.*train.distributed"),
        ({"sft": {"seed": 1}}, r"sft.seed: set by the workflow.*top-level seed"),
    ],
)
def test_bad_trainer_arguments_fail_in_one_line(sections, message):
    with pytest.raises(LexalignError, match=message) as info:
        check_presets(_preset(**sections), ALL, source="my.yaml")
    assert "\n" not in str(info.value)


def test_only_sections_the_run_trains_with_are_checked():
    check_presets(_preset(dpo={"not_a_field": 1}), ["vanilla", "sft"])
    with pytest.raises(LexalignError, match="dpo.not_a_field"):
        check_presets(_preset(dpo={"not_a_field": 1}), ["dpo"])


def test_the_schema_lets_extra_keys_through_to_the_field_check(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["check_paths"] = False
    schema = SCHEMA
    good = copy.deepcopy(config)
    good["train"] = {"presets": {"default": {"train": {"optim": "adafactor", "report_to": "none"}}}}
    validate_config(good, schema)
    bad = copy.deepcopy(config)
    bad["train"] = {"presets": {"default": {"sft": {"learning_rat": 1e-4}}}}
    with pytest.raises(LexalignError, match=r"^x.yaml: train.presets.default.sft.learning_rat: not a SFTConfig"):
        validate_config(bad, schema, source="x.yaml")
    reporter = copy.deepcopy(config)
    reporter["train"] = {"presets": {"default": {"train": {"report_to": "mlflow"}}}}
    with pytest.raises(LexalignError, match=r"report_to: 'mlflow' is not one of \['none', 'tensorboard', 'wandb'\]"):
        validate_config(reporter, schema, source="x.yaml")


def _job(method, model, tmp_path, **hyper) -> TrainJob:
    settings = method_settings(TrainSection(preset="smoke"), method).with_hyper(**hyper)
    return TrainJob(
        method=method,
        model_dir=str(model),
        data=str(tmp_path / "unused.parquet"),
        adapter_out=str(tmp_path / "adapter"),
        metrics_out=str(tmp_path / "metrics.json"),
        history_out=str(tmp_path / "log_history.jsonl"),
        checkpoint_dir=str(tmp_path / "checkpoints"),
        settings=settings,
    )


def test_passed_through_arguments_reach_the_trl_configs(tiny_prepared, tmp_path, monkeypatch):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    job = _job(
        "sft",
        tiny_prepared,
        tmp_path,
        optim="adafactor",
        report_to="tensorboard",
        gradient_checkpointing=True,
        gradient_checkpointing_kwargs={"use_reentrant": True},
        logging_first_step=False,
        max_grad_norm=0.5,
    )
    args = trainer_config(job, has_eval=False)
    assert str(args.optim.value if hasattr(args.optim, "value") else args.optim) == "adafactor"
    assert args.report_to == ["tensorboard"] and args.logging_first_step is False and args.max_grad_norm == 0.5
    assert args.activation_checkpointing and args.activation_checkpointing_kwargs == {"use_reentrant": True}
    assert args.output_dir == job.checkpoint_dir and args.seed == job.seed  # the workflow's own
    default = trainer_config(_job("sft", tiny_prepared, tmp_path), has_eval=False)
    assert default.report_to == [] and default.logging_first_step is True  # "none" = no integration

    vllm = {"use_vllm": True, "vllm_mode": "colocate", "vllm_gpu_memory_utilization": 0.3}
    rl = _job("rl", tiny_prepared, tmp_path, **vllm, max_length=64)
    grpo = trainer_config(rl, has_eval=False)  # max_length: a shared key GRPO has no use for
    assert type(grpo).__name__ == "GRPOConfig"
    assert (grpo.use_vllm, grpo.vllm_mode, grpo.vllm_gpu_memory_utilization) == (True, "colocate", 0.3)
    vllm_rollout_stops(grpo, [4, 2])
    assert grpo.generation_kwargs == {"stop_token_ids": [4, 2]}
    grpo.generation_kwargs = {"stop_token_ids": [9], "min_p": 0.1}
    vllm_rollout_stops(grpo, [4, 2])
    assert grpo.generation_kwargs == {"stop_token_ids": [9], "min_p": 0.1}  # the preset's own entry wins


def test_grpo_vllm_without_a_gpu_or_vllm_is_a_clear_error(tiny_prepared, tmp_path, monkeypatch):
    import importlib.util

    job = _job("rl", tiny_prepared, tmp_path)
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    with pytest.raises(LexalignError, match=r"^train preset smoke \(rl\): use_vllm needs a CUDA GPU"):
        check_vllm_rollouts(job)
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "vllm" else real(name, *a))
    with pytest.raises(LexalignError, match=r"use_vllm needs vLLM: pip install 'lexalign\[vllm\]'"):
        check_vllm_rollouts(job)


def test_attn_implementation_reaches_the_loaded_model(tiny_prepared):
    from lexalign.models.loading import load_model

    loaded = load_model(tiny_prepared, dtype="float32", attn_implementation="eager")
    assert loaded.model.config._attn_implementation == "eager"
    default = load_model(tiny_prepared, dtype="float32")
    assert default.model.config._attn_implementation == "sdpa"


# ---- train.distributed: DDP, ZeRO-2, FSDP through accelerate launch ------------------------------


def _accelerate_args(argv: list[str]):
    """accelerate's own parsing of our launch command: its arguments after ``-m accelerate.commands.launch``,
    completed from the config file as ``accelerate launch`` does."""
    from accelerate.commands.launch import _validate_launch_command, launch_command_parser

    assert argv[1:3] == ["-m", "accelerate.commands.launch"]
    return _validate_launch_command(launch_command_parser().parse_args(argv[3:]))[0]


@pytest.mark.parametrize(
    ("distributed", "kind"), [(None, "MULTI_GPU"), ("ddp", "MULTI_GPU"), ("zero2", "DEEPSPEED"), ("fsdp", "FSDP")]
)
def test_launch_command_for_each_distributed_choice(distributed, kind, tiny_prepared, tmp_path, monkeypatch):
    import importlib.util

    from lexalign.train import run as train

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "deepspeed" else real(name, *a)
    )
    job = _job("sft", tiny_prepared, tmp_path, bf16=True)
    job = dataclasses.replace(job, settings=dataclasses.replace(job.settings, distributed=distributed), num_processes=4)
    argv = train.launch_command(job, tmp_path / "job.json")
    assert isinstance(argv, list) and all(isinstance(a, str) for a in argv)  # no shell string
    config = Path(argv[argv.index("--config_file") + 1])
    assert config == train.ACCELERATE_CONFIGS[distributed or "ddp"]
    assert yaml.safe_load(config.read_text(encoding="utf-8"))["distributed_type"] == kind
    assert argv[-4:] == ["-m", "lexalign.train.run", str(tmp_path / "job.json"), "--worker"]
    args = _accelerate_args(argv)
    assert (args.num_processes, args.mixed_precision) == (4, "bf16")
    assert (args.use_deepspeed, args.use_fsdp, args.multi_gpu) == (
        kind == "DEEPSPEED",
        kind == "FSDP",
        kind == "MULTI_GPU",
    )
    if kind == "DEEPSPEED":
        assert args.zero_stage == 2 and args.gradient_accumulation_steps is None  # "auto": the preset's value
    if kind == "FSDP":
        from accelerate.utils.launch import prepare_multi_gpu_env

        env = prepare_multi_gpu_env(args)
        assert env["ACCELERATE_USE_FSDP"] == "true" and env["FSDP_VERSION"] == "2"
        assert env["FSDP_STATE_DICT_TYPE"] == "FULL_STATE_DICT"


def test_a_users_accelerate_config_and_bad_choices(tiny_prepared, tmp_path, monkeypatch):
    import importlib.util

    from lexalign.train import run as train

    own = tmp_path / "mine.yaml"
    own.write_text("compute_environment: LOCAL_MACHINE\ndistributed_type: MULTI_GPU\n", encoding="utf-8")
    assert train.accelerate_config(str(own)) == own
    with pytest.raises(LexalignError, match=r"^config train.distributed: /no/such.yaml is not one of ddp, zero2, fsdp"):
        train.accelerate_config("/no/such.yaml")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "deepspeed" else real(name, *a))
    with pytest.raises(LexalignError, match=r"zero2 uses DeepSpeed, which is not installed \(pip install deepspeed"):
        train.accelerate_config("zero2")


def test_distributed_reaches_the_job_settings_only_when_set():
    ddp = method_settings(TrainSection(preset="smoke"), "sft")
    assert ddp.distributed is None and "distributed" not in ddp.to_config()  # DDP runs keep their checkpoints
    fsdp = method_settings(TrainSection(preset="smoke", distributed="fsdp"), "sft")
    assert fsdp.distributed == fsdp.to_config()["distributed"] == "fsdp"


def test_the_schema_names_the_distributed_choices(repo):
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text(encoding="utf-8"))
    config["check_paths"] = False
    for value in ("zero2", "fsdp", "ddp", "cluster/zero3.yaml", None):
        validate_config(copy.deepcopy(config) | {"train": {"distributed": value}}, SCHEMA)
    with pytest.raises(LexalignError, match=r"^config: train.distributed: 'zero3' is not valid"):
        validate_config(config | {"train": {"distributed": "zero3"}}, SCHEMA)
