"""The proof behind a number (issue 17 item 7): the photos and action items linked to a key result, newest
first, as lines a goal card can show under the key result (``/okr`` uses ``proof_lines``/``proof_section``).

The rows come from ``storage.queries.kr_links.proof_for_kr``; this module only needs their shape
(``ProofLike``), so cards stay free of storage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, tzinfo
from typing import Protocol

from cards.catalogue import Translator
from cards.model import Markdown
from cards.text import shorten

SHOWN = 5
"""Lines under one key result on a phone; the rest is counted."""


class ProofLike(Protocol):
    @property
    def kind(self) -> str:
        """``evidence`` (a photo) or ``action`` (an action item)."""
        ...

    @property
    def ref_id(self) -> int: ...

    @property
    def at(self) -> datetime:
        """When the photo arrived, or when the item was created."""
        ...

    @property
    def text(self) -> str: ...

    @property
    def status(self) -> str | None:
        """The photo's rating (None: not rated yet), or the item's status."""
        ...


def proof_line(t: Translator, proof: ProofLike, *, tz: tzinfo) -> str:
    when = proof.at.astimezone(tz).strftime("%m-%d %H:%M")
    what = shorten(proof.text, 40) if proof.text else t("proof.photo_general")
    if proof.kind == "evidence":
        rating = t(f"evidence.rating.{proof.status}") if proof.status else t("proof.unrated")
        return t("proof.photo", at=when, rating=rating, what=what)
    return t(
        "proof.action",
        id=proof.ref_id,
        at=when,
        status=t(f"action_items.status.{proof.status}"),
        what=shorten(proof.text, 40),
    )


def proof_lines(t: Translator, proof: Sequence[ProofLike], *, tz: tzinfo, limit: int = SHOWN) -> list[str]:
    """One line per photo or action item, newest first, at most ``limit`` and a "… N more" line; a single
    "nothing yet" line when there is no proof at all."""
    if not proof:
        return [t("proof.none")]
    lines = [proof_line(t, p, tz=tz) for p in proof[:limit]]
    if len(proof) > limit:
        lines.append(t("proof.more", count=len(proof) - limit))
    return lines


def proof_section(
    t: Translator, proof: Sequence[ProofLike], *, tz: tzinfo, key_result: str, limit: int = SHOWN
) -> Markdown:
    """The card section: a heading naming the key result, then ``proof_lines``."""
    head = t("proof.head", key_result=shorten(key_result, 60), count=len(proof))
    return Markdown(text=shorten("\n".join([head, *proof_lines(t, proof, tz=tz, limit=limit)]), 2000))
