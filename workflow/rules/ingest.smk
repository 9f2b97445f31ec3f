rule ingest:
    input:
        norms=lambda wc: language_spec(wc)["norms"]["path"],
    output:
        associations="results/ingest/{lang}/associations.parquet",
        stats="results/ingest/{lang}/stats.json",
    params:
        norms=lambda wc: language_spec(wc)["norms"],
        split=config["split"],
        seed=config["seed"],
    log:
        log_path("ingest", "lang"),
    benchmark:
        benchmark_path("ingest", "lang")
    threads: 2
    resources:
        mem_mb=8000,
    conda:
        "../../envs/lexalign.yaml"
    script:
        "../scripts/ingest.py"
