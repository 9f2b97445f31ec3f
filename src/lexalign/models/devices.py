"""The GPUs a job asked the scheduler for against the GPUs it sees.

A job that asked for GPUs (rule resource ``gpu``) and sees fewer must stop: training on fewer GPUs would
change the global batch the preset was tuned for, and a CPU fallback would run for days before the
scheduler's time limit kills it. Counting uses ``torch.cuda.device_count()``, which reads
``CUDA_VISIBLE_DEVICES`` (what SLURM's ``--gpus`` sets) without creating a CUDA context.
"""

from __future__ import annotations

import os

from lexalign.core.errors import LexalignError


def visible_gpus() -> int:
    """The number of CUDA devices this process can use."""
    import torch

    return int(torch.cuda.device_count())  # 0 without CUDA


def require_gpus(asked: int | None, where: str) -> int:
    """The GPUs the job uses: ``asked`` when it asked for some and sees at least that many, 0 when it asked
    for none. A job that asked for ``asked`` GPUs and sees fewer raises one line naming both counts."""
    asked = int(asked or 0)
    if asked <= 0:
        return 0
    seen = visible_gpus()
    if seen < asked:
        devices = os.environ.get("CUDA_VISIBLE_DEVICES")
        shown = f"CUDA_VISIBLE_DEVICES={devices!r}" if devices is not None else "CUDA_VISIBLE_DEVICES unset"
        raise LexalignError(
            f"{where}: the job asked for {asked} GPU(s) (resources gpu={asked}) but sees {seen} ({shown}); "
            "submit it to a node with that many free GPUs, or lower the GPUs in its resources"
        )
    return asked
