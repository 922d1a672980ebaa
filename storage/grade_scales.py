"""The vocabulary of grade calibration, shared by the arithmetic that finds deviations and the cards that
show them.

Why a module of its own: ``cards/`` must import nothing above storage *types*, yet the calibration alert
and HR's distribution card display a ``Deviation`` that ``storage.queries.grades.deviations`` computes.
The result type is a plain frozen dataclass (no SQLAlchemy, no I/O), so it lives here, beside
``storage.types``, where both the queries and the cards may import it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Deviation:
    """A grade whose share of a department lies outside its expected range in one cycle."""

    grade: str
    share: float
    low: float
    high: float
    rule: str  # "sigma" or "band"

    @property
    def direction(self) -> str:
        return "high" if self.share > self.high else "low"
