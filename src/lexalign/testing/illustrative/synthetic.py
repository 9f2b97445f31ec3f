"""Synthetic SWOW-EN-shaped raw files of any size, for the benchmarks and the GPU check (seeded).

The exact SWOW-EN 2018 raw layout (``layout.EN_COLUMNS``, R ``write.csv`` style) with the real file's
proportions: Zipf-distributed pseudo-words (cues from the frequent part, each cue with its own associate
list and its own agreement), participants in runs of 14-20 rows with the real file's mix of native
languages and countries (about half pass the study's US filter), and its noise: mixed case, padded
spaces, trailing punctuation, multiword answers, accented and full-width letters, 32-hex masks,
self-responses, bare ``NA``, ``No more responses``, ``Unknown word``.
"""

from __future__ import annotations

from pathlib import Path

from lexalign.testing.illustrative.layout import EN_COLUMNS, NO_MORE, UNKNOWN, write_r_csv

#: How the benchmarks read a synthetic file: the study's US filter and the default run's split.
US_FILTER = {"country": ["United States"], "nativeLanguage": ["United States"]}
SPLIT = {"train": 0.7, "val": 0.2, "test": 0.1}
# The range of the per-cue Zipf exponents: how much participants agree on a cue.
LOCAL_EXPONENT = (0.55, 1.25)

# (nativeLanguage, country) -> share of rows; US-native US residents are 604,342 / 1,228,200 rows
# in the real file and US residents 671,521.
PARTICIPANT_GROUPS = [
    ("United States", "United States", 0.492),
    ("Spanish", "United States", 0.015),
    ("Chinese", "United States", 0.010),
    ("United Kingdom", "United States", 0.008),
    ("Canada", "United States", 0.008),
    ("German", "United States", 0.007),
    ("Tagalog", "United States", 0.007),
    ("United States", "Canada", 0.006),
    ("United States", "United Kingdom", 0.004),
    ("United Kingdom", "United Kingdom", 0.120),
    ("Australia", "Australia", 0.070),
    ("Canada", "Canada", 0.080),
    ("New Zealand", "New Zealand", 0.015),
    ("Ireland", "Ireland", 0.010),
    ("Dutch", "Netherlands", 0.050),
    ("German", "Germany", 0.030),
    ("Spanish", "Spain", 0.020),
    ("French", "France", 0.012),
    ("Hindi", "India", 0.010),
    ("Other", "Belgium", 0.026),
]


def _vocabulary(rng, n_types: int) -> list[str]:
    """``n_types`` distinct lower-case pseudo-words, most frequent first (shorter words rank higher)."""
    onsets = [
        "",
        "b",
        "c",
        "d",
        "f",
        "g",
        "h",
        "j",
        "k",
        "l",
        "m",
        "n",
        "p",
        "r",
        "s",
        "t",
        "v",
        "w",
        "z",
        "br",
        "ch",
        "cl",
        "cr",
        "dr",
        "fl",
        "gr",
        "pl",
        "pr",
        "sh",
        "sl",
        "st",
        "th",
        "tr",
        "qu",
    ]
    vowels = ["a", "e", "i", "o", "u", "ai", "ea", "oo", "ou", "y"]
    codas = ["", "", "n", "r", "s", "t", "l", "ng", "ck", "m", "x", "rd"]
    syllables = [o + v + c for o in onsets for v in vowels for c in codas]
    seen: dict[str, None] = {}
    n_syllables = rng.choice([1, 2, 2, 3, 3, 4], size=n_types * 3)
    picks = rng.integers(0, len(syllables), size=(n_types * 3, 4))
    special = rng.random(n_types * 3)
    for count, pick, kind in zip(n_syllables, picks, special):
        word = "".join(syllables[i] for i in pick[:count])
        if kind < 0.06:  # multiword expressions ("mad men")
            word = word + " " + syllables[pick[3]] + syllables[pick[0]]
        elif kind < 0.07:
            word = word.replace("e", "é", 1)  # accented letters (NFKC-stable)
        elif kind < 0.075:
            word = word[:2] + "-" + word[2:]
        elif kind < 0.078:
            word = word[:-1] + "'" + word[-1:]
        seen.setdefault(word, None)
        if len(seen) == n_types:
            break
    words = list(seen)
    noise = rng.normal(0, 2.5, size=len(words))
    order = sorted(range(len(words)), key=lambda i: len(words[i]) + noise[i])  # frequent words are shorter
    return [words[i] for i in order]


def _zipf_cdf(n: int, exponent: float):
    import numpy as np

    weights = 1.0 / np.arange(1, n + 1) ** exponent
    cdf = np.cumsum(weights)
    return cdf / cdf[-1]


