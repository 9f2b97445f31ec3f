# Fine-tuning: one LoRA adapter per (model, lang, method) for the trained methods (sft, rl, sft_rl,
# dpo); vanilla and prompt need none. Hyper-parameters and cluster resources come from the preset
# (config train.preset). Checkpoints live in results/checkpoints/, outside the declared outputs, so a
# killed or failed job resumes from its last checkpoint when rerun.


# Input functions of rule train. They belong in common.smk; kept here until the lead moves them
# (a later definition there or here is the same code).
from lexalign.train import data_table, method_settings


def train_inputs(wildcards):
    """What rule train reads: the prepared model, the method's template table and, for sft_rl, the SFT adapter."""
    inputs = {
        "model": f"results/models/{wildcards.model}",
        "data": f"results/templates/{wildcards.lang}/{data_table(wildcards.method)}.parquet",
    }
    if wildcards.method == "sft_rl":
        inputs["init_adapter"] = (
            f"results/train/{wildcards.model}/{wildcards.lang}/sft/adapter"
        )
    return inputs


def train_settings(wildcards):
    """LoRA, hyper-parameters and resources of the configured preset for one trained method."""
    return method_settings(config["train"], wildcards.method)


def train_resource(name):
    """A rule resource (gpus, cpus_per_task, mem_mb, runtime) from the preset."""
    return lambda wildcards: train_settings(wildcards)["resources"][name]


rule train:
    input:
        unpack(train_inputs),
    output:
        adapter=directory("results/train/{model}/{lang}/{method}/adapter"),
        metrics="results/train/{model}/{lang}/{method}/metrics.json",
        history="results/train/{model}/{lang}/{method}/log_history.jsonl",
    log:
        log_path("train", "model", "lang", "method"),
    benchmark:
        benchmark_path("train", "model", "lang", "method")
    wildcard_constraints:
        method="sft|rl|sft_rl|dpo",
    conda:
        "../../envs/lexalign.yaml"
    threads: train_resource("cpus_per_task")
    resources:
        gpu=train_resource("gpus"),
        cpus_per_task=train_resource("cpus_per_task"),
        mem_mb=train_resource("mem_mb"),
        runtime=train_resource("runtime"),
    params:
        settings=train_settings,
        checkpoints="results/checkpoints/{model}/{lang}/{method}",
        prompt_language=lambda wc: language_spec(wc)["prompt_language"],
        prompts=config["templates"]["prompts"],
        dtype=lambda wc: model_spec(wc)["dtype"],
        seed=config["seed"],
    script:
        "../scripts/train.py"
