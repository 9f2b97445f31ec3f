from lexalign.snake import run_step
from lexalign.wvs import evaluate
from lexalign.wvs_settings import WvsJob, WvsSettings

run_step(
    snakemake,
    lambda: evaluate(
        WvsJob(
            model_dir=snakemake.input.model,
            humans_path=snakemake.input.humans,
            metrics_out=snakemake.output.metrics,
            answers_out=snakemake.output.answers,
            lang=snakemake.wildcards.lang,
            method=snakemake.wildcards.method,
            prompt_language=snakemake.params.prompt_language,
            country=snakemake.params.country,
            model_name=snakemake.wildcards.model,
            framing=snakemake.wildcards.framing,
            mode=snakemake.wildcards.mode,
            adapter_dir=snakemake.input.adapter or None,
            associations_path=snakemake.input.associations or None,
            dtype=snakemake.params.dtype,
            threads=snakemake.threads,
        ),
        WvsSettings.from_config(snakemake.params.settings),
        prompts=snakemake.params.prompts,
    ),
)