def write_synthetic_swow_en(path: Path, n_cues: int, per_cue: int, n_types: int, seed: int = 0) -> dict:
    """Write a SWOW-EN.R100-shaped raw participant file of ``n_cues`` x ``per_cue`` rows over ``n_types``
    pseudo-words; returns a description of what it holds."""
    import numpy as np
    import polars as pl

    rng = np.random.default_rng(seed)
    vocab = _vocabulary(rng, n_types)
    n_types = len(vocab)
    words = pl.Series("w", vocab, dtype=pl.String)

    # Cues are ordinary words from the frequent part of the vocabulary.
    cue_ids = rng.choice(min(n_types, max(n_cues * 3, 30_000)), size=n_cues, replace=False)
    # Each cue has its own associate list (slots), drawn from the global Zipf law; participants pick
    # slots by a steeper per-cue Zipf law, so every cue has a few strong and many idiosyncratic answers.
    slots_per_cue = 400
    global_cdf = _zipf_cdf(n_types, 0.95)
    slots = np.searchsorted(global_cdf, rng.random((n_cues, slots_per_cue)))
    # Cues differ in how much participants agree ("dog" -> a few strong answers, "abstract" -> many
    # idiosyncratic ones): each cue gets one of several per-cue Zipf exponents.
    exponents = np.linspace(LOCAL_EXPONENT[0], LOCAL_EXPONENT[1], 12)
    local_cdfs = [_zipf_cdf(slots_per_cue, e) for e in exponents]
    cue_bucket = rng.integers(0, len(exponents), size=n_cues)

    n_rows = n_cues * per_cue
    row_cue = np.repeat(np.arange(n_cues), per_cue)
    rng.shuffle(row_cue)

    # Participants: consecutive runs of 14-20 rows share participant attributes.
    sizes = rng.integers(14, 21, size=n_rows // 14 + 1)
    participant = np.repeat(np.arange(len(sizes)), sizes)[:n_rows]
    n_participants = int(participant[-1]) + 1
    shares = np.array([g[2] for g in PARTICIPANT_GROUPS])
    group = rng.choice(len(PARTICIPANT_GROUPS), size=n_participants, p=shares / shares.sum())
    natives = np.array([g[0] for g in PARTICIPANT_GROUPS], dtype=object)
    countries = np.array([g[1] for g in PARTICIPANT_GROUPS], dtype=object)
    age = rng.integers(16, 80, size=n_participants)
    gender = np.array(["Fe", "Ma", "X"], dtype=object)[rng.choice(3, size=n_participants, p=[0.62, 0.37, 0.01])]
    education = rng.integers(1, 6, size=n_participants).astype(float)
    education[rng.random(n_participants) < 0.15] = np.nan
    start = 1_312_000_000 + np.cumsum(rng.integers(60, 4000, size=n_participants))
    first_row = np.repeat(np.cumsum(sizes) - sizes, sizes)[:n_rows]
    created = start[participant] + (np.arange(n_rows) - first_row) * rng.integers(8, 30, size=n_rows)

    table = pl.DataFrame(
        {
            "": pl.int_range(1, n_rows + 1, eager=True).cast(pl.String),
            "id": np.arange(n_rows) * 3 + rng.integers(0, 3, size=n_rows) + 30,
            "participantID": participant + 1,
            "age": age[participant],
            "gender": gender[participant],
            "nativeLanguage": natives[group][participant],
            "country": countries[group][participant],
            "education": pl.Series(education[participant]).fill_nan(None).cast(pl.Int64),
            "created_at": pl.from_epoch(pl.Series(created), time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S"),
            "cue": words.gather(cue_ids[row_cue]),
        }
    )

    responses = {}
    r2_missing = rng.random(n_rows) < 0.045
    r3_missing = r2_missing | (rng.random(n_rows) < 0.05)
    r3_missing[rng.random(n_rows) < 0.001] = False  # "if R2 is missing, R3 should be too" - a few rows break it
    missing = {"R1": rng.random(n_rows) < 0.004, "R2": r2_missing, "R3": r3_missing}
    for r in ("R1", "R2", "R3"):
        draws = rng.random(n_rows)
        rank = np.empty(n_rows, dtype=np.int64)
        row_bucket = cue_bucket[row_cue]
        for bucket, cdf in enumerate(local_cdfs):
            rows = row_bucket == bucket
            rank[rows] = np.searchsorted(cdf, draws[rows])
        ids = slots[row_cue, rank]
        self_answer = rng.random(n_rows) < 0.003  # the cue itself, to be dropped
        ids = np.where(self_answer, cue_ids[row_cue], ids)
        u = pl.Series(rng.random(n_rows))
        base = words.gather(ids)
        frame = pl.DataFrame({"w": base, "u": u})
        w, uu = pl.col("w"), pl.col("u")
        surface = (
            pl.when(uu < 0.10)
            .then(w.str.to_titlecase())
            .when(uu < 0.115)
            .then(w.str.to_uppercase())
            .when(uu < 0.135)
            .then(pl.lit(" ") + w)
            .when(uu < 0.150)
            .then(w + pl.lit(" "))
            .when(uu < 0.156)
            .then(w + pl.lit("."))
            .when(uu < 0.158)
            .then(w.str.replace(" ", "  "))
            .when(uu < 0.1595)
            .then(pl.lit(NO_MORE))
            .when(uu < 0.1600)
            .then(pl.lit(UNKNOWN))
            .otherwise(w)
        )
        column = frame.select(surface.alias(r)).to_series()
        # A few 32-hex masked responses and full-width (NFKC-folded) spellings.
        hex_rows = np.flatnonzero(rng.random(n_rows) < 0.0002)
        if len(hex_rows):
            column = column.scatter(hex_rows, [rng.bytes(16).hex() for _ in hex_rows])
        wide_rows = np.flatnonzero(rng.random(n_rows) < 0.0005)
        if len(wide_rows):
            fullwidth = {c: chr(ord(c) + 0xFEE0) for c in "abcdefghijklmnopqrstuvwxyz"}
            values = [s.translate(str.maketrans(fullwidth)) for s in column.gather(wide_rows).to_list()]
            column = column.scatter(wide_rows, values)
        responses[r] = column.set(pl.Series(missing[r]), None)
    write_r_csv(path, table.with_columns(**responses).select(EN_COLUMNS))
    return {
        "rows": n_rows,
        "cues": n_cues,
        "vocabulary": n_types,
        "participants": n_participants,
        "bytes": path.stat().st_size,
    }
