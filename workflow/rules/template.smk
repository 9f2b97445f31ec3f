rule template:
    input:
        associations="results/ingest/{lang}/associations.parquet",
    output:
        sft="results/templates/{lang}/sft.parquet",
        ranking="results/templates/{lang}/ranking.parquet",
        dpo="results/templates/{lang}/dpo.parquet",
        eval="results/templates/{lang}/eval.parquet",
        stats="results/templates/{lang}/stats.json",
    log:
        log_path("template", "lang"),
    benchmark:
        benchmark_path("template", "lang")
    # the chain to training is the longest of the DAG: its jobs go first when several are ready
    priority: 10
    resources:
        mem_mb=4000,
    params:
        prompt_language=lambda wc: language_spec(wc)["prompt_language"],
        templates=template_settings,
        seed=config["seed"],
    script:
        "../scripts/template.py"
