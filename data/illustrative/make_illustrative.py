#!/usr/bin/env python3
"""Generate the project's INVENTED illustrative word-association files.

These files are NOT Small World of Words (SWOW) data. They only copy the exact layouts of the real
SWOW-EN 2018 raw participant file, the SWOW-ZH file and the pooled SWOW-EN strength file, so that
the workflow's embedded default and its tests can run without the licensed downloads. Responses
are drawn from the hand-written lexicons beside this script (``lexicon_en.txt``,
``lexicon_zh.txt``) with Zipf-like weights, plus the kinds of noise the real files contain.

Usage: ``python make_illustrative.py [--outdir DIR]`` (default: this script's folder).
Standard library only; one seeded random stream, so the output is byte-for-byte reproducible.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from lexalign.population.simulate import SWOW_EN_HEADER

HERE = Path(__file__).resolve().parent
SEED = 20180101

EN_RAW = "SWOW-EN.R100.illustrative.csv"
ZH_RAW = "SWOWZH.R55.illustrative.csv"
EN_STRENGTH = "strength.SWOW-EN.R123.illustrative.csv"
EN_EXPECTED = "expected_en.json"
ZH_EXPECTED = "expected_zh.json"

EN_COLUMNS = list(SWOW_EN_HEADER)  # the SWOW-EN 2018 raw layout, as the population writer writes it
ZH_COLUMNS = [
    "id",
    "trialID",
    "participantID",
    "created_at",
    "age",
    "nativeLanguage",
    "gender",
    "education",
    "city",
    "country",
    "section",
    "cue",
    "R1Raw",
    "R2Raw",
    "R3Raw",
    "R1",
    "R2",
    "R3",
]

NA = None  # written as a bare NA, as R's write.csv does
US = "United States"
NO_MORE = "No more responses"
UNKNOWN = "Unknown word"

# Participants per cue (the real files have 100 and 55; fewer here, to keep the files small).
EN_PER_CUE = (40, 56)
ZH_PER_CUE = (28, 40)
# Candidate responses per cue: the lexicon's associates, then second-order words (associates of the
# associates, round robin) up to this many, sampled with Zipf-like weights: a realistic long tail of
# rare answers, so that each cue has about 25-35 response types, as in the real norms' head and tail.
CANDIDATES_PER_CUE = 44
# Cues that are never given as second-order answers: a list parser reads them as list filler ("等" is
# also "etc." in Chinese), so a tidy response would not survive the round trip through the parser.
NOT_SECOND_ORDER = {"等", "等等", "其他", "其它", "more", "others", "etc"}
CUES_PER_PARTICIPANT = 15  # average; sets the size of the participant pool

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


# --------------------------------------------------------------------------- lexicons


@dataclass(frozen=True)
class Lexicon:
    """cue -> {group: ordered associates}; group "*" for everybody, "us"/"intl" where culture
    matters."""

    entries: dict[str, dict[str, list[str]]]

    def associates(self, cue: str, group: str) -> list[str]:
        lists = self.entries[cue]
        return lists.get(group) or lists["*"]

    def candidates(self, cue: str, group: str, neighbours: dict[str, list[str]], size: int) -> list[str]:
        """The cue's associates, then words linked to them (first neighbours of each associate in
        turn, then second ones, ...) up to ``size`` words: the long tail of idiosyncratic answers."""
        words = list(self.associates(cue, group))
        seen = {*words, cue}
        links = [neighbours.get(word, []) for word in words]
        for depth in range(max(map(len, links), default=0)):
            for linked in links:
                if len(words) >= size:
                    return words
                if depth < len(linked) and linked[depth] not in seen:
                    words.append(linked[depth])
                    seen.add(linked[depth])
        return words

    def neighbours(self) -> dict[str, list[str]]:
        """word -> words one step away: its own associates (if it is a cue) and the cues that
        list it. A response drawn from here mimics the idiosyncratic, second-order answers of
        the real norms ("dog" -> bone -> "skeleton")."""
        linked: dict[str, dict[str, None]] = {}
        for cue, lists in self.entries.items():
            for items in lists.values():
                linked.setdefault(cue, {}).update(dict.fromkeys(items))
                for word in items:
                    linked.setdefault(word, {})[cue] = None
        return {word: [w for w in near if w != word and w not in NOT_SECOND_ORDER] for word, near in linked.items()}


_LINE = re.compile(r"^(?P<cue>[^:\[]+?)\s*(?:\[(?P<group>us|intl)\])?\s*:\s*(?P<rest>.+)$")


def load_lexicon(path: Path, min_associates: int = 8) -> Lexicon:
    """Parse ``cue [group]: a, b, c`` lines; reject anything that would make bad test data."""
    entries: dict[str, dict[str, list[str]]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE.match(line)
        if not match:
            raise ValueError(f"{path.name}:{number}: expected 'cue: a, b, c'")
        cue, group = match["cue"].strip(), match["group"] or "*"
        items = [item.strip() for item in match["rest"].split(",")]
        problems = []
        if len(items) < min_associates:
            problems.append(f"only {len(items)} associates")
        if len(set(items)) != len(items):
            problems.append(f"repeated {sorted(w for w, n in Counter(items).items() if n > 1)}")
        if cue in items or any(not w or re.search(r'["\t]', w) for w in items):
            problems.append("empty, quoted or self associate")
        if group in entries.get(cue, {}):
            problems.append("cue listed twice")
        if problems:
            raise ValueError(f"{path.name}:{number} ({cue}): " + "; ".join(problems))
        entries.setdefault(cue, {})[group] = items
    for cue, lists in entries.items():
        if "*" not in lists and set(lists) != {"us", "intl"}:
            raise ValueError(f"{path.name} ({cue}): needs a plain list or both [us] and [intl]")
        if "*" in lists and len(lists) > 1:
            raise ValueError(f"{path.name} ({cue}): mixes a plain list with [us]/[intl]")
    return Lexicon(entries)


# --------------------------------------------------------------------------- helpers


def weighted(rng: random.Random, options: dict | list):
    """Pick one key of {value: weight} or one value of [(value, weight), ...]."""
    pairs = list(options.items()) if isinstance(options, dict) else options
    values, weights = zip(*pairs)
    return rng.choices(values, weights=weights)[0]


def zipf_sample(rng: random.Random, items: list[str], k: int, exponent: float) -> list[str]:
    """k distinct items, the r-th item (0-based) weighted 1 / (r + 1) ** exponent."""
    pool = list(items)
    weights = [1.0 / (rank + 1) ** exponent for rank in range(len(pool))]
    chosen = []
    for _ in range(min(k, len(pool))):
        index = rng.choices(range(len(pool)), weights=weights)[0]
        chosen.append(pool.pop(index))
        weights.pop(index)
    return chosen


def hex_token(*parts: object) -> str:
    """A 32-character lowercase hex string, like the hashes in the real files."""
    return hashlib.md5("|".join(map(str, parts)).encode("utf-8")).hexdigest()


def random_time(rng: random.Random, start: str, end: str) -> datetime:
    first, last = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return first + timedelta(seconds=rng.randrange(int((last - first).total_seconds())))


def r_field(value) -> str:
    """One field as R's write.csv writes it: NA bare, numbers bare, strings double-quoted."""
    if value is None:
        return "NA"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace('"', '""') + '"'


