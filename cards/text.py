"""Fitting text into card limits: cut with an ellipsis rather than fail validation on a long answer."""

from __future__ import annotations


def shorten(text: str, limit: int) -> str:
    """``text`` if it fits in ``limit`` characters, else its first ``limit - 1`` and "…"."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
