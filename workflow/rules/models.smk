rule prepare_model:
    output:
        directory("results/models/{model}"),
    params:
        spec=model_spec,
    log:
        log_path("prepare_model", "model"),
    benchmark:
        benchmark_path("prepare_model", "model")
    threads: 2
    resources:
        mem_mb=8000,
    conda:
        "../../envs/lexalign.yaml"
    script:
        "../scripts/prepare_model.py"
