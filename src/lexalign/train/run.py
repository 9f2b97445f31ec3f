"""Fine-tuning: LoRA adapters trained with TRL on the template tables, from named presets.

Methods: ``sft`` (SFTTrainer, completion-only loss on sft.parquet), ``rl`` (GRPOTrainer from the
instruct model on ranking.parquet with the Spearman ranking reward), ``sft_rl`` (the same RL stage
continuing the SFT adapter, whose initial copy is the KL reference), ``dpo`` (DPOTrainer on
dpo.parquet). Every method trains a LoRA adapter (LoRA+ learning rates through PEFT's optimizer).

Flow: ``workflow/scripts/train.py`` builds the job (:meth:`TrainJob.from_rule`); ``run(job)`` matches
checkpoints to the job (resuming from the last complete one), then trains in this process or, for
several GPUs, through ``accelerate launch -m lexalign.train.run``. Checkpoints live outside the rule's
outputs (Snakemake deletes those when a job fails), so a killed run continues where it stopped.
Outputs: ``adapter/`` (adapter_config.json + adapter_model.safetensors), ``metrics.json`` and
``log_history.jsonl`` (the trainer's log records).
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

from lexalign.config import methods
from lexalign.core.errors import LexalignError
from lexalign.core.io import atomic_path, write_json
from lexalign.core.resources import resource
from lexalign.core.snake import setup_logging
from lexalign.models.loading import read_manifest, weights_signature
from lexalign.train.trainers import TrainJob, build_trainer, check_finite, use_bf16

log = logging.getLogger(__name__)

#: accelerate config per ``train.distributed`` value (null = ddp); any other value names a config file.
ACCELERATE_CONFIGS = {name: resource(f"accelerate_{name}.yaml") for name in ("ddp", "zero2", "fsdp")}

FINGERPRINT = "lexalign_job.json"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)$")


# ---- checkpoints ------------------------------------------------------------------------------


def _file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    for file in files:
        digest.update(file.name.encode())
        with file.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    return digest.hexdigest()


def _model_weights(model_dir: str | os.PathLike) -> dict | str:
    """The prepared model's weights as they are now (:func:`lexalign.models.loading.weights_signature`):
    replaced or edited weights change it, so checkpoints made on other weights are not resumed."""
    try:
        return weights_signature(read_manifest(model_dir)["weights_path"])
    except (OSError, ValueError, KeyError):
        return str(model_dir)


def fingerprint(job: TrainJob) -> dict:
    """What checkpoints must have been made with to be resumed: settings, seed, data, model (its
    manifest and its weight files' sizes and mtimes), start adapter."""
    manifest = Path(job.model_dir) / "lexalign_model.json"
    return {
        "method": job.method,
        "settings": job.settings.to_config(),
        "seed": job.seed,
        "dtype": job.dtype,
        "num_processes": job.num_processes,
        "data": _file_digest(Path(job.data)),
        "model": manifest.read_text(encoding="utf-8") if manifest.is_file() else str(job.model_dir),
        "weights": _model_weights(job.model_dir),
        "init_adapter": _file_digest(Path(job.init_adapter)) if job.init_adapter else None,
    }


def last_checkpoint(checkpoint_dir: str | os.PathLike) -> Path | None:
    """The newest complete ``checkpoint-N`` (its trainer_state.json, written last, parses); newer
    incomplete ones (a kill during saving) are removed."""
    folder = Path(checkpoint_dir)
    if not folder.is_dir():
        return None
    found = sorted(
        ((int(m.group(1)), p) for p in folder.iterdir() if p.is_dir() and (m := CHECKPOINT.match(p.name))), reverse=True
    )
    for _, path in found:
        try:
            json.loads((path / "trainer_state.json").read_text(encoding="utf-8"))
            return path
        except (OSError, ValueError):
            log.warning("removing incomplete checkpoint %s", path)
            shutil.rmtree(path, ignore_errors=True)
    return None


def prepare_checkpoints(job: TrainJob) -> Path | None:
    """Keep checkpoints made for this very job and return the one to resume from; drop others."""
    folder = Path(job.checkpoint_dir)
    stamp = folder / FINGERPRINT
    expected = json.loads(json.dumps(fingerprint(job)))  # compared with its JSON copy on disk
    if folder.is_dir():
        try:
            previous = json.loads(stamp.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            previous = None
        if previous != expected:
            if any(folder.iterdir()):
                log.warning("discarding checkpoints in %s: made with other settings, data or model", folder)
            shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    stamp.write_text(json.dumps(expected, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    resume = last_checkpoint(folder)
    if resume is not None:
        log.info("resuming from %s", resume)
    return resume


# ---- entry points ---------------------------------------------------------------------------


def run(job: TrainJob) -> None:
    """Train one adapter: resume from matching checkpoints, train (in process or on several GPUs)."""
    record = methods.get(job.method)
    if not record.trained:
        raise LexalignError(
            f"train: method {job.method!r} is not trained (trained methods: {', '.join(methods.TRAINED)})"
        )
    if record.init_from and not job.init_adapter:
        raise LexalignError(f"train: method {job.method} needs the {record.init_from} adapter as input (init_adapter)")
    resume = prepare_checkpoints(job)
    job = dataclasses.replace(job, resume_from=str(resume) if resume else None)
    if job.num_processes > 1:
        launch(job)
    else:
        train(job)
    if not job.settings.keep_checkpoints:
        shutil.rmtree(job.checkpoint_dir, ignore_errors=True)


def accelerate_config(distributed: str | None) -> Path:
    """The accelerate config file of ``train.distributed``: ddp (null), zero2, fsdp or a file of the user's."""
    import importlib.util

    import yaml

    path = ACCELERATE_CONFIGS.get(distributed or "ddp") or Path(distributed)
    if not path.is_file():
        raise LexalignError(
            f"config train.distributed: {distributed} is not one of {', '.join(ACCELERATE_CONFIGS)} "
            "nor an existing accelerate config file"
        )
    try:
        kind = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("distributed_type")
    except (yaml.YAMLError, AttributeError):
        raise LexalignError(f"config train.distributed: {path} is not an accelerate config (YAML mapping)") from None
    if kind == "DEEPSPEED" and importlib.util.find_spec("deepspeed") is None:
        raise LexalignError(
            f"config train.distributed: {distributed} uses DeepSpeed, which is not installed (pip install deepspeed "
            "on the GPU machine), or set train.distributed: ddp or fsdp"
        )
    return path


def free_port() -> int:
    """A TCP port no process listens on now, from the kernel (bind to port 0). Each launch takes its own, so
    that two training jobs on one node (two 4-GPU jobs on an 8-GPU node, or a job and its retry) do not
    both ask for accelerate's default 29500; the port is held only by the main worker's rendezvous."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def launch_command(job: TrainJob, job_file: Path, port: int | None = None) -> list[str]:
    """``accelerate launch`` of ``job.num_processes`` workers running ``python -m lexalign.train.run JOB --worker``,
    their rendezvous on ``port`` (None: a :func:`free_port`); an argument list: nothing goes through a shell."""
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        str(accelerate_config(job.settings.distributed)),
        "--num_processes",
        str(job.num_processes),
        "--main_process_port",
        str(port or free_port()),
        "--mixed_precision",
        "bf16" if use_bf16(job.settings) else "no",
        "-m",
        "lexalign.train.run",
        str(job_file),
        "--worker",
    ]


def launch(job: TrainJob) -> None:
    """Run ``train`` in ``job.num_processes`` workers through ``accelerate launch`` (DDP, ZeRO-2 or FSDP:
    ``train.distributed``)."""
    import torch

    if job.log_file:  # reopened for appending, so that the launcher's lines do not overwrite the workers'
        setup_logging(job.log_file, mode="a")
    job_file = Path(job.checkpoint_dir) / "job.json"
    job_file.write_text(job.to_json(), encoding="utf-8")
    device = "GPU" if torch.cuda.is_available() else "CPU"  # CPU workers (gloo) serve tests of this path
    command = launch_command(job, job_file)
    log.info("launching %d %s workers: %s", job.num_processes, device, " ".join(command))
    result = subprocess.run(command, check=False)
    if result.returncode != 0:
        raise LexalignError(
            f"train: accelerate launch exited with status {result.returncode}; the workers' errors are above"
        )


def main(argv: list[str] | None = None) -> None:
    """``python -m lexalign.train.run JOB.json [--worker]``: run a job (``--worker``: be one DDP process)."""
    parser = argparse.ArgumentParser(prog="python -m lexalign.train.run", description=main.__doc__)
    parser.add_argument("job", help="job file written by lexalign.train.run.launch (TrainJob as JSON)")
    parser.add_argument("--worker", action="store_true", help="train directly (one process of accelerate launch)")
    options = parser.parse_args(argv)
    job = TrainJob.from_json(Path(options.job).read_text(encoding="utf-8"))
    rank = int(os.environ.get("RANK", "0"))
    setup_logging(job.log_file if rank == 0 else None, mode="a", prefix=f"[rank {rank}] ")
    try:
        train(job) if options.worker else run(job)
    except LexalignError as exc:
        log.error("%s", exc)
        print(f"lexalign error: {exc}", file=sys.stderr)
        sys.exit(1)


# ---- training -------------------------------------------------------------------------------


def train(job: TrainJob) -> dict:
    """Train, then (on the main process) write the adapter, metrics.json and log_history.jsonl."""
    import torch

    started = time.time()
    if job.threads:
        torch.set_num_threads(max(1, job.threads // job.num_processes))  # the job's CPUs, shared by its workers
    trainer, train_ds, eval_ds = build_trainer(job)
    log.info(
        "training %s (preset %s) on %d examples (%d held out) for %s, %d process(es), bf16 %s%s",
        job.method,
        job.settings.preset,
        len(train_ds),
        len(eval_ds) if eval_ds is not None else 0,
        f"{trainer.args.max_steps} steps" if trainer.args.max_steps > 0 else f"{trainer.args.num_train_epochs} epochs",
        trainer.args.world_size,
        trainer.args.bf16,
        f", resuming from {job.resume_from}" if job.resume_from else "",
    )
    resumed_step = None
    if job.resume_from:
        resumed_step = int(CHECKPOINT.match(Path(job.resume_from).name).group(1))
    output = trainer.train(resume_from_checkpoint=job.resume_from)
    check_finite(trainer, job)  # before anything is evaluated or written
    eval_metrics = trainer.evaluate() if eval_ds is not None else {}
    adapter_state = None
    if getattr(trainer, "is_fsdp_enabled", False):  # every worker takes part in gathering the sharded weights
        adapter_state = trainer.accelerator.get_state_dict(trainer.model)
    if not trainer.is_world_process_zero():
        return {}
    history = trainer.state.log_history
    metrics = summarise(job, history, output.metrics, eval_metrics, trainer)
    metrics.update(
        train_examples=len(train_ds),
        eval_examples=len(eval_ds) if eval_ds is not None else 0,
        resumed_from_step=resumed_step,
        wall_s=round(time.time() - started, 1),
    )
    with atomic_path(job.adapter_out) as tmp:
        extra = {"state_dict": adapter_state} if adapter_state is not None else {}
        model = trainer.accelerator.unwrap_model(trainer.model)
        model.save_pretrained(tmp, selected_adapters=["default"], safe_serialization=True, **extra)
    with atomic_path(job.history_out) as tmp:
        tmp.write_text("".join(json.dumps(record, ensure_ascii=False) + "\n" for record in history), encoding="utf-8")
    write_json(job.metrics_out, metrics)
    log.info(
        "trained %s in %.0f s: %s",
        job.method,
        metrics["wall_s"],
        {k: metrics[k] for k in ("train_loss", "eval_loss", "reward")},
    )
    return metrics


def _series(history: list[dict], key: str) -> list[float]:
    return [float(r[key]) for r in history if key in r and isinstance(r[key], (int, float))]


def _curve(values: list[float]) -> dict | None:
    if not values:
        return None
    tail = values[-max(1, len(values) // 10) :]
    return {
        "first": values[0],
        "last": values[-1],
        "min": min(values),
        "max": max(values),
        "mean": sum(values) / len(values),
        "mean_last_10pct": sum(tail) / len(tail),
        "points": len(values),
    }


#: metrics.json's layout: 1, the layout every release so far has written (the report reads up to
#: ``lexalign.report.fields.SCHEMA_VERSIONS["train"]``).
SCHEMA_VERSION = 1


def summarise(job: TrainJob, history: list[dict], train_metrics: Mapping, eval_metrics: Mapping, trainer) -> dict:
    """metrics.json: loss curve summary, eval loss, reward statistics, speed and the settings used."""
    import torch

    runtime = float(train_metrics.get("train_runtime", 0.0)) or None
    tokens = _series(history, "num_tokens")
    rewards = _series(history, "reward")
    trainable, total = trainer.model.get_nb_trainable_parameters()
    return {
        "schema_version": SCHEMA_VERSION,
        "method": job.method,
        "preset": job.settings.preset,
        "seed": job.seed,
        "global_step": trainer.state.global_step,
        "epochs": trainer.state.epoch,
        "train_loss": _curve(_series(history, "loss")),
        "train_loss_average": train_metrics.get("train_loss"),
        "eval_loss": eval_metrics.get("eval_loss"),
        "eval": dict(eval_metrics),
        "reward": _curve(rewards),
        "runtime_s": runtime,
        "samples_per_s": train_metrics.get("train_samples_per_second"),
        "steps_per_s": train_metrics.get("train_steps_per_second"),
        "num_tokens": tokens[-1] if tokens else None,
        "tokens_per_s": (tokens[-1] / runtime) if tokens and runtime else None,
        "num_processes": trainer.args.world_size,
        "device": torch.cuda.get_device_name(0) if torch.cuda.is_available() else "cpu",
        "bf16": bool(trainer.args.bf16),
        "trainable_parameters": trainable,
        "total_parameters": total,
        "lora": dataclasses.asdict(job.settings.lora),
        "hyper": dict(job.settings.hyper),
    }


if __name__ == "__main__":
    main()
