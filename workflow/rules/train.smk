# Fine-tuning: one LoRA adapter per (model, lang, method) for the trained methods (sft, rl, sft_rl,
# dpo); vanilla and prompt need none. Hyper-parameters and cluster resources come from the preset
# (config train.preset). Checkpoints live in results/checkpoints/, outside the declared outputs, so a
# killed or failed job resumes from its last checkpoint when rerun.


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
        method=methods.wildcard_pattern(methods.TRAINED),
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
