# A local model is checked and referenced, a packaged one dequantised, once per model. The weight
# files are inputs and their sizes and mtimes a param: editing or replacing the weights reruns this
# rule and everything after it.


rule prepare_model:
    input:
        weights=model_weight_inputs,
    output:
        directory("results/models/{model}"),
    log:
        log_path("prepare_model", "model"),
    benchmark:
        benchmark_path("prepare_model", "model")
    threads: model_resource("cpus")
    resources:
        gpu=model_resource("gpus"),
        cpus_per_task=model_resource("cpus"),
        mem_mb=model_resource("mem_mb"),
        runtime=model_resource("runtime"),
    params:
        spec=model_prepare_spec,
        signature=model_signature,
    script:
        "../scripts/prepare_model.py"
