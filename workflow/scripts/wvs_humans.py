from lexalign.core.snake import run_step
from lexalign.wvs.humans import build_humans

run_step(
    snakemake,
    lambda: build_humans(
        snakemake.params.source,
        humans_out=snakemake.output.humans,
        notes_out=snakemake.output.notes,
        catalog=snakemake.params.catalog,
        bad_rows=snakemake.params.bad_rows,
        countries=snakemake.params.countries,
    ),
)