def write_r_csv(path: Path, header: list[str], rows: list[list]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        handle.write(",".join(r_field(name) for name in header) + "\n")
        for row in rows:
            handle.write(",".join(r_field(value) for value in row) + "\n")


def assign_participants(rng: random.Random, cues: list[str], per_cue: tuple[int, int]) -> dict[int, list[str]]:
    """Give each cue a random number of distinct participants; return participant -> cues."""
    demand = {cue: rng.randint(*per_cue) for cue in cues}
    pool = max(max(demand.values()), round(sum(demand.values()) / CUES_PER_PARTICIPANT))
    answered: dict[int, list[str]] = {}
    for cue in cues:
        for person in rng.sample(range(pool), demand[cue]):
            answered.setdefault(person, []).append(cue)
    for person_cues in answered.values():
        rng.shuffle(person_cues)
    return dict(sorted(answered.items()))


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


def second_order(rng: random.Random, cue: str, associate: str, neighbours: dict[str, list[str]]) -> str:
    """An idiosyncratic answer: a word linked to one of the cue's associates."""
    candidates = [word for word in neighbours.get(associate, []) if word != cue]
    return rng.choice(candidates) if candidates else associate


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


# --------------------------------------------------------------------------- main


def check_roundtrip(path: Path, n_rows: int, n_columns: int, delimiter: str = ",") -> None:
    """Re-read a written file with the csv module: every row parses and has every column."""
    with path.open(encoding="utf-8", newline="") as handle:
        lines = list(csv.reader(handle, delimiter=delimiter))
    if len(lines) != n_rows + 1 or any(len(line) != n_columns for line in lines):
        raise RuntimeError(f"{path.name}: does not read back as {n_rows} rows x {n_columns}")


def main(outdir: Path) -> None:
    outdir.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED)

    english = make_english(rng, load_lexicon(HERE / "lexicon_en.txt"))
    write_r_csv(outdir / EN_RAW, EN_COLUMNS, english)
    check_roundtrip(outdir / EN_RAW, len(english), len(EN_COLUMNS))

    strength = pooled_strength(english)
    with (outdir / EN_STRENGTH).open("w", encoding="utf-8", newline="") as handle:
        handle.write("cue\tresponse\tR123\tN\tR123.Strength\n")
        handle.writelines("\t".join(map(str, row)) + "\n" for row in strength)
    check_roundtrip(outdir / EN_STRENGTH, len(strength), 5, delimiter="\t")

    mandarin = make_mandarin(rng, load_lexicon(HERE / "lexicon_zh.txt"))
    write_r_csv(outdir / ZH_RAW, ZH_COLUMNS, mandarin)
    check_roundtrip(outdir / ZH_RAW, len(mandarin), len(ZH_COLUMNS))

    for name, facts in ((EN_EXPECTED, english_facts(english)), (ZH_EXPECTED, mandarin_facts(mandarin))):
        (outdir / name).write_text(json.dumps(facts, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        print(json.dumps(facts, ensure_ascii=False))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--outdir", type=Path, default=HERE, help="where to write the files (default: this script's folder)"
    )
    main(parser.parse_args().outdir)
