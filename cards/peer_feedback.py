"""Peer feedback cards: nominating collaborators, the manager's approval, the peer's short questionnaire,
and the aggregate views. The aggregate cards take a ``PeerAggregate`` and nothing else about raters, so
they cannot show a name even by mistake."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from cards.actions import Action, action, pack
from cards.catalogue import Translator
from cards.feedback_common import cut, scale_select, stars
from cards.model import (
    Actions,
    Button,
    Card,
    Colour,
    Divider,
    Fields,
    Form,
    Header,
    Image,
    Input,
    KeyValue,
    Markdown,
    Note,
    Option,
    Select,
    TextInput,
)
from storage.feedback_scales import DIMENSIONS, MAX_PEERS, MIN_PEERS, PeerAggregate

MAX_CANDIDATES = 50


@action("peers.nominate")
class PeerNominate(Action):
    cycle_id: int
    subject_id: int


@action("peers.approve")
class PeerApprove(Action):
    cycle_id: int
    subject_id: int


@action("peers.answer")
class PeerAnswer(Action):
    feedback_id: int


@action("peers.manager")
class PeerManagerScores(Action):
    cycle_id: int
    subject_id: int


def _peer_select(t: Translator, candidates: Sequence[tuple[int, str]]) -> Select:
    """No default: platforms take one default value for a multi-select; the current list is in the text."""
    return Select(
        name="peers",
        label=t("peers.select_label", min=MIN_PEERS, max=MAX_PEERS),
        options=[Option(label=cut(name, 60), value=str(pid)) for pid, name in candidates[:MAX_CANDIDATES]],
        required=True,
        multiple=True,
    )


def nomination_card(
    t: Translator,
    *,
    cycle_id: int,
    subject_id: int,
    subject_name: str,
    cycle_code: str,
    candidates: Sequence[tuple[int, str]],
    selected: Sequence[int] = (),
    by_manager: bool = False,
    error: str | None = None,
) -> Card:
    title = t("peers.nominate_title", name=subject_name, cycle=cycle_code)
    elements: list[Any] = [
        Markdown(text=t("peers.nominate_intro_manager" if by_manager else "peers.nominate_intro"))
    ]
    names = dict(candidates)
    current = [names[i] for i in selected if i in names]
    if current:
        elements.append(Note(text=cut(t("peers.list_now", peers="、".join(current)), 300)))
    if error:
        elements.append(Note(text=cut(error, 300)))
    elements.append(
        Form(
            name="peers",
            inputs=[_peer_select(t, candidates)],
            submit=Button(
                label=t("peers.nominate_submit"),
                value=pack(PeerNominate(cycle_id=cycle_id, subject_id=subject_id)),
                style="primary",
            ),
        )
    )
    return Card(
        header=Header(title=cut(title, 60), colour="orange" if error else "blue"),
        elements=elements,
        summary=cut(title, 100),
    )


def approval_card(
    t: Translator,
    *,
    cycle_id: int,
    subject_id: int,
    subject_name: str,
    cycle_code: str,
    proposed: Sequence[str],
    candidates: Sequence[tuple[int, str]],
) -> Card:
    title = t("peers.approve_title", name=subject_name, cycle=cycle_code)
    return Card(
        header=Header(title=cut(title, 60)),
        elements=[
            Markdown(text=t("peers.approve_body", name=subject_name, peers="、".join(proposed))),
            Actions(
                buttons=[
                    Button(
                        label=t("peers.approve_button"),
                        value=pack(PeerApprove(cycle_id=cycle_id, subject_id=subject_id)),
                        style="primary",
                    )
                ]
            ),
            Divider(),
            Markdown(text=t("peers.change_intro")),
            Form(
                name="peers",
                inputs=[_peer_select(t, candidates)],
                submit=Button(
                    label=t("peers.change_button"),
                    value=pack(PeerNominate(cycle_id=cycle_id, subject_id=subject_id)),
                ),
            ),
        ],
        summary=cut(title, 100),
    )


def recoloured(card: Card, colour: Colour) -> Card:
    """``card`` with its header in ``colour``: a decided card says how it ended before anyone reads it."""
    return card.model_copy(update={"header": card.header.model_copy(update={"colour": colour})})


def approval_closed_card(
    t: Translator, *, subject_name: str, cycle_code: str, note: str, approved: bool
) -> Card:
    """The approval card once decided (green) or replaced by a newer list (grey): no live controls."""
    title = t("peers.approve_title", name=subject_name, cycle=cycle_code)
    return Card(
        header=Header(title=cut(title, 60), colour="green" if approved else "grey"),
        elements=[Markdown(text=cut(note, 2000))],
        summary=cut(title, 100),
    )


def _dim_inputs(t: Translator, scores: dict[str, Any] | None = None) -> list[Input]:
    scores = scores or {}
    return [scale_select(t, f"dim_{d}", t(f"peers.dim.{d}"), default=scores.get(d)) for d in DIMENSIONS]


def request_card(
    t: Translator,
    *,
    feedback_id: int,
    subject_name: str,
    cycle_code: str,
    reminder: bool = False,
    error: str | None = None,
    scores: dict[str, Any] | None = None,
    example: str | None = None,
) -> Card:
    title = t("peers.request_title", name=subject_name, cycle=cycle_code)
    inputs = _dim_inputs(t, scores)
    inputs.append(
        TextInput(
            name="example",
            label=t("peers.example_label"),
            placeholder=t("peers.example_hint"),
            multiline=True,
            required=True,
            max_length=1000,
            default=example,
        )
    )
    elements: list[Any] = [Markdown(text=t("peers.request_intro", name=subject_name))]
    if reminder:
        elements.append(Note(text=t("peers.request_reminder")))
    if error:
        elements.append(Note(text=cut(error, 300)))
    elements.append(
        Form(
            name="peer_answer",
            inputs=inputs,
            submit=Button(
                label=t("peers.answer_submit"),
                value=pack(PeerAnswer(feedback_id=feedback_id)),
                style="primary",
            ),
        )
    )
    return Card(
        header=Header(title=cut(title, 60), colour="orange" if error else "blue"),
        elements=elements,
        summary=cut(title, 100),
    )


def thanks_card(t: Translator, *, subject_name: str) -> Card:
    title = t("peers.thanks_title")
    return Card(
        header=Header(title=title, colour="green"),
        elements=[Markdown(text=t("peers.thanks_body", name=subject_name))],
        summary=title,
    )


def dropped_card(t: Translator, *, subject_name: str) -> Card:
    title = t("peers.dropped_title")
    return Card(
        header=Header(title=title, colour="grey"),
        elements=[Markdown(text=t("peers.dropped_body", name=subject_name))],
        summary=title,
    )


def aggregate_card(
    t: Translator,
    *,
    cycle_id: int,
    subject_id: int,
    subject_name: str,
    cycle_code: str,
    agg: PeerAggregate,
    gap_points: float,
    radar_media_id: str | None,
    for_manager: bool,
    entered: dict[str, Any] | None = None,
    error: str | None = None,
) -> Card:
    """The aggregate: means per dimension next to self (and manager), gap flags, anonymous examples. ``agg``
    holds released answers only; the note says why later answers appear in groups, not one by one.
    ``entered`` (the manager's half-filled scores) replaces the saved ones on the form, next to ``error``."""
    title = t(
        "peers.agg_title" if for_manager else "peers.agg_self_title", name=subject_name, cycle=cycle_code
    )
    if not agg.visible or agg.peers is None:
        return Card(
            header=Header(title=cut(title, 60), colour="grey"),
            elements=[Markdown(text=t("peers.agg_hidden", n=agg.threshold))],
            summary=cut(title, 100),
        )
    peers = agg.peers
    gaps = set(agg.gaps(gap_points))
    items: list[KeyValue] = []
    for dim in DIMENSIONS:
        parts = [
            t("peers.col_self", v=stars((agg.self_scores or {}).get(dim))),
            t("peers.col_peers", v=stars(peers.get(dim))),
        ]
        if for_manager:
            parts.append(t("peers.col_manager", v=stars((agg.manager or {}).get(dim))))
        flag = " ⚠" if dim in gaps else ""
        items.append(KeyValue(label=cut(t(f"peers.dim.{dim}") + flag, 40), value=cut(" · ".join(parts), 200)))
    elements: list[Any] = [
        Markdown(text=t("peers.agg_intro", n=agg.answered)),
        Fields(items=items),
        Note(text=cut(t("peers.batches", n=agg.threshold), 300)),
    ]
    if radar_media_id:
        elements.append(Image(media_id=radar_media_id, alt=cut(t("peers.radar_alt"), 100)))
    if gaps:
        names = "、".join(t(f"peers.dim.{d}") for d in DIMENSIONS if d in gaps)
        elements.append(Markdown(text=t("peers.gap_flag", dims=names, points=gap_points)))
    if agg.examples:
        body = "\n".join(f"- {cut(e, 300)}" for e in agg.examples)
        elements.append(Markdown(text=cut(t("peers.examples") + "\n" + body, 2000)))
    if for_manager:
        if error:
            elements.append(Note(text=cut(error, 300)))
        elements.append(
            Form(
                name="manager_scores",
                inputs=_dim_inputs(t, agg.manager if entered is None else entered),
                submit=Button(
                    label=t("peers.manager_submit"),
                    value=pack(PeerManagerScores(cycle_id=cycle_id, subject_id=subject_id)),
                ),
            )
        )
    return Card(
        header=Header(title=cut(title, 60), colour="orange" if error else "purple"),
        elements=elements,
        summary=cut(title, 100),
    )
