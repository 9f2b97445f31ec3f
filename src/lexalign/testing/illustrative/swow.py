"""The INVENTED SWOW files of ``data/illustrative/``: SWOW-EN raw, SWOW-ZH raw and pooled SWOW-EN strength.

These files are NOT Small World of Words (SWOW) data. They only copy the exact layouts of the real
SWOW-EN 2018 raw participant file, the SWOW-ZH file and the pooled SWOW-EN strength file, so that
the workflow's embedded default and its tests can run without the licensed downloads. Responses
are drawn from the hand-written lexicons in that folder (``lexicon_en.txt``, ``lexicon_zh.txt``) with
Zipf-like weights, plus the kinds of noise the real files contain. One seeded random stream, so the
output is byte-for-byte reproducible (``data/illustrative/make_illustrative.py`` rewrites the files).
"""

from __future__ import annotations

import argparse
import json
import random
import re
from collections import Counter
from datetime import timedelta
from pathlib import Path

from lexalign.core.io import atomic_path
from lexalign.testing.illustrative.layout import (
    EN_COLUMNS,
    EN_INTEGERS,
    NA,
    NO_MORE,
    UNKNOWN,
    US,
    ZH_COLUMNS,
    ZH_INTEGERS,
    check_roundtrip,
    rows_frame,
    write_r_csv,
)
from lexalign.testing.illustrative.lexicon import (
    Lexicon,
    assign_participants,
    hex_token,
    load_lexicon,
    random_time,
    second_order,
    weighted,
    zipf_sample,
)

SEED = 20180101

EN_RAW = "SWOW-EN.R100.illustrative.csv"
ZH_RAW = "SWOWZH.R55.illustrative.csv"
EN_STRENGTH = "strength.SWOW-EN.R123.illustrative.csv"
EN_EXPECTED = "expected_en.json"
ZH_EXPECTED = "expected_zh.json"

# Participants per cue (the real files have 100 and 55; fewer here, to keep the files small).
EN_PER_CUE = (40, 56)
ZH_PER_CUE = (28, 40)
# Candidate responses per cue: the lexicon's associates, then second-order words (associates of the
# associates, round robin) up to this many, sampled with Zipf-like weights: a realistic long tail of
# rare answers, so that each cue has about 25-35 response types, as in the real norms' head and tail.
CANDIDATES_PER_CUE = 44

# English participants: native language -> (weight, [(country of residence, weight), ...]).
EN_NATIVE = {
    US: (60, [(US, 88), ("Canada", 5), ("United Kingdom", 4), ("Germany", 3)]),
    "United Kingdom": (12, [("United Kingdom", 85), (US, 8), ("Australia", 4), ("Spain", 3)]),
    "Australia": (6, [("Australia", 90), ("United Kingdom", 6), (US, 4)]),
    "Canada": (6, [("Canada", 82), (US, 18)]),
    "New Zealand": (2, [("New Zealand", 85), ("Australia", 15)]),
    "Ireland": (2, [("Ireland", 80), ("United Kingdom", 20)]),
    "Dutch": (4, [("Netherlands", 75), ("Belgium", 20), (US, 5)]),
    "German": (3, [("Germany", 80), ("Austria", 12), (US, 8)]),
    "Spanish": (3, [("Spain", 45), ("Mexico", 25), ("Argentina", 15), (US, 15)]),
    "French": (2, [("France", 80), ("Canada", 20)]),
}

# Mandarin participants: dialect tag -> (weight, cities in China).
ZH_DIALECT = {
    "PUTON": (
        55,
        [
            "北京",
            "上海",
            "广州",
            "深圳",
            "杭州",
            "南京",
            "成都",
            "武汉",
            "西安",
            "重庆",
            "天津",
            "长沙",
            "郑州",
            "济南",
            "沈阳",
            "昆明",
            "厦门",
            "合肥",
        ],
    ),
    "NORTH": (12, ["北京", "天津", "沈阳", "哈尔滨", "长春", "济南", "石家庄", "大连"]),
    "SOUTH": (8, ["广州", "深圳", "佛山", "东莞", "南宁"]),
    "WU": (8, ["上海", "苏州", "杭州", "宁波", "无锡"]),
    "EASTW": (4, ["温州", "宁波", "绍兴", "台州"]),
    "JIANG": (5, ["南京", "合肥", "扬州", "淮安"]),
    "SHAN": (4, ["西安", "太原", "宝鸡", "大同"]),
    "HAKKA": (4, ["梅州", "赣州", "深圳", "惠州"]),
}
ZH_ABROAD = [("新加坡", "新加坡"), ("美国", "纽约"), ("马来西亚", "吉隆坡"), ("加拿大", "多伦多")]
ZH_SECTIONS = [f"set{i}" for i in range(1, 11)] + ["NAODAO"]

