from lexalign.core.snake import run_step
from lexalign.population.compare import compare

run_step(
    snakemake,
    lambda: compare(
        snakemake.input.human,
        human_norms_path=snakemake.input.norms,
        human_norms=snakemake.params.norms,
        model_associations=list(snakemake.input.model),
        participant_files=list(snakemake.input.participants),
        population_summary_path=snakemake.input.summary,
        outputs=dict(snakemake.output.items()),
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
        labels={
            "model": snakemake.wildcards.model,
            "lang": snakemake.wildcards.lang,
            "method": snakemake.wildcards.method,
        },
    ),
)
