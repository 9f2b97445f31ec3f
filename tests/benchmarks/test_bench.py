"""The benchmark harness (bench/): every benchmark runs at --tiny size. Benchmarks are not timed
tests: nothing here checks a speed, only that each benchmark runs and reports."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

BENCHMARKS = ("ingest", "sft", "generation", "wvs", "workflow", "rule_benchmarks")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    """One `python -m bench --tiny` run (all benchmarks share the tiny model and the imports)."""
    out = tmp_path_factory.mktemp("bench") / "results.json"
    done = subprocess.run(
        [sys.executable, "-m", "bench", "--tiny", "--out", str(out), "--cache-dir", str(out.parent / "cache")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert out.is_file(), done.stderr[-3000:]
    return done, json.loads(out.read_text())


@pytest.mark.parametrize("name", BENCHMARKS)
def test_each_benchmark_runs_at_tiny_size(tiny_run, name):
    done, report = tiny_run
    found = [r for r in report["results"] if r["benchmark"] == name]
    assert found, f"{name} reported nothing"
    errors = [r["note"] + "\n" + r["detail"].get("traceback", "") for r in found if r["status"] == "ERROR"]
    assert not errors, errors[0]
    for result in found:
        assert result["status"] in ("PASS", "MISS", "INFO", "SKIP"), result
        if result["target"] and result["status"] != "SKIP":
            assert result["status"] in ("PASS", "MISS"), result
        if result["baseline"] and result["value"] is not None:
            assert result["ratio"] is not None and math.isfinite(result["ratio"]) and result["ratio"] > 0, result


def test_tiny_run_prints_table_and_machine(tiny_run):
    done, report = tiny_run
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "machine:" in done.stdout and "status" in done.stdout and "target" in done.stdout
    assert report["size"] == "tiny"
    assert report["machine"]["usable_cpus"] >= 1
    assert set(report["benchmark_s"]) == set(BENCHMARKS)


def test_unknown_benchmark_is_refused():
    done = subprocess.run([sys.executable, "-m", "bench", "nope"], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "unknown benchmark" in done.stderr


def test_rule_benchmark_summary(tmp_path):
    sys.path.insert(0, str(REPO))
    from bench.rule_benchmarks import per_rule, summarise, to_markdown

    header = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"
    (tmp_path / "train" / "tiny" / "en").mkdir(parents=True)
    (tmp_path / "train" / "tiny" / "en" / "sft.tsv").write_text(
        header + "10.0\t0:00:10\t100.5\t1\t1\t1\t0\t0\t90\t9\n12.0\t0:00:12\t120.0\t1\t1\t1\t0\t0\t90\t11\n"
    )
    (tmp_path / "ingest").mkdir()
    (tmp_path / "ingest" / "en.tsv").write_text(header + "2.5\t0:00:02\t-\t-\t-\t-\t-\t-\t-\t-\n")
    rows = summarise(tmp_path)
    assert [(r["rule"], r["wildcards"]) for r in rows] == [("ingest", "en"), ("train", "tiny/en/sft")]
    assert rows[1]["s"] == 11.0 and rows[1]["max_rss"] == 120.0 and rows[1]["repeats"] == 2
    assert math.isnan(rows[0]["max_rss"])
    assert per_rule(rows)[1] == {"rule": "train", "jobs": 1, "total_s": 11.0, "max_s": 11.0, "max_rss": 120.0}
    table = to_markdown(rows, ("rule", "wildcards", "s", "max_rss"))
    assert table.splitlines()[2] == "| ingest | en | 2.5 | – |"
    assert summarise(tmp_path / "missing") == []


def test_lm_eval_style_baseline_gives_the_project_probabilities(tiny_prepared):
    """bench.wvs's baseline (one request per option, lm-evaluation-harness style, with and without its
    logits cache) scores the same quantity as lexalign.wvs.scoring.score_options: numbers with a
    prefix ("1" beside "10") and multi-token label texts included."""
    import numpy as np

    from bench.wvs import loglikelihood_requests
    from lexalign.models.loading import load_model
    from lexalign.norms.templates import prompt_templates
    from lexalign.wvs.prompts import build_prompt, item_text, option_numbers, render
    from lexalign.wvs.scoring import _softmax, digit_token_mask, score_options
    from lexalign.wvs.sources.catalog import load_catalog

    loaded = load_model(tiny_prepared, dtype="float32")  # exact comparisons: no bf16 rounding
    model, tok = loaded.model, loaded.tokenizer
    catalog = load_catalog()
    items = [next(i for i in catalog if i["n_options"] >= 10), *catalog[:3]]
    templates = prompt_templates("en")
    prompts = [render(tok, build_prompt(i, templates, "en", "United States", "interviewer")[0]) for i in items]
    mask = digit_token_mask(tok, model.get_output_embeddings().weight.shape[0])
    for answers in ([option_numbers(i["n_options"]) for i in items], [item_text(i, "en")[1] for i in items]):
        expected = score_options(model, tok, prompts, answers, batch_size=3)
        for grouped in (False, True):
            got = loglikelihood_requests(model, tok, prompts, answers, 2, mask, logits_cache=grouped)
            for lp, want in zip(got, expected):
                assert np.max(np.abs(_softmax(np.asarray(lp)) - np.asarray(want["probs"]))) < 1e-5
                # lm-evaluation-harness moves the prompt's trailing newline into every continuation:
                # the log-likelihoods differ by that token's (per item constant) log-probability
                shift = np.asarray(lp) - np.asarray(want["logprobs"])
                assert np.ptp(shift) < 1e-4