# Raw Mandarin junk that the SWOW-ZH cleaning turns into markers.
ZH_LONG_JUNK = [
    "啊啊啊啊啊啊啊啊啊啊啊啊啊啊",
    "哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈哈",
    "asdfghjklqwertyuiop",
    "不知道不知道不知道不知道不知道",
    "嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯嗯",
]
ZH_SYMBOL_JUNK = ["？？？", "...", "///", "123", "abc", "？", "——", "@@", "ok", "！！"]
FULLWIDTH_TRAIL = ["。", "，", "！", "？", "、"]


# --------------------------------------------------------------------------- English


def en_noise(rng: random.Random, word: str) -> str:
    """Surface noise of typed English responses: case, stray spaces, punctuation."""
    roll = rng.random()
    if roll < 0.06:
        word = word[:1].upper() + word[1:]
    elif roll < 0.075:
        word = word.upper()
    elif roll < 0.085:
        word = word.lower()
    roll = rng.random()
    if roll < 0.012:
        word += rng.choice([".", "!", "?", ","])
    elif roll < 0.030:
        word = rng.choice([" " + word, word + " ", " " + word + " "])
    return word


def en_response(rng: random.Random, cue: str, associate: str, neighbours: dict[str, list[str]], tag: tuple) -> str:
    roll = rng.random()
    if roll < 0.004:
        return hex_token("en", *tag)
    if roll < 0.010:
        return en_noise(rng, cue)
    if roll < 0.045:
        return en_noise(rng, second_order(rng, cue, associate, neighbours))
    return en_noise(rng, associate)


def en_gaps(rng: random.Random, answers: list) -> list:
    """Missing responses: NA, "No more responses", "Unknown word" (R3 goes before R2)."""
    roll = rng.random()
    if roll < 0.004:
        return [UNKNOWN, NO_MORE, NO_MORE]
    if roll < 0.010:
        return answers[:2] + [NO_MORE]
    if roll < 0.013:
        return answers[:1] + [NO_MORE, NO_MORE]
    if roll < 0.043:
        return answers[:2] + [NA]
    if roll < 0.063:
        return answers[:1] + [NA, NA]
    return answers


def make_english(rng: random.Random, lexicon: Lexicon) -> list[list]:
    cues = list(lexicon.entries)
    neighbours = lexicon.neighbours()
    candidates = {
        (cue, group): lexicon.candidates(cue, group, neighbours, CANDIDATES_PER_CUE)
        for cue in cues
        for group in ("us", "intl")
    }
    people = list(assign_participants(rng, cues, EN_PER_CUE).values())
    starts = sorted(random_time(rng, "2011-08-01 08:00:00", "2018-06-30 23:00:00") for _ in people)
    rows = []
    row_id = rng.randint(1, 50)
    participant_id = 0
    for clock, person_cues in zip(starts, people):
        participant_id += rng.randint(1, 3)  # ids with gaps, as in a subset of a larger file
        native = weighted(rng, {name: spec[0] for name, spec in EN_NATIVE.items()})
        country = weighted(rng, EN_NATIVE[native][1])
        age = int(rng.triangular(16, 80, 24))
        gender = weighted(rng, {"Fe": 60, "Ma": 38, "X": 2})
        education = weighted(rng, [(NA, 8), (1, 2), (2, 10), (3, 30), (4, 35), (5, 15)])
        group = "us" if native == US else "intl"
        for cue in person_cues:
            clock += timedelta(seconds=rng.randint(8, 45))
            sampled = zipf_sample(rng, candidates[cue, group], 3, exponent=1.0)
            answers = [en_response(rng, cue, word, neighbours, (row_id, slot)) for slot, word in enumerate(sampled)]
            rows.append(
                [
                    row_id,
                    participant_id,
                    age,
                    gender,
                    native,
                    country,
                    education,
                    clock.strftime("%Y-%m-%d %H:%M:%S"),
                    cue,
                    *en_gaps(rng, answers),
                ]
            )
            row_id += rng.randint(1, 4)
    # Three rows break "R3 is missing when R2 is": R2 lost, R3 kept.
    complete = [row for row in rows if all(answer not in (NA, NO_MORE, UNKNOWN) for answer in row[-3:])]
    for row in rng.sample(complete, 3):
        row[-2] = NA
    return [[str(index), *row] for index, row in enumerate(rows, 1)]


