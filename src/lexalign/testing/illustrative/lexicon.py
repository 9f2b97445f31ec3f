"""The hand-written lexicons the invented SWOW files are drawn from, and the draws themselves.

A lexicon file has ``cue [group]: a, b, c`` lines (group ``us`` or ``intl`` where culture matters).
Every draw takes the one seeded ``random.Random`` it is given, so the files are reproducible.
"""

from __future__ import annotations

import hashlib
import random
import re
from collections import Counter
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

# Cues that are never given as second-order answers: a list parser reads them as list filler ("等" is
# also "etc." in Chinese), so a tidy response would not survive the round trip through the parser.
NOT_SECOND_ORDER = {"等", "等等", "其他", "其它", "more", "others", "etc"}
CUES_PER_PARTICIPANT = 15  # average; sets the size of the participant pool


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


# --------------------------------------------------------------------------- draws


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


def second_order(rng: random.Random, cue: str, associate: str, neighbours: dict[str, list[str]]) -> str:
    """An idiosyncratic answer: a word linked to one of the cue's associates."""
    candidates = [word for word in neighbours.get(associate, []) if word != cue]
    return rng.choice(candidates) if candidates else associate


def hex_token(*parts: object) -> str:
    """A 32-character lowercase hex string, like the hashes in the real files."""
    return hashlib.md5("|".join(map(str, parts)).encode("utf-8")).hexdigest()


def random_time(rng: random.Random, start: str, end: str) -> datetime:
    first, last = datetime.fromisoformat(start), datetime.fromisoformat(end)
    return first + timedelta(seconds=rng.randrange(int((last - first).total_seconds())))


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
