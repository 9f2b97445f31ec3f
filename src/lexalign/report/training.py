"""The training table, from each trainer's metrics.json."""

from __future__ import annotations

import polars as pl

from lexalign.report import format as f
from lexalign.report.readers import Results
from lexalign.report.tables import ordered


def training_table(results: Results) -> f.Table:
    """From each trainer's metrics.json: steps, loss and reward first → last, eval loss, runtime, device."""
    rows = [
        {
            "model": k[0],
            "language": k[1],
            "method": k[2],
            "steps": t.steps,
            "epochs": t.epochs,
            "train_loss_first": t.loss_first,
            "train_loss_last": t.loss_last,
            "eval_loss": t.eval_loss,
            "reward_first": t.reward_first,
            "reward_last": t.reward_last,
            "runtime_s": t.runtime_s,
            "device": t.device,
        }
        for k in ordered(results, results.train)
        for t in [results.train[k]]
    ]
    schema = {
        **f.KEY_SCHEMA,
        "steps": pl.Int64,
        "epochs": pl.Float64,
        "train_loss_first": pl.Float64,
        "train_loss_last": pl.Float64,
        "eval_loss": pl.Float64,
        "reward_first": pl.Float64,
        "reward_last": pl.Float64,
        "runtime_s": pl.Float64,
        "device": pl.String,
    }
    long = pl.DataFrame(rows, schema=schema)
    display = f.frame(
        [
            {
                "model": r["model"],
                "language": r["language"],
                "method": f.label(r["method"]),
                "steps": f.fmt_int(r["steps"]),
                "train loss first → last": f.arrow(r["train_loss_first"], r["train_loss_last"]),
                "eval loss": f.fmt(r["eval_loss"]),
                "reward first → last": f.arrow(r["reward_first"], r["reward_last"]),
                "runtime (s)": f.fmt(r["runtime_s"], 0),
                "device": r["device"] or f.MISSING,
            }
            for r in long.iter_rows(named=True)
        ]
    )
    return f.Table(
        "training",
        "Training runs",
        "From each trainer's metrics.json: steps, loss (first → last logged), eval loss, reward (RL), runtime.",
        long,
        display,
    )
