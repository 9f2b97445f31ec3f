from lexalign.snake import run_step
from lexalign.wvs import evaluate

run_step(
    snakemake,
    lambda: evaluate(
        snakemake.input.model,
        snakemake.input.humans,
        metrics_out=snakemake.output.metrics,
        answers_out=snakemake.output.answers,
        lang=snakemake.wildcards.lang,
        method=snakemake.wildcards.method,
        prompt_language=snakemake.params.prompt_language,
        country=snakemake.params.country,
        settings=snakemake.params.settings,
        adapter_dir=snakemake.input.adapter or None,
        associations_path=snakemake.input.associations or None,
        prompts=snakemake.params.prompts,
        dtype=snakemake.params.dtype,
        threads=snakemake.threads,
        model_name=snakemake.wildcards.model,
    ),
)
