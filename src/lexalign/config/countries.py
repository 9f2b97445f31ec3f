"""The two countries tier 2 compares (config ``wvs.countries``), looked up in the WVS-7 country list
(``resources/wvs_countries.yaml``: name -> ISO alpha-3 code as in ``B_COUNTRY_ALPHA``).

Every tier-2 file keys a country by its code lower-cased (:attr:`Country.key`: ``usa``, ``chn``, ``deu``):
humans.parquet columns, metrics.json blocks, answers.parquet columns. Light module (yaml only), so the
config check and the DAG parse can use it.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import yaml

from lexalign.core.errors import LexalignError
from lexalign.core.resources import resource

COUNTRIES_FILE = resource("wvs_countries.yaml")


@dataclass(frozen=True)
class Country:
    """A WVS-7 country: its name (as config and GlobalOpinionQA write it) and ISO alpha-3 code."""

    name: str
    code: str

    @property
    def key(self) -> str:
        """The neutral key of every tier-2 output: the alpha-3 code lower-cased."""
        return self.code.lower()


@functools.cache
def wvs7() -> dict[str, str]:
    """The WVS-7 participants, name -> alpha-3 code, in the file's order."""
    data = yaml.safe_load(COUNTRIES_FILE.read_text(encoding="utf-8"))
    return {str(name): str(code).upper() for name, code in data["countries"].items()}


#: Names too long for a table header or an axis label, and how tables and figures write them.
SHORT_NAMES = {"United States": "US"}


def short_name(name: str) -> str:
    """How tables and figures write a country's name (``United States`` -> ``US``)."""
    return SHORT_NAMES.get(name, name)


def country(name: str, where: str) -> Country:
    """The WVS-7 country called ``name`` (case-insensitive; its alpha-3 code works too); one line naming
    ``where`` (the config key) and the closest names when it is not a WVS-7 participant."""
    known = wvs7()
    text = str(name).strip()
    by_name = {n.casefold(): n for n in known}
    by_code = {code: n for n, code in known.items()}
    found = by_name.get(text.casefold()) or by_code.get(text.upper())
    if found is None:
        close = difflib.get_close_matches(text, list(known), n=3, cutoff=0.6)
        hint = f"did you mean {', '.join(close)}? " if close else ""
        raise LexalignError(
            f"{where}: {name!r} is not a WVS-7 country ({hint}known: the names in "
            "src/lexalign/resources/wvs_countries.yaml, e.g. United States, China, Germany)"
        )
    return Country(found, known[found])


def pair(names: Sequence[str], where: str = "config wvs.countries") -> tuple[Country, Country]:
    """The two configured countries, in config order (the first is the x axis of the tension figure)."""
    if isinstance(names, str) or len(names) != 2:
        raise LexalignError(f"{where}: {names!r} must name exactly two WVS-7 countries, e.g. [United States, China]")
    first, second = (country(name, where) for name in names)
    if first.code == second.code:
        raise LexalignError(f"{where}: {list(names)!r} names {first.name} twice; name two different countries")
    return first, second


def member(name: str | None, countries: Iterable[Country], where: str) -> Country:
    """The pair's country called ``name`` (the language's ``wvs_country``); one line when it is not one of them."""
    countries = list(countries)
    names = " and ".join(c.name for c in countries)
    if name is None:
        raise LexalignError(f"{where}: not set; name the country the language's respondents come from ({names})")
    wanted = country(name, where)
    for candidate in countries:
        if candidate.code == wanted.code:
            return candidate
    raise LexalignError(
        f"{where}: {name!r} is not one of the compared countries ({names}); add it to wvs.countries "
        "(two countries) or change the language's wvs_country"
    )


def by_key(keys: Iterable[str]) -> list[Country]:
    """Countries from their keys (``usa`` ...), as a humans table names them."""
    codes = {code: name for name, code in wvs7().items()}
    out = []
    for key in keys:
        code = key.upper()
        out.append(Country(codes.get(code, code), code))
    return out


def check_languages(config: Mapping, source: str = "config") -> tuple[Country, Country]:
    """wvs.countries is a WVS-7 pair and every run language's wvs_country is one of it (start-up check)."""
    countries = pair(config["wvs"]["countries"], f"{source}: wvs.countries")
    for lang in config["run"]["languages"]:
        spec = config["languages"].get(lang, {})
        if spec.get("wvs_country") is not None:
            member(spec["wvs_country"], countries, f"{source}: languages.{lang}.wvs_country")
    return countries
