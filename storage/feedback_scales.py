"""The vocabulary of feedback, shared by the queries that compute it and the cards that show it.

Why a module of its own: ``cards/`` must stay platform-neutral and import nothing above storage *types*
(no models, no queries, no database). The dimensions, the rating aspects, the peer-count bounds and the
shape of the anonymous aggregate are not queries, they are the words both sides speak; so they live here,
beside ``storage.types``, as constants and a plain frozen dataclass: no SQLAlchemy, no I/O.
``storage.queries.feedback`` builds ``PeerAggregate`` values; ``cards.peer_feedback`` and friends read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

DIMENSIONS: tuple[str, ...] = ("responsiveness", "quality", "collaboration", "ownership")
"""The 1-5 scales peers, the person and the manager score; the radar has one axis per dimension."""
RATING_ASPECTS: tuple[str, ...] = ("completeness", "timeliness", "risk_disclosure")
"""The 1-5 scales a manager rates a deliverable on."""
MIN_PEERS = 2
MAX_PEERS = 5
"""How many collaborators a person nominates for peer feedback (inclusive bounds)."""


@dataclass(frozen=True)
class PeerAggregate:
    """The anonymous view of one person's peer feedback: the only shape in which peer answers reach a card.

    Below the anonymity threshold ``peers`` is None and ``examples`` empty; there is no field for a rater.
    Built from *released* answers only (issue 16 #2): ``answered`` counts those, so it grows by whole batches
    of at least ``threshold`` and two versions never differ by one rater.
    """

    answered: int
    threshold: int
    peers: dict[str, float] | None = None
    """Mean per dimension, only when ``answered >= threshold``."""
    examples: list[str] = field(default_factory=list)
    self_scores: dict[str, float] | None = None
    manager: dict[str, float] | None = None

    @property
    def visible(self) -> bool:
        return self.peers is not None

    def gaps(self, points: float) -> list[str]:
        """Dimensions where self and peers differ by at least ``points`` (the coaching flag)."""
        if self.peers is None or self.self_scores is None:
            return []
        return [
            d
            for d in DIMENSIONS
            if d in self.peers
            and d in self.self_scores
            and abs(self.self_scores[d] - self.peers[d]) >= points
        ]
