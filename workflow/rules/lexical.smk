rule lexical:
    input:
        model="results/models/{model}",
        adapter=adapter_input,
        eval="results/templates/{lang}/eval.parquet",
        associations="results/ingest/{lang}/associations.parquet",
        psycholinguistic_norms=lambda wc: norm_files(
            config["lexical"]["psycholinguistic"], language_spec(wc)["prompt_language"]
        ),
    output:
        scores="results/lexical/{model}/{lang}/{method}/scores.json",
        generations="results/lexical/{model}/{lang}/{method}/generations.parquet",
        per_cue="results/lexical/{model}/{lang}/{method}/per_cue.parquet",
    log:
        log_path("lexical", "model", "lang", "method"),
    benchmark:
        benchmark_path("lexical", "model", "lang", "method")
    wildcard_constraints:
        method=methods.wildcard_pattern(methods.evaluated_by(methods.LEXICAL)),
    threads: resource(lexical_resources, "cpus")
    resources:
        gpu=resource(lexical_resources, "gpus"),
        cpus_per_task=resource(lexical_resources, "cpus"),
        mem_mb=resource(lexical_resources, "mem_mb"),
        runtime=resource(lexical_resources, "runtime"),
    params:
        prompt_language=lambda wc: language_spec(wc)["prompt_language"],
        dtype=lambda wc: model_spec(wc)["dtype"],
        attn_implementation=lambda wc: model_spec(wc).get("attn_implementation"),
        settings=lexical_settings,
        # norms_prompt's demonstrations: the evaluation instruction the templates stage built the test prompts from
        prompts=prompt_overrides,
        eval_bounds=config["templates"]["eval_bounds"],
        seed=config["seed"],
    script:
        "../scripts/lexical.py"
