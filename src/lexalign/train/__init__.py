"""Rule ``train``: reads the prepared model and a template table and writes a LoRA adapter per
``{model}/{lang}/{method}`` (``results/train/…/adapter/``, ``metrics.json``, ``log_history.jsonl``), resuming
from ``results/checkpoints/``. ``run`` (the job, the accelerate launch), ``trainers`` (TRL SFT, GRPO, DPO),
``sft_loss`` (the completion-only loss), ``rewards`` (the ranking reward)."""
