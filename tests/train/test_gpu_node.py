"""What a first run on a GPU node would hit, checked on a CPU (issue 24): the rendezvous port of
``accelerate launch``, a job that sees fewer GPUs than it asked for, LoRA+ built where FSDP allows it,
GRPO's vLLM rollouts in the paper preset, tokenising once, and how the SLURM executor turns ``gpu=N``
into one task."""

from __future__ import annotations

import dataclasses
import socket
import types
from pathlib import Path

import pytest
import yaml
from test_train import make_job, tables, train_model, train_rule  # noqa: F401  (its fixtures)

from lexalign.config.presets import TrainSection, method_settings
from lexalign.core.errors import LexalignError
from lexalign.models.devices import require_gpus
from lexalign.train import run as train_run
from lexalign.train.trainers import DDP_TIMEOUT_S, TrainJob, build_trainer, cached_split, trainer_config

REPO = Path(__file__).resolve().parents[2]


# ---- finding 1: the rendezvous port ---------------------------------------------------------------


def test_each_launch_asks_accelerate_for_a_port_nobody_listens_on(tmp_path, train_model, tables):  # noqa: F811
    job = dataclasses.replace(make_job("sft", train_model, tables, tmp_path / "sft"), num_processes=4)
    with socket.socket() as taken:  # another job's rendezvous on accelerate's default port, or any other
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        busy = taken.getsockname()[1]
        argv = train_run.launch_command(job, tmp_path / "job.json")
        port = int(argv[argv.index("--main_process_port") + 1])
        assert port != busy and port > 0
        with socket.socket() as ours:
            ours.bind(("127.0.0.1", port))  # free when chosen
    assert train_run.launch_command(job, tmp_path / "job.json", port=31234)[argv.index("--main_process_port") + 1] == (
        "31234"
    )


# ---- finding 2: GPUs asked for against GPUs seen --------------------------------------------------


@pytest.mark.parametrize(("asked", "seen"), [(1, 0), (4, 0), (4, 2)])
def test_a_train_job_that_sees_fewer_gpus_than_it_asked_for_stops(
    asked,
    seen,
    tmp_path,
    train_model,  # noqa: F811
    tables,  # noqa: F811
    monkeypatch,
):
    monkeypatch.setattr("torch.cuda.is_available", lambda: seen > 0)
    monkeypatch.setattr("torch.cuda.device_count", lambda: seen)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", ",".join(str(i) for i in range(seen)))
    with pytest.raises(LexalignError) as caught:
        TrainJob.from_rule(train_rule(train_model, tables, tmp_path, asked, threads=4))
    message = str(caught.value)
    assert "\n" not in message and "train tiny/en/sft" in message
    assert f"asked for {asked} GPU(s)" in message and f"sees {seen}" in message


def test_a_train_job_gets_one_worker_per_gpu_it_asked_for(tmp_path, train_model, tables, monkeypatch):  # noqa: F811
    monkeypatch.setattr("torch.cuda.is_available", lambda: True)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 8)  # a whole node visible: 4 of them used
    assert TrainJob.from_rule(train_rule(train_model, tables, tmp_path, 4, threads=4)).num_processes == 4
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    assert TrainJob.from_rule(train_rule(train_model, tables, tmp_path, 0, threads=4)).num_processes == 1  # a CPU job


def test_require_gpus_is_silent_for_cpu_jobs(monkeypatch):
    monkeypatch.setattr("torch.cuda.device_count", lambda: 0)
    assert require_gpus(0, "lexical") == 0 and require_gpus(None, "wvs") == 0
    with pytest.raises(LexalignError, match=r"^wvs tiny: the job asked for 2 GPU\(s\) .* but sees 0"):
        require_gpus(2, "wvs tiny")


class _Job:
    """The part of a Snakemake job the SLURM executor reads."""

    def __init__(self, resources: dict, threads: int):
        self.resources = types.SimpleNamespace(**resources)
        self.resources.get = resources.get
        self.threads = threads


def test_the_slurm_executor_gives_a_gpu_job_one_task_with_its_gpus_and_cpus():
    """snakemake-executor-plugin-slurm (as installed): ``gpu=4`` becomes ``--gpus=4``, the rule's
    ``cpus_per_task`` ``--cpus-per-task``, and no ``--ntasks-per-gpu`` (that would start 4 tasks) as long
    as no ``tasks`` resource is set; the job step is ``srun -n1``: one task, which accelerate launch splits."""
    pytest.importorskip("snakemake_executor_plugin_slurm")
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string
    from snakemake_executor_plugin_slurm_jobstep import get_cpu_setting, get_gpu_setting

    profile = yaml.safe_load((REPO / "profiles" / "slurm" / "config.yaml").read_text(encoding="utf-8"))
    defaults = profile["default-resources"]
    assert not {"tasks", "tasks_per_gpu", "cpus_per_gpu"} & set(defaults)
    resources = {**defaults, "gpu": 4, "cpus_per_task": 32, "mem_mb": 256000, "runtime": 2880}
    job = _Job(resources, threads=32)
    params = {
        "run_uuid": "u",
        "slurm_logfile": "l",
        "comment_str": "c",
        "account": "",
        "partition": "",
        "workdir": None,
    }
    submit = get_submit_command(job, params) + set_gres_string(job)
    assert "--gpus=4" in submit and "--cpus-per-task=32" in submit and "--nodes=1" in submit
    assert "--ntasks" not in submit  # SLURM's default: one task
    assert (get_cpu_setting(job, True), get_gpu_setting(job)) == ("--cpus-per-task=32", "--gpus=4")


