rule ingest:
    input:
        norms=lambda wc: language_spec(wc)["norms"]["path"],
    output:
        associations="results/ingest/{lang}/associations.parquet",
        stats="results/ingest/{lang}/stats.json",
    log:
        log_path("ingest", "lang"),
    benchmark:
        benchmark_path("ingest", "lang")
    conda:
        "../../envs/lexalign.yaml"
    threads: 2
    resources:
        mem_mb=8000,
    params:
        norms=lambda wc: language_spec(wc)["norms"],
        split=config["split"],
        seed=config["seed"],
    script:
        "../scripts/ingest.py"