def pooled_strength(rows: list[list]) -> list[list]:
    """cue, response, R123, N, R123.Strength over all participants of the raw English rows."""
    counts: dict[str, Counter] = {}
    for row in rows:
        cue = row[EN_COLUMNS.index("cue")]
        for answer in row[-3:]:
            if answer is None:
                continue
            response = " ".join(answer.split()).lower()
            if response and response not in (NO_MORE.lower(), UNKNOWN.lower()):
                counts.setdefault(cue, Counter())[response] += 1
    table = []
    for cue in sorted(counts):
        total = sum(counts[cue].values())
        for response, count in sorted(counts[cue].items(), key=lambda kv: (-kv[1], kv[0])):
            table.append([cue, response, count, total, f"{count / total:.5f}"])
    return table


def english_facts(rows: list[list]) -> dict:
    col = {name: index for index, name in enumerate(EN_COLUMNS)}
    us_country = [r for r in rows if r[col["country"]] == US]
    us_native = [r for r in us_country if r[col["nativeLanguage"]] == US]
    return {
        "file": EN_RAW,
        "n_rows": len(rows),
        "n_cues": len({r[col["cue"]] for r in rows}),
        "n_participants": len({r[col["participantID"]] for r in rows}),
        "n_rows_country_us": len(us_country),
        "n_rows_nativelanguage_us": sum(r[col["nativeLanguage"]] == US for r in rows),
        "n_rows_us_native": len(us_native),  # the study's US filter: both columns
        "n_cues_us_native": len({r[col["cue"]] for r in us_native}),
        "n_rows_r2_na_r3_present": sum(r[-2] is None and r[-1] is not None for r in rows),
    }


# --------------------------------------------------------------------------- Mandarin


def to_fullwidth(text: str) -> str:
    """ASCII letters and digits to their full-width forms (undone by NFKC)."""
    return "".join(chr(ord(c) + 0xFEE0) if c.isascii() and c.isalnum() else c for c in text)


def zh_response(
    rng: random.Random, cue: str, associate: str, neighbours: dict[str, list[str]], tag: tuple
) -> tuple[str, str]:
    """(raw, cleaned) for one typed Mandarin response."""
    roll = rng.random()
    if roll < 0.010:
        token = hex_token("zh", *tag)
        return token, token
    if roll < 0.014:
        return rng.choice(ZH_LONG_JUNK), "#Long"
    if roll < 0.018:
        return rng.choice(ZH_SYMBOL_JUNK), "#Symbol"
    if roll < 0.022:
        associate = cue
    elif roll < 0.060:
        associate = second_order(rng, cue, associate, neighbours)
    return zh_surface(rng, associate)


def zh_surface(rng: random.Random, word: str) -> tuple[str, str]:
    """Typing noise in the raw response; the cleaning usually, not always, removes it."""
    if any(c.isascii() and c.isalnum() for c in word) and rng.random() < 0.4:
        wide = to_fullwidth(word)  # e.g. "ＫＴＶ", "Ｔ恤"
        return wide, (wide if rng.random() < 0.5 else word)
    roll = rng.random()
    if roll < 0.040:
        raw = word + rng.choice(FULLWIDTH_TRAIL)
        return raw, (raw if rng.random() < 0.25 else word)
    if roll < 0.060:
        raw = rng.choice(["\u3000" + word, word + "\u3000"])
        return raw, (raw if rng.random() < 0.3 else word)
    if roll < 0.075 and len(word) >= 2:
        cut = rng.randrange(1, len(word))
        return word[:cut] + "\u3000" + word[cut:], word
    if roll < 0.085:
        return word + " ", word
    return word, word


