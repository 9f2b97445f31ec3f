"""Building one TRL trainer for a training job: the job record, data, LoRA, optimizer, TRL config,
callbacks (step log lines, the non-finite guard) and the trainer itself.

``lexalign.train.run`` runs the job (checkpoints, resume, several GPUs, outputs); this module only builds.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import logging
import math
import os
from collections.abc import Mapping
from pathlib import Path

from lexalign.config import methods
from lexalign.config.presets import TrainSettings
from lexalign.config.trainer_args import NOT_FOR_EVERY_TRAINER, OWN_KEYS
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path
from lexalign.core.snake import Rule
from lexalign.models import memory
from lexalign.models.devices import require_gpus
from lexalign.models.loading import cpu_has_native_bf16

log = logging.getLogger("lexalign.train.run")

#: The columns each method reads from its table (besides ``split``).
COLUMNS = {"sft": ("prompt", "completion"), "ranking": ("prompt", "gold"), "dpo": ("prompt", "chosen", "rejected")}
#: NCCL's timeout of a data-parallel job (s): the main rank tokenises the whole table (the paper's ~700k
#: SFT rows: minutes on 32 CPUs) while the others wait in a barrier; torch's default of 30 min is too tight.
DDP_TIMEOUT_S = 3 * 3600
#: Log keys whose value must stay finite; a nan or inf stops the run.
WATCHED = ("loss", "grad_norm")


# ---- the job --------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainJob:
    """One training run; JSON-serialisable so that ``accelerate launch`` workers can read it."""

    method: str
    model_dir: str
    data: str
    adapter_out: str
    metrics_out: str
    history_out: str
    checkpoint_dir: str
    settings: TrainSettings
    seed: int = 42
    dtype: str = "auto"
    attn_implementation: str | None = None  # config models.<name>.attn_implementation
    init_adapter: str | None = None
    prompt_language: str = "en"
    prompts: Mapping[str, Mapping[str, str]] = dataclasses.field(default_factory=dict)  # templates.prompts overrides
    num_processes: int = 1
    threads: int | None = None
    log_file: str | None = None
    resume_from: str | None = None

    @classmethod
    def from_rule(cls, rule: Rule) -> TrainJob:
        """The job of one ``train`` rule job: data-parallel over the GPUs the rule asked for (a job that sees
        fewer stops: :func:`lexalign.models.devices.require_gpus`)."""
        where = f"train {rule.wildcards['model']}/{rule.wildcards['lang']}/{rule.wildcards['method']}"
        gpus = require_gpus(rule.resources.get("gpu", 0), where)
        return cls(
            method=rule.wildcards["method"],
            model_dir=rule.input["model"],
            data=rule.input["data"],
            adapter_out=rule.output["adapter"],
            metrics_out=rule.output["metrics"],
            history_out=rule.output["history"],
            checkpoint_dir=rule.params["checkpoints"],
            settings=TrainSettings.from_config(rule.params["settings"]),
            seed=rule.params["seed"],
            dtype=rule.params["dtype"],
            attn_implementation=rule.params["attn_implementation"],
            init_adapter=rule.input.get("init_adapter") or None,
            prompt_language=rule.params["prompt_language"],
            prompts=rule.params["prompts"],
            num_processes=max(1, gpus),
            threads=rule.threads,
            log_file=rule.log,
        )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, ensure_ascii=False)

    @classmethod
    def from_json(cls, text: str) -> TrainJob:
        fields = json.loads(text)
        return cls(**{**fields, "settings": TrainSettings.from_config(fields["settings"])})


# ---- building -------------------------------------------------------------------------------


def use_bf16(settings: TrainSettings) -> bool:
    """``bf16: null`` means: where the hardware computes in bfloat16 natively (a bf16 GPU, or a CPU
    with AVX-512 BF16 or AMX, where autocast saves about a third of the compute; elsewhere it is slower)."""
    if settings.bf16 is not None:
        return bool(settings.bf16)
    import torch

    if torch.cuda.is_available():
        return bool(torch.cuda.is_bf16_supported())
    return cpu_has_native_bf16()


def load_split(path: str | os.PathLike, table: str, split: str, limit: int | None, seed: int):
    """One split of a template table as a ``datasets.Dataset`` with the columns the trainer reads."""
    import datasets
    import polars as pl

    try:
        schema = pl.read_parquet_schema(path)
    except (OSError, pl.exceptions.ComputeError) as exc:
        raise LexalignError(f"{path}: cannot read the {table} table ({exc})") from None
    wanted = COLUMNS[table]
    missing = [c for c in ("split", *wanted) if c not in schema]
    if missing:
        raise LexalignError(
            f"{path}: missing column(s) {', '.join(missing)} (the {table} table has {', '.join(wanted)} and split)"
        )
    frame = pl.scan_parquet(path).filter(pl.col("split") == split).select(wanted).collect()
    if limit is not None and frame.height > limit:
        frame = frame.sample(n=limit, seed=seed, shuffle=True)
    return datasets.Dataset.from_polars(frame) if frame.height else None


def cached_split(dataset, datasets_dir: Path, args):
    """``dataset`` saved once as Arrow files in ``datasets_dir/<its fingerprint>`` (a digest of its rows) and
    read back memory-mapped from there, so that ``datasets`` caches the trainer's tokenisation beside it: the
    main process tokenises first (TRL maps under ``main_process_first``), the other ranks and a resumed run
    read its cache instead of tokenising the table again. ``args``: the trainer's (its process group);
    ``datasets_dir`` lies in the job's checkpoint folder, dropped with it when the job changes."""
    import datasets

    folder = datasets_dir / dataset._fingerprint
    with args.main_process_first(local=True, desc=f"saving the table {folder.name}"):
        if not (folder / "state.json").is_file():
            with atomic_path(folder) as tmp:
                dataset.save_to_disk(str(tmp))
    return datasets.load_from_disk(str(folder))


