from lexalign.core.snake import run_step
from lexalign.report import report

run_step(
    snakemake,
    lambda: report(
        snakemake.output.index,
        lexical=snakemake.input.lexical,
        wvs=snakemake.input.wvs,
        train=snakemake.input.train,
        population=snakemake.input.population,
        grid=snakemake.params.grid,
        settings=snakemake.params.settings,
        seed=snakemake.params.seed,
    ),
)
