# The report: every per-(model, lang, method) result of the run grid as tables (CSV, Markdown, LaTeX)
# and figures (PNG, PDF) under results/report/, summarised in results/report/index.md. Each output
# directory (one per lexalign.report.layout.FOLDERS entry, the folders the package writes) is marked for
# `snakemake --report`, with a caption per table or figure kind. A result the
# grid names but that is missing or unreadable is left out with a note in index.md; the study's own
# numbers appear only in columns labelled "reported by the study" (config report.reference_models).
# The rule reruns when a result or the report section of the config changes, not on other config keys.
from lexalign.report.layout import FOLDERS as REPORT_FOLDERS


rule report:
    input:
        lexical=lexical_results(),
        wvs=wvs_results(),
        train=train_results(),
        population=population_results(),
    output:
        **{
            name: report(
                directory(f"results/report/{folder.path}"),
                patterns=[folder.pattern],
                caption=f"../report/{folder.caption}",
                category=folder.category,
                subcategory=folder.subcategory,
                labels=dict(folder.labels),
            )
            for name, folder in REPORT_FOLDERS.items()
        },
        index="results/report/index.md",
    log:
        log_path("report"),
    benchmark:
        benchmark_path("report")
    threads: 1
    resources:
        mem_mb=4000,
    params:
        grid=canonical(RUN),
        settings=canonical(config["report"]),
        seed=config["seed"],
    script:
        "../scripts/report.py"