def _peft_model(model, job: TrainJob):
    """Wrap the model with a fresh LoRA adapter, or with the start adapter made trainable (sft_rl)."""
    from peft import LoraConfig, PeftModel, get_peft_model

    if job.init_adapter:
        return PeftModel.from_pretrained(model, job.init_adapter, is_trainable=True)
    lora = job.settings.lora
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        return get_peft_model(model, config)
    except ValueError as exc:
        raise LexalignError(
            f"train preset {job.settings.preset}: lora.target_modules {lora.target_modules} "
            f"do not fit the model ({exc})"
        ) from None


class LoraPlusOptimizer:
    """Trainer mixin: LoRA+ (PEFT's optimizer: B matrices learn ``loraplus_lr_ratio`` times faster), built
    in ``create_optimizer``, where the trainer asks for its optimizer once the model is placed (wrapped by
    FSDP, DeepSpeed or DDP): transformers refuses an optimizer handed over through ``optimizers=`` under
    FSDP. A ratio of None or 1 leaves the trainer's own AdamW."""

    loraplus_lr_ratio: float | None = None

    def create_optimizer(self, model=None):
        ratio = self.loraplus_lr_ratio
        if self.optimizer is None and ratio and ratio != 1:
            import torch
            from peft.optimizers import create_loraplus_optimizer

            self.optimizer = create_loraplus_optimizer(
                self.model if model is None else model,
                torch.optim.AdamW,
                lr=self.args.learning_rate,
                loraplus_lr_ratio=ratio,
                weight_decay=self.args.weight_decay,
            )
        return super().create_optimizer(model)


def trainer_class(base: type, settings: TrainSettings, *mixins: type) -> type:
    """``base`` (a TRL trainer) with ``mixins`` and the LoRA+ optimizer of ``settings``."""
    attributes = {"loraplus_lr_ratio": settings.lora.loraplus_lr_ratio}
    return type(f"Lexalign{base.__name__}", (LoraPlusOptimizer, *mixins, base), attributes)


