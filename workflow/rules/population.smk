# The model as a population of SWOW participants: N simulated participants give three responses per cue
# at each temperature of population.temperatures (one SWOW raw participant file each, in the language's
# own layout, listed in the HTML report for download), ingested by the human norms' own code, then
# compared with the human norms (per cue, by response position, on the cue-response graph).


rule population:
    input:
        model="results/models/{model}",
        adapter=adapter_input,
        associations="results/ingest/{lang}/associations.parquet",
        norms=norms_input,
    output:
        participants=population_job_files("participants.csv", for_report=True),
        generations="results/population/{model}/{lang}/{method}/generations.parquet",
        summary="results/population/{model}/{lang}/{method}/population.json",
    log:
        log_path("population", "model", "lang", "method"),
    benchmark:
        benchmark_path("population", "model", "lang", "method")
    wildcard_constraints:
        method=methods.wildcard_pattern(POPULATION_METHODS or ["none"]),
    threads: resource(population_resources, "cpus")
    resources:
        gpu=resource(population_resources, "gpus"),
        cpus_per_task=resource(population_resources, "cpus"),
        mem_mb=resource(population_resources, "mem_mb"),
        runtime=resource(population_resources, "runtime"),
    params:
        norms=lambda wc: canonical(language_spec(wc)["norms"]),
        prompt_language=lambda wc: language_spec(wc)["prompt_language"],
        prompts=prompt_overrides,
        dtype=lambda wc: model_spec(wc)["dtype"],
        attn_implementation=lambda wc: model_spec(wc).get("attn_implementation"),
        settings=population_settings,
        seed=config["seed"],
    script:
        "../scripts/population.py"


rule population_ingest:
    input:
        participants=population_job_files("participants.csv"),
        summary="results/population/{model}/{lang}/{method}/population.json",
        associations="results/ingest/{lang}/associations.parquet",
    output:
        associations=population_job_files("associations.parquet"),
        stats=population_job_files("stats.json"),
    log:
        log_path("population_ingest", "model", "lang", "method"),
    benchmark:
        benchmark_path("population_ingest", "model", "lang", "method")
    threads: 1
    resources:
        mem_mb=4000,
    script:
        "../scripts/population_ingest.py"


rule population_compare:
    input:
        human="results/ingest/{lang}/associations.parquet",
        norms=norms_input,
        model=population_job_files("associations.parquet"),
        participants=population_job_files("participants.csv"),
        summary="results/population/{model}/{lang}/{method}/population.json",
    output:
        compare="results/population/{model}/{lang}/{method}/compare.json",
        per_cue="results/population/{model}/{lang}/{method}/per_cue.parquet",
    log:
        log_path("population_compare", "model", "lang", "method"),
    benchmark:
        benchmark_path("population_compare", "model", "lang", "method")
    threads: 1
    resources:
        mem_mb=4000,
    params:
        norms=lambda wc: canonical(language_spec(wc)["norms"]),
        norms_file=norms_signature,
        settings=population_compare_settings,
        seed=config["seed"],
    script:
        "../scripts/population_compare.py"
