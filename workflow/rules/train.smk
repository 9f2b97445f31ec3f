# Fine-tuning: one LoRA adapter per (model, lang, method) for the methods the registry marks as
# trained (lexalign.config.methods); the others need none. Hyper-parameters and cluster resources come from
# the preset (config train.preset). Params hold only what training reads: a new scheduler limit in
# the preset's resources retrains nothing. Checkpoints live in results/checkpoints/, outside the
# declared outputs, so a killed or failed job resumes from its last checkpoint when rerun.


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
    # the chain to training is the longest of the DAG: its jobs go first when several are ready
    priority: 10
    threads: resource(train_resources, "cpus")
    resources:
        gpu=resource(train_resources, "gpus"),
        cpus_per_task=resource(train_resources, "cpus"),
        mem_mb=resource(train_resources, "mem_mb"),
        runtime=resource(train_resources, "runtime"),
    params:
        settings=train_settings,
        checkpoints="results/checkpoints/{model}/{lang}/{method}",
        prompt_language=lambda wc: language_spec(wc)["prompt_language"],
        prompts=prompt_overrides,
        dtype=lambda wc: model_spec(wc)["dtype"],
        attn_implementation=lambda wc: model_spec(wc).get("attn_implementation"),
        seed=config["seed"],
    script:
        "../scripts/train.py"