def make_mandarin(rng: random.Random, lexicon: Lexicon) -> list[list]:
    cues = list(lexicon.entries)
    neighbours = lexicon.neighbours()
    candidates = {cue: lexicon.candidates(cue, "*", neighbours, CANDIDATES_PER_CUE) for cue in cues}
    # Each cue belongs to one survey section; a participant answers cues of one section.
    section_of = {cue: "NAODAO" if rng.random() < 0.05 else rng.choice(ZH_SECTIONS[:10]) for cue in cues}
    sessions = []  # (section, cues) per participant
    for section in ZH_SECTIONS:
        section_cues = [cue for cue in cues if section_of[cue] == section]
        if section_cues:
            people = assign_participants(rng, section_cues, ZH_PER_CUE).values()
            sessions += [(section, person_cues) for person_cues in people]
    rng.shuffle(sessions)
    starts = sorted(random_time(rng, "2016-06-01 08:00:00", "2021-12-31 23:00:00") for _ in sessions)
    rows = []
    trial_id = 100_000 + rng.randint(0, 999)
    for participant_id, (clock, (section, person_cues)) in enumerate(zip(starts, sessions), 1):
        dialect = weighted(rng, {tag: spec[0] for tag, spec in ZH_DIALECT.items()})
        if rng.random() < 0.03:
            country, city = rng.choice(ZH_ABROAD)
        else:
            country, city = "中国", rng.choice(ZH_DIALECT[dialect][1])
        age = int(rng.triangular(16, 70, 22))
        gender = weighted(rng, {"Female": 58, "Male": 40, "X": 2})
        education = weighted(rng, {1: 3, 2: 12, 3: 25, 4: 45, 5: 15})
        for cue in person_cues:
            clock += timedelta(seconds=rng.randint(6, 40))
            trial_id += rng.randint(1, 3)
            sampled = zipf_sample(rng, candidates[cue], 3, exponent=0.9)
            pairs = [zh_response(rng, cue, word, neighbours, (trial_id, slot)) for slot, word in enumerate(sampled)]
            kept = weighted(rng, [(3, 90), (2, 6), (1, 3), (0, 1)])  # about 5% #Missing
            pairs[kept:] = [(NA, "#Missing")] * (3 - kept)
            raw, clean = zip(*pairs)
            rows.append(
                [
                    trial_id,
                    participant_id,
                    clock.strftime("%Y-%m-%d %H:%M:%S"),
                    age,
                    dialect,
                    gender,
                    education,
                    city,
                    country,
                    section,
                    cue,
                    *raw,
                    *clean,
                ]
            )
    return [[index, *row] for index, row in enumerate(rows, 1)]


def mandarin_facts(rows: list[list]) -> dict:
    col = {name: index for index, name in enumerate(ZH_COLUMNS)}
    cleaned = [answer for row in rows for answer in row[col["R1"] : col["R3"] + 1]]
    return {
        "file": ZH_RAW,
        "n_rows": len(rows),
        "n_cues": len({r[col["cue"]] for r in rows}),
        "n_participants": len({r[col["participantID"]] for r in rows}),
        "n_missing": cleaned.count("#Missing"),
        "n_long": cleaned.count("#Long"),
        "n_symbol": cleaned.count("#Symbol"),
        "n_hex": sum(bool(re.fullmatch(r"[0-9a-f]{32}", a)) for a in cleaned),
    }


# --------------------------------------------------------------------------- the files


def write_swow_files(outdir: Path, lexicons: Path) -> dict[str, dict]:
    """Write the three SWOW-shaped files and their expected facts to ``outdir`` from the lexicons in
    ``lexicons``; returns {expected file: facts}."""
    outdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)

    english = make_english(rng, load_lexicon(lexicons / "lexicon_en.txt"))
    write_r_csv(outdir / EN_RAW, rows_frame(EN_COLUMNS, english, EN_INTEGERS))
    check_roundtrip(outdir / EN_RAW, len(english), len(EN_COLUMNS))

    strength = pooled_strength(english)
    with atomic_path(outdir / EN_STRENGTH) as tmp, tmp.open("w", encoding="utf-8", newline="") as handle:
        handle.write("cue\tresponse\tR123\tN\tR123.Strength\n")
        handle.writelines("\t".join(map(str, row)) + "\n" for row in strength)
    check_roundtrip(outdir / EN_STRENGTH, len(strength), 5, delimiter="\t")

    mandarin = make_mandarin(rng, load_lexicon(lexicons / "lexicon_zh.txt"))
    write_r_csv(outdir / ZH_RAW, rows_frame(ZH_COLUMNS, mandarin, ZH_INTEGERS))
    check_roundtrip(outdir / ZH_RAW, len(mandarin), len(ZH_COLUMNS))

    facts = {EN_EXPECTED: english_facts(english), ZH_EXPECTED: mandarin_facts(mandarin)}
    for name, found in facts.items():
        (outdir / name).write_text(json.dumps(found, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return facts


def main(argv: list[str], folder: Path) -> None:
    """``make_illustrative.py [--outdir DIR]``: the files from the lexicons in ``folder``, written there by default."""
    parser = argparse.ArgumentParser(description="Write the invented SWOW-shaped files (see README.md).")
    parser.add_argument("--outdir", type=Path, default=folder, help=f"where to write the files (default: {folder})")
    for found in write_swow_files(parser.parse_args(argv).outdir, folder).values():
        print(json.dumps(found, ensure_ascii=False))
