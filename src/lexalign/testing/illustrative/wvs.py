"""The illustrative (INVENTED) WVS inputs of ``data/illustrative/wvs/``: the default run's and the tests'.

- ``WVS_Cross-National_Wave_7_illustrative.csv``: shaped like the official WVS-7 respondent CSV
  (B_COUNTRY_ALPHA, W_WEIGHT, Q columns with numeric codes and negative missing codes) for every
  catalog item, 250 invented respondents each for USA and CHN plus 40 for DEU (filtered out).
  Q225 and Q227 are "not asked" (-4) in CHN so that the "absent for a country" note shows.
- ``global_opinions_illustrative.csv``: GlobalOpinionQA-shaped rows (question, selections,
  options, source, item_id) with invented shares, including GAS rows and WVS rows without China
  (both left out by the reader) and non-substantive options ("Don't know", "No answer").

None of these numbers come from the World Values Survey or GlobalOpinionQA. Seeded and reproducible:
``python data/illustrative/wvs/make_illustrative.py`` rewrites them.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from lexalign.wvs.sources.catalog import load_catalog

SEED = 20240607
RESPONDENTS = {"USA": 250, "CHN": 250, "DEU": 40}
NUMERIC = {"USA": 840, "CHN": 156, "DEU": 276}
NOT_ASKED = {"CHN": ("Q225", "Q227")}
WVS_FILE = "WVS_Cross-National_Wave_7_illustrative.csv"
GLOBAL_OPINIONS_FILE = "global_opinions_illustrative.csv"
MISSING_RATE = 0.04  # share of answers replaced by -1 (don't know) or -2 (no answer)


def profile(rng: np.random.Generator, n: int, centre: float, spread: float) -> np.ndarray:
    """An invented answer distribution over n options peaked near ``centre``."""
    k = np.arange(n)
    weights = np.exp(-((k - centre) ** 2) / (2 * spread**2)) + rng.dirichlet(np.ones(n)) * 0.3
    return weights / weights.sum()


def profiles(items: list[dict], rng: np.random.Generator) -> dict[str, dict[str, np.ndarray]]:
    out: dict[str, dict[str, np.ndarray]] = {}
    for item in items:
        n = item["n_options"]
        base = rng.uniform(0, n - 1)
        shift = rng.normal(0, 0.3 * (n - 1))  # some items differ a lot between the countries
        out[item["item_id"]] = {
            "USA": profile(rng, n, base, rng.uniform(0.5, 0.25 * n + 0.5)),
            "CHN": profile(rng, n, float(np.clip(base + shift, 0, n - 1)), rng.uniform(0.5, 0.25 * n + 0.5)),
            "DEU": profile(rng, n, rng.uniform(0, n - 1), 1.0),
        }
    return out


def write_wvs_csv(items: list[dict], dists: dict, rng: np.random.Generator, path: Path) -> None:
    header = ["version", "A_WAVE", "A_YEAR", "B_COUNTRY", "B_COUNTRY_ALPHA", "D_INTERVIEW", "W_WEIGHT"]
    header += [item["item_id"] for item in items]
    rows = []
    interview = 0
    for country, n in RESPONDENTS.items():
        weights = rng.uniform(0.4, 2.0, n)
        weights = weights / weights.mean()
        for r in range(n):
            interview += 1
            row = ["illustrative-1", 7, 2018, NUMERIC[country], country, 9_000_000 + interview, f"{weights[r]:.4f}"]
            for item in items:
                if item["item_id"] in NOT_ASKED.get(country, ()):
                    row.append(-4)
                    continue
                if rng.random() < MISSING_RATE:
                    row.append(int(rng.choice([-1, -2])))
                    continue
                position = rng.choice(item["n_options"], p=dists[item["item_id"]][country])
                row.append(item["codes"][position])
            rows.append(row)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(rows)


def _shares(p: np.ndarray) -> list[float]:
    return [round(float(x), 4) for x in p]


def write_global_opinions(items: list[dict], dists: dict, rng: np.random.Generator, path: Path) -> None:
    by_id = {item["item_id"]: item for item in items}
    chosen = [
        "Q1",
        "Q6",
        "Q8",
        "Q17",
        "Q22",
        "Q29",
        "Q33",
        "Q42",
        "Q46",
        "Q57",
        "Q65",
        "Q71",
        "Q111",
        "Q121",
        "Q130",
        "Q149",
        "Q150",
        "Q152",
        "Q165",
        "Q173",
        "Q182",
        "Q195",
        "Q199",
        "Q238",
    ]
    rows = []
    for k, item_id in enumerate(chosen):
        item = by_id[item_id]
        labels = [label or str(i + 1) for i, label in enumerate(item["options_en"])]
        us, cn = dists[item_id]["USA"], dists[item_id]["CHN"]
        with_dk = k % 3 == 0  # some rows carry non-substantive options, as GlobalOpinionQA does
        if with_dk:
            labels = labels + ["Don't know", "No answer"]
            us = np.concatenate([us * 0.95, [0.04, 0.01]])
            cn = np.concatenate([cn * 0.93, [0.05, 0.02]])
        body = f"{{'United States': {_shares(us)!r}, 'China': {_shares(cn)!r}}}"
        selections = body if k % 5 == 4 else f"defaultdict(<class 'list'>, {body})"
        # A few rows keep no item_id: they are used with their English text only.
        rows.append(
            {
                "question": item["question_en"],
                "selections": selections,
                "options": repr(labels),
                "source": "WVS",
                "item_id": "" if k % 8 == 7 else item_id,
            }
        )
    # Rows the reader leaves out: another survey, and WVS rows without China.
    rows.append(
        {
            "question": "Do you think the national economy is doing well?",
            "options": repr(["Good", "Bad"]),
            "source": "GAS",
            "item_id": "",
            "selections": "defaultdict(<class 'list'>, {'United States': [0.55, 0.45], 'China': [0.8, 0.2]})",
        }
    )
    rows.append(
        {
            "question": "Is a free press very important?",
            "options": repr(["Very important", "Somewhat important", "Not important"]),
            "source": "GAS",
            "item_id": "",
            "selections": "defaultdict(<class 'list'>, {'Germany': [0.7, 0.2, 0.1]})",
        }
    )
    for item_id in ("Q64", "Q86"):
        item = by_id[item_id]
        us = _shares(dists[item_id]["USA"])
        rows.append(
            {
                "question": item["question_en"],
                "options": repr(item["options_en"]),
                "source": "WVS",
                "item_id": item_id,
                "selections": (
                    f"defaultdict(<class 'list'>, {{'United States': {us!r}, "
                    f"'Germany': {_shares(dists[item_id]['DEU'])!r}}})"
                ),
            }
        )
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(
            handle, fieldnames=["question", "selections", "options", "source", "item_id"], lineterminator="\n"
        )
        writer.writeheader()
        writer.writerows(rows)


def write_wvs_files(out_dir: Path) -> None:
    """Write both files into ``out_dir``."""
    items = load_catalog()
    rng = np.random.default_rng(SEED)
    dists = profiles(items, rng)
    write_wvs_csv(items, dists, rng, out_dir / WVS_FILE)
    write_global_opinions(items, dists, rng, out_dir / GLOBAL_OPINIONS_FILE)