def trainer_config(job: TrainJob, has_eval: bool):
    """The TRL config dataclass of the job's method, from the preset's flat hyper-parameters."""
    import torch
    from trl import DPOConfig, GRPOConfig, SFTConfig

    cls = {"sft": SFTConfig, "grpo": GRPOConfig, "dpo": DPOConfig}[methods.get(job.method).trainer]
    fields = {f.name for f in dataclasses.fields(cls)}
    hyper = {k: v for k, v in job.settings.hyper.items() if k not in OWN_KEYS and v is not None}
    # Preset names that transformers 5 spells differently.
    if "warmup_ratio" in hyper:
        hyper["warmup_steps"] = float(hyper.pop("warmup_ratio"))  # a float below 1 is a share of the steps
    checkpointing = bool(hyper.pop("gradient_checkpointing", hyper.pop("activation_checkpointing", False)))
    hyper["activation_checkpointing"] = checkpointing
    given = [hyper.pop(key, None) for key in ("gradient_checkpointing_kwargs", "activation_checkpointing_kwargs")]
    if checkpointing:
        hyper["activation_checkpointing_kwargs"] = given[0] or given[1] or {"use_reentrant": False}
    unknown = sorted(k for k in hyper if k not in fields and k not in NOT_FOR_EVERY_TRAINER)
    if unknown:
        raise LexalignError(
            f"train preset {job.settings.preset} ({job.method}): {', '.join(unknown)} not a {cls.__name__} setting"
        )
    args = {k: v for k, v in hyper.items() if k in fields}
    if args.get("padding_free") and not args.get("packing"):
        args["max_length"] = None  # TRL cannot truncate unpacked padding-free rows; build_trainer drops longer ones
    args["bf16"] = use_bf16(job.settings)
    if not torch.cuda.is_available() and (args["bf16"] or job.num_processes > 1):
        # CPU bf16 autocast, or data-parallel CPU workers (gloo) as in the tests of the launch path
        args["use_cpu"] = True
    if job.num_processes > 1:
        args.setdefault("ddp_find_unused_parameters", False)  # every LoRA parameter takes part in each forward pass
        # The other ranks wait in a collective while the main one tokenises (cached_split) or saves a checkpoint
        args.setdefault("ddp_timeout", DDP_TIMEOUT_S)
    if "dataset_num_proc" in fields and (job.threads or 1) > 1:
        # SFT and DPO tokenise their tables in the job's CPUs. One CPU tokenises in process: datasets starts a
        # worker pool for any num_proc (the tokenizer pickled into it), 8 s per table on the default's CPU
        args.setdefault("dataset_num_proc", job.threads)
    eval_steps = args.pop("eval_steps", None)
    # The workflow's own settings (lexalign.config.trainer_args.COMPUTED refuses them in a preset) ...
    args.update(
        output_dir=job.checkpoint_dir,
        seed=job.seed,
        data_seed=job.seed,
        save_strategy="steps",
        eval_strategy="steps" if has_eval and eval_steps else "no",
        eval_steps=eval_steps if has_eval and eval_steps else None,
        logging_nan_inf_filter=False,  # a nan loss must show (the filter logged "loss fell to 0" for a diverged run)
    )
    # ... and defaults a preset may change.
    for key, value in {
        "report_to": "none",
        "disable_tqdm": False,
        "logging_first_step": True,
        "dataloader_pin_memory": torch.cuda.is_available(),
    }.items():
        args.setdefault(key, value)
    try:
        return cls(**args)
    except (TypeError, ValueError) as exc:
        raise LexalignError(f"train preset {job.settings.preset} ({job.method}): {exc}") from None


