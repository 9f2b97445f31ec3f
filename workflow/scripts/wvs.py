from lexalign.core.snake import run_step
from lexalign.wvs.evaluate import evaluate_modes
from lexalign.wvs.settings import WvsJob, WvsSettings


def jobs() -> list[WvsJob]:
    """One job per configured mode (built inside run_step: a bad value is its one error line)."""
    return [
        WvsJob(
            model_dir=snakemake.input.model,
            humans_path=snakemake.input.humans,
            metrics_out=metrics,
            answers_out=answers,
            lang=snakemake.wildcards.lang,
            method=snakemake.wildcards.method,
            prompt_language=snakemake.params.prompt_language,
            country=snakemake.params.country,
            model_name=snakemake.wildcards.model,
            framing=snakemake.wildcards.framing,
            mode=mode,
            adapter_dir=snakemake.input.adapter or None,
            associations_path=snakemake.input.associations or None,
            dtype=snakemake.params.dtype,
            threads=snakemake.threads,
        )
        for mode, metrics, answers in zip(snakemake.params.modes, snakemake.output.metrics, snakemake.output.answers)
    ]


run_step(
    snakemake,
    lambda: evaluate_modes(
        jobs(), WvsSettings.from_config(snakemake.params.settings), prompts=snakemake.params.prompts
    ),
)
