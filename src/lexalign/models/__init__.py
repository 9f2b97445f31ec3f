"""Models, shared by every stage that runs one. Rule ``prepare_model`` (``prepare``): reads
``models.<name>`` (a local Hugging Face folder or a packaged GGUF model) and writes
``results/models/{model}/`` (a checked reference or dequantised safetensors, with a manifest). Also model
and tokenizer loading (``loading``), batched generation backends (``generation``) and the memory estimate
(``memory``)."""