# ---- finding 3: LoRA+ in create_optimizer ---------------------------------------------------------


@pytest.mark.parametrize("method", ["sft", "dpo", "rl"])
def test_lora_plus_is_built_by_the_trainer_not_handed_over(method, tmp_path, train_model, tables):  # noqa: F811
    """No optimizer passes through ``optimizers=`` (transformers refuses that under FSDP): the trainer builds
    LoRA+ in create_optimizer, once the model is placed, B matrices at 16x the learning rate."""
    job = make_job(method, train_model, tables, tmp_path / method)
    trainer, _, _ = build_trainer(job)
    assert trainer.optimizer is None  # the FSDP check in Trainer.__init__ looks at exactly this
    optimizer = trainer.create_optimizer()
    rates = {}
    names = {id(p): n for n, p in trainer.model.named_parameters()}
    for group in optimizer.param_groups:
        for parameter in group["params"]:
            rates[names[id(parameter)]] = group["lr"]
    lr = job.settings.learning_rate
    assert rates and all(v == pytest.approx(lr * 16 if "lora_B" in k else lr) for k, v in rates.items())
    assert any("lora_B" in k for k in rates) and any("lora_A" in k for k in rates)


def test_without_a_lora_plus_ratio_the_trainer_keeps_its_own_optimizer(tmp_path, train_model, tables):  # noqa: F811
    job = make_job("sft", train_model, tables, tmp_path / "sft")
    lora = dataclasses.replace(job.settings.lora, loraplus_lr_ratio=None)
    job = dataclasses.replace(job, settings=dataclasses.replace(job.settings, lora=lora))
    trainer, _, _ = build_trainer(job)
    assert {group["lr"] for group in trainer.create_optimizer().param_groups} == {job.settings.learning_rate}


# ---- finding 4: GRPO rollouts on vLLM (colocate) in the paper preset --------------------------------


def test_paper_grpo_generates_its_rollouts_with_vllm_colocated(tmp_path, train_model, tables, monkeypatch):  # noqa: F811
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    for method in ("rl", "sft_rl"):
        settings = method_settings(TrainSection(preset="paper"), method)
        job = dataclasses.replace(make_job(method, train_model, tables, tmp_path / method), settings=settings)
        args = trainer_config(job, has_eval=False)
        assert (args.use_vllm, args.vllm_mode) == (True, "colocate")
        assert args.vllm_gpu_memory_utilization == 0.3
        assert args.vllm_max_model_length == 1024 >= args.max_completion_length * 2
    smoke = trainer_config(make_job("rl", train_model, tables, tmp_path / "smoke"), has_eval=False)
    assert smoke.use_vllm is False  # the CPU presets generate with transformers, as before


# ---- finding 8: tokenise once, wait long enough -----------------------------------------------------


def test_data_parallel_jobs_wait_hours_not_nccls_30_minutes(tmp_path, train_model, tables, monkeypatch):  # noqa: F811
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    job = make_job("sft", train_model, tables, tmp_path / "sft")
    single = trainer_config(job, has_eval=False)
    assert single.ddp_timeout == 1800 and single.dataset_num_proc is None  # threads=1: in process
    many = trainer_config(dataclasses.replace(job, num_processes=4, threads=32), has_eval=False)
    assert many.ddp_timeout == DDP_TIMEOUT_S >= 3 * 3600 and many.dataset_num_proc == 32
    dpo = trainer_config(dataclasses.replace(make_job("dpo", train_model, tables, tmp_path / "d"), threads=8), False)
    assert dpo.dataset_num_proc == 8
    own = job.settings.with_hyper(ddp_timeout=600)
    assert trainer_config(dataclasses.replace(job, settings=own, num_processes=2), has_eval=False).ddp_timeout == 600


def test_a_split_is_written_once_and_read_back_from_disk(tmp_path, train_model, tables):  # noqa: F811
    import datasets

    args = trainer_config(make_job("sft", train_model, tables, tmp_path / "sft"), has_eval=False)

    rows = datasets.Dataset.from_dict({"prompt": ["a", "b"], "completion": ["c", "d"]})
    first = cached_split(rows, tmp_path / "datasets", args)
    assert first.cache_files and first.to_dict() == rows.to_dict()  # memory-mapped: map results get cached
    folder = Path(first.cache_files[0]["filename"]).parent
    stamp = (folder / "state.json").stat().st_mtime_ns
    again = cached_split(datasets.Dataset.from_dict(rows.to_dict()), tmp_path / "datasets", args)
    assert Path(again.cache_files[0]["filename"]).parent == folder
    assert (folder / "state.json").stat().st_mtime_ns == stamp  # not written again
    other = cached_split(
        datasets.Dataset.from_dict({"prompt": ["x"], "completion": ["y"]}), tmp_path / "datasets", args
    )
    assert other.to_dict() == {"prompt": ["x"], "completion": ["y"]}  # other rows, another folder


@pytest.mark.parametrize("method", ["sft", "dpo"])
def test_the_trainer_s_tokenisation_is_cached_beside_the_split(method, tmp_path, train_model, tables):  # noqa: F811
    """What the main rank tokenises, the other ranks (and a resumed run) read back: a second build of the same
    job writes no new cache file."""
    job = make_job(method, train_model, tables, tmp_path / method)
    folder = Path(job.checkpoint_dir) / "datasets"
    build_trainer(job)
    first = sorted(p.name for p in folder.rglob("cache-*.arrow"))
    build_trainer(job)
    assert first and sorted(p.name for p in folder.rglob("cache-*.arrow")) == first
