from lexalign.core.snake import run_step
from lexalign.norms.ingest import ingest

run_step(
    snakemake,
    lambda: ingest(
        snakemake.input.norms,
        norms=snakemake.params.norms,
        split=snakemake.params.split,
        seed=snakemake.params.seed,
        associations_out=snakemake.output.associations,
        stats_out=snakemake.output.stats,
    ),
)
