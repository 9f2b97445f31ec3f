from lexalign.core.snake import run_step
from lexalign.population.simulate import ingest_summary_files

run_step(
    snakemake,
    lambda: ingest_summary_files(
        snakemake.input.summary,
        list(snakemake.input.participants),
        human_associations_path=snakemake.input.associations,
        associations_out=list(snakemake.output.associations),
        stats_out=list(snakemake.output.stats),
    ),
)
