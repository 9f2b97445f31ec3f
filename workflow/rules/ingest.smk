rule ingest:
    input:
        norms=norms_input,
    output:
        associations="results/ingest/{lang}/associations.parquet",
        stats="results/ingest/{lang}/stats.json",
    log:
        log_path("ingest", "lang"),
    benchmark:
        benchmark_path("ingest", "lang")
    # the chain to training is the longest of the DAG: its jobs go first when several are ready
    priority: 10
    threads: 2
    resources:
        mem_mb=8000,
    params:
        norms=lambda wc: canonical(language_spec(wc)["norms"]),
        norms_file=norms_signature,
        split=canonical(config["split"]),
        seed=config["seed"],
    script:
        "../scripts/ingest.py"
