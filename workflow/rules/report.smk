# The report: every per-(model, lang, method) result of the run grid as tables (CSV, Markdown, LaTeX)
# and figures (PNG, PDF) under results/report/, summarised in results/report/index.md. Each output
# directory is marked for `snakemake --report`, with a caption per table or figure kind. A result the
# grid names but that is missing or unreadable is left out with a note in index.md; the study's own
# numbers appear only in columns labelled "reported by the study" (config report.reference_models).
# The rule reruns when a result or the report section of the config changes, not on other config keys.


rule report:
    input:
        lexical=lexical_results(),
        wvs=wvs_results(),
        train=train_results(),
        population=population_results(),
    output:
        index="results/report/index.md",
        tier1=report(
            directory("results/report/tables/tier1"),
            patterns=["{table}.csv"],
            caption="../report/tables_tier1.rst",
            category="Tier 1: lexical alignment",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        tier2=report(
            directory("results/report/tables/tier2"),
            patterns=["{table}.csv"],
            caption="../report/tables_tier2.rst",
            category="Tier 2: World Values Survey",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        training=report(
            directory("results/report/tables/training"),
            patterns=["{table}.csv"],
            caption="../report/tables_training.rst",
            category="Training",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        fig_precision=report(
            directory("results/report/figures/precision_at_k"),
            patterns=["{lang}.png"],
            caption="../report/fig_precision_at_k.rst",
            category="Tier 1: lexical alignment",
            subcategory="P@k curves",
            labels={"figure": "P@k curves", "language": "{lang}"},
        ),
        fig_profile=report(
            directory("results/report/figures/profile"),
            patterns=["{lang}.png"],
            caption="../report/fig_profile.rst",
            category="Tier 1: lexical alignment",
            subcategory="Psycholinguistic profile",
            labels={"figure": "profile", "language": "{lang}"},
        ),
        fig_tension=report(
            directory("results/report/figures/tension"),
            patterns=["{model}.{lang}.png"],
            caption="../report/fig_tension.rst",
            category="Tier 2: World Values Survey",
            subcategory="Tension scatter",
            labels={
                "figure": "tension scatter",
                "model": "{model}",
                "language": "{lang}",
            },
        ),
        fig_training=report(
            directory("results/report/figures/training"),
            patterns=["{model}.{lang}.png"],
            caption="../report/fig_training.rst",
            category="Training",
            subcategory="Training curves",
            labels={
                "figure": "training curves",
                "model": "{model}",
                "language": "{lang}",
            },
        ),
        population=report(
            directory("results/report/tables/population"),
            patterns=["{table}.csv"],
            caption="../report/tables_population.rst",
            category="Model as participants",
            subcategory="Tables",
            labels={"table": "{table}"},
        ),
        fig_population=report(
            directory("results/report/figures/population"),
            patterns=["{model}.{lang}.png"],
            caption="../report/fig_population.rst",
            category="Model as participants",
            subcategory="Temperature sweep",
            labels={
                "figure": "temperature sweep",
                "model": "{model}",
                "language": "{lang}",
            },
        ),
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
