"""The one message catalogue: every user-facing string, zh-CN by default, English available.

Strings live in ``cards/catalogue/<locale>/<flow>.toml`` (one file per flow, merged; a key defined twice
is an error); a key missing in a locale falls back to zh-CN, and a key
missing everywhere is a bug that fails loudly (a test checks both files carry the same keys).
"""

from __future__ import annotations

import tomllib
from functools import cache
from pathlib import Path
from typing import Any

CATALOGUE_DIR = Path(__file__).parent / "catalogue"
DEFAULT_LOCALE = "zh-CN"
LOCALES = ("zh-CN", "en")


def _flatten(prefix: str, table: dict[str, Any], out: dict[str, Any]) -> None:
    for key, value in table.items():
        full = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(full, value, out)
        else:
            out[full] = value


@cache
def messages(locale: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for path in sorted((CATALOGUE_DIR / locale).glob("*.toml")):
        with path.open("rb") as fh:
            part: dict[str, Any] = {}
            _flatten("", tomllib.load(fh), part)
        clash = out.keys() & part.keys()
        if clash:
            raise ValueError(f"catalogue keys defined twice in {locale}: {sorted(clash)[:3]}")
        out.update(part)
    return out


def normalise_locale(locale: str | None) -> str:
    if not locale:
        return DEFAULT_LOCALE
    if locale.lower().startswith("en"):
        return "en"
    return DEFAULT_LOCALE


class Translator:
    """Bound to one locale: ``t("checkin.title", period="2026-11-24")``."""

    def __init__(self, locale: str | None = None) -> None:
        self.locale = normalise_locale(locale)

    def __call__(self, key: str, /, **params: Any) -> str:
        value = messages(self.locale).get(key)
        if value is None:
            value = messages(DEFAULT_LOCALE).get(key)
        if value is None:
            raise KeyError(f"message catalogue has no key {key!r}")
        if not isinstance(value, str):
            raise TypeError(f"catalogue key {key!r} is not a string")
        return value.format(**params) if params else value

    def words(self, key: str) -> list[str]:
        value = messages(self.locale).get(key) or messages(DEFAULT_LOCALE).get(key)
        if not isinstance(value, list):
            raise KeyError(f"message catalogue has no word list {key!r}")
        return [str(v) for v in value]
