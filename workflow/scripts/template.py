from lexalign.core.snake import run_step
from lexalign.norms.templates import build_templates

run_step(
    snakemake,
    lambda: build_templates(
        snakemake.input.associations,
        prompt_language=snakemake.params.prompt_language,
        settings=snakemake.params.templates,
        seed=snakemake.params.seed,
        outputs=dict(snakemake.output.items()),
    ),
)
