from lexalign.psycholinguistic import norm_files


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
    conda:
        "../../envs/lexalign.yaml"
    threads: config["lexical"]["resources"]["threads"]
    resources:
        gpu=config["lexical"]["resources"]["gpus"],
        mem_mb=config["lexical"]["resources"]["mem_mb"],
        runtime=config["lexical"]["resources"]["runtime"],
    params:
        prompt_language=lambda wc: language_spec(wc)["prompt_language"],
        dtype=lambda wc: model_spec(wc)["dtype"],
        settings={k: v for k, v in config["lexical"].items() if k != "resources"},
        seed=config["seed"],
    script:
        "../scripts/lexical.py"