def _log_steps_callback():
    """A trainer callback writing every log record as one line to the rule's log (the console shows
    the trainer's progress bar)."""
    from transformers import TrainerCallback

    class LogSteps(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            if state.is_world_process_zero and logs:
                shown = {k: (round(v, 5) if isinstance(v, float) else v) for k, v in logs.items()}
                log.info("step %d/%d %s", state.global_step, state.max_steps, json.dumps(shown, ensure_ascii=False))

    return LogSteps()


def non_finite_parameters(model) -> list[str]:
    """Names of the trainable parameters holding a nan or inf (the LoRA weights: small, checked in ms)."""
    import torch

    return [name for name, p in model.named_parameters() if p.requires_grad and not bool(torch.isfinite(p).all())]


def check_finite(trainer, job: TrainJob) -> None:
    """Refuse a run whose loss or gradient norm became nan/inf or whose weights are no longer finite:
    one line naming the step and the preset, so that nothing is saved as if the run had worked."""
    guard = next((c for c in trainer.callback_handler.callbacks if isinstance(c, _guard_class())), None)
    problem = guard.problem if guard is not None else None
    if problem is None:
        bad = non_finite_parameters(trainer.model)
        if bad:
            step = trainer.state.global_step
            problem = f"{len(bad)} adapter weight tensor(s) are nan/inf after step {step} (e.g. {bad[0]})"
    if problem:
        raise LexalignError(
            f"train {job.method}: training diverged: {problem}; no adapter or metrics written "
            f"(learning_rate {job.settings.learning_rate} of train preset {job.settings.preset} too high?)"
        )


@functools.cache
def _guard_class():
    """The callback class (built on first use: transformers is imported lazily)."""
    from transformers import TrainerCallback

    class NonFiniteGuard(TrainerCallback):
        """Stops training at the first nan/inf loss or gradient norm, and never lets a checkpoint with
        non-finite weights be saved (a resume would continue a diverged run)."""

        def __init__(self):
            self.problem: str | None = None

        def _stop(self, control, problem: str):
            self.problem = self.problem or problem
            control.should_training_stop = True
            control.should_save = False
            control.should_evaluate = False

        def on_step_end(self, args, state, control, model=None, **kwargs):
            if self.problem:
                self._stop(control, self.problem)
            elif control.should_save and model is not None:
                bad = non_finite_parameters(model)
                if bad:
                    self._stop(
                        control, f"{len(bad)} adapter weight tensor(s) became nan/inf by step {state.global_step}"
                    )

        def on_log(self, args, state, control, logs=None, **kwargs):
            for key in WATCHED:
                value = (logs or {}).get(key)
                if isinstance(value, (int, float)) and not math.isfinite(value):
                    self._stop(control, f"{key} became {value} at step {state.global_step}")

    return NonFiniteGuard


def _drop_long_rows(trainer, max_length: int) -> None:
    """Padding-free SFT: drop tokenised rows longer than ``max_length`` (a truncated answer would lose
    its end-of-turn token and teach the model not to stop)."""
    for name in ("train_dataset", "eval_dataset"):
        dataset = getattr(trainer, name)
        if dataset is None or "input_ids" not in dataset.column_names:
            continue
        kept = dataset.filter(lambda row: len(row["input_ids"]) <= max_length)
        if len(kept) < len(dataset):
            log.warning(
                "dropped %d of %d %s rows longer than max_length %d",
                len(dataset) - len(kept),
                len(dataset),
                name,
                max_length,
            )
        setattr(trainer, name, kept)


def check_vllm_rollouts(job: TrainJob) -> None:
    """GRPO with ``use_vllm``: a clear error before loading when there is no GPU or no vLLM."""
    import importlib.util

    import torch

    where = f"train preset {job.settings.preset} ({job.method}): use_vllm"
    if not torch.cuda.is_available():
        raise LexalignError(
            f"{where} needs a CUDA GPU (none is visible); set use_vllm: false to generate with transformers"
        )
    if importlib.util.find_spec("vllm") is None:
        raise LexalignError(
            f"{where} needs vLLM: pip install 'lexalign[vllm]' on the GPU machine, or set use_vllm: false"
        )


def vllm_rollout_stops(args, stop_token_ids) -> None:
    """vLLM reads the stop tokens from the weights' generation_config.json, which may lack the chat
    template's end-of-turn token: pass the prepared model's stop tokens with every rollout request
    (a ``generation_kwargs`` entry of the preset wins)."""
    args.generation_kwargs = {"stop_token_ids": [int(t) for t in stop_token_ids], **(args.generation_kwargs or {})}


def score_labelled_positions_only() -> None:
    """Let TRL's fused output layer (DPO, GRPO) score only the positions that have a label on CPU too.

    TRL compacts to the labelled positions on Triton devices only: elsewhere it scores every position,
    prompt and padding included, to keep tile shapes fixed for graph compilers (Neuron). Eager CPU has no
    such need, and the log-probabilities are the same: a default-preset DPO step (Gemma 3 270M, 2 pairs)
    took 4.4 s instead of 8.5 s with identical losses. Patches ``trl.trainer.utils._use_triton``, the
    flag that decides only this (the kernel choice reads its own module's), once; a TRL without it is
    left as it is."""
    from trl.trainer import utils

    decide = getattr(utils, "_use_triton", None)
    if decide is None or getattr(decide, "compacts_on_cpu", False):
        return

    def compact(device) -> bool:
        return device.type == "cpu" or decide(device)

    compact.compacts_on_cpu = True
    utils._use_triton = compact


def build_trainer(job: TrainJob, plain_trl: bool = False):
    """Model with its LoRA adapter, datasets, TRL config and trainer for ``job``.

    SFT trains with :mod:`lexalign.train.sft_loss` (the output layer sees only supervised positions) where
    that pays; ``plain_trl`` builds TRL's own SFTTrainer instead (the benchmark's baseline)."""
    import torch
    from transformers import set_seed

    from lexalign.models.loading import load_model

    settings = job.settings
    trainer_name = methods.get(job.method).trainer
    table = methods.get(job.method).data_table
    train_ds = load_split(job.data, table, "train", settings.max_train_examples, job.seed)
    if train_ds is None:
        raise LexalignError(f"{job.data}: no rows with split == 'train' in the {table} table")
    eval_ds = None
    if trainer_name != "grpo" and settings.max_eval_examples != 0:
        eval_ds = load_split(job.data, table, "val", settings.max_eval_examples, job.seed)
    args = trainer_config(job, has_eval=eval_ds is not None)
    datasets_dir = Path(job.checkpoint_dir) / "datasets"
    train_ds = cached_split(train_ds, datasets_dir, args)
    eval_ds = cached_split(eval_ds, datasets_dir, args) if eval_ds is not None else None
    if getattr(args, "use_vllm", False):
        check_vllm_rollouts(job)

    memory.check_train_fits(job.model_dir, settings, job.dtype)  # a clear error, not an OOM after loading
    loaded = load_model(
        job.model_dir,
        dtype=job.dtype,
        padding_side="left",
        attn_implementation=job.attn_implementation,
        inference=False,
    )
    set_seed(job.seed)  # LoRA initialisation is random
    model = _peft_model(loaded.model, job)
    common = dict(
        model=model,
        args=args,
        train_dataset=train_ds,
        processing_class=loaded.tokenizer,
        callbacks=[_log_steps_callback(), _guard_class()()],
    )
    if trainer_name == "sft":
        from trl import SFTTrainer

        from lexalign.train.sft_loss import CompletionLossMixin, frozen_linears_to

        cls = trainer_class(SFTTrainer, settings, *(() if plain_trl else (CompletionLossMixin,)))
        trainer = cls(eval_dataset=eval_ds, **common)
        if not plain_trl and args.bf16 and not torch.cuda.is_available():
            # every SFT forward and backward runs under autocast: cast the frozen weights once, not per call
            log.info("frozen linear weights stored in bfloat16: %d", frozen_linears_to(model, torch.bfloat16))
    elif trainer_name == "dpo":
        from trl import DPOTrainer

        score_labelled_positions_only()
        trainer = trainer_class(DPOTrainer, settings)(eval_dataset=eval_ds, **common)
    else:
        from trl import GRPOTrainer

        from lexalign.train.rewards import final_ranking_label, make_ranking_reward

        if args.use_vllm:
            vllm_rollout_stops(args, loaded.stop_token_ids)
        label = final_ranking_label(job.prompt_language, job.prompts)
        reward = make_ranking_reward(label, job.prompt_language, settings.reward_definition)
        score_labelled_positions_only()
        trainer = trainer_class(GRPOTrainer, settings)(reward_funcs=reward, **common)
    if trainer_name == "sft" and trainer.args.max_length is None and settings.max_length:
        _drop_long_rows(trainer, settings.max_length)
    if trainer.train_dataset is not None and len(trainer.train_dataset) == 0:
        raise LexalignError(
            f"{job.data}: no training example left after tokenisation (every prompt is longer than "
            f"max_length {settings.max_length} of preset {settings.preset}?)"
        )
    return trainer, train_ds, eval_ds
