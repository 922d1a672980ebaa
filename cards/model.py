"""The neutral card model. Adapters render it to WeCom template_card, Feishu card JSON 2.0, DingTalk cards
or the simulator's HTML; builders in this package fill it from domain data only.

Limits are deliberately at or below the strictest platform, so a card that validates here renders anywhere.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

PACKED_ACTION = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)+\|")

Colour = Literal["blue", "green", "orange", "red", "grey", "purple"]


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Header(Node):
    title: str = Field(min_length=1, max_length=60)
    subtitle: str | None = Field(default=None, max_length=120)
    colour: Colour = "blue"


class Button(Node):
    label: str = Field(min_length=1, max_length=20)
    value: str = Field(min_length=3, max_length=1000)
    """A packed typed action (``cards.actions.pack``): action id, then its JSON payload."""
    style: Literal["primary", "default", "danger"] = "default"
    disabled: bool = False

    @field_validator("value")
    @classmethod
    def _has_action_id(cls, v: str) -> str:
        if not PACKED_ACTION.match(v):
            raise ValueError("button value must be a packed action starting with an action id")
        return v


class Option(Node):
    label: str = Field(min_length=1, max_length=60)
    value: str = Field(min_length=1, max_length=100)


class TextInput(Node):
    kind: Literal["text_input"] = "text_input"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=60)
    placeholder: str | None = Field(default=None, max_length=100)
    multiline: bool = False
    required: bool = False
    max_length: int = Field(default=500, ge=1, le=2000)
    default: str | None = Field(default=None, max_length=2000)
    number: bool = False
    """A number is expected (a key result's value): a chat form refuses an answer that is not one at once."""


class Select(Node):
    kind: Literal["select"] = "select"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=60)
    options: list[Option] = Field(min_length=1, max_length=50)
    required: bool = False
    multiple: bool = False
    default: str | None = None


class DatePicker(Node):
    kind: Literal["date_picker"] = "date_picker"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    label: str = Field(min_length=1, max_length=60)
    required: bool = False
    default: str | None = Field(default=None, pattern=r"^\d{4}-\d{2}-\d{2}$")


Input = Annotated[TextInput | Select | DatePicker, Field(discriminator="kind")]


class Markdown(Node):
    kind: Literal["markdown"] = "markdown"
    text: str = Field(min_length=1, max_length=2000)


class KeyValue(Node):
    label: str = Field(min_length=1, max_length=40)
    value: str = Field(max_length=200)


class Fields(Node):
    kind: Literal["fields"] = "fields"
    items: list[KeyValue] = Field(min_length=1, max_length=20)


class Image(Node):
    kind: Literal["image"] = "image"
    media_id: str = Field(min_length=1, max_length=200)
    """A stored media id (evidence sha256 or an uploaded chart); adapters upload/resolve it."""
    alt: str = Field(default="", max_length=100)


class Note(Node):
    kind: Literal["note"] = "note"
    text: str = Field(min_length=1, max_length=300)


class Divider(Node):
    kind: Literal["divider"] = "divider"


class Actions(Node):
    kind: Literal["actions"] = "actions"
    buttons: list[Button] = Field(min_length=1, max_length=6)


class Form(Node):
    """Several inputs submitted by one button; the inputs arrive in ``CardAction.form`` by name."""

    kind: Literal["form"] = "form"
    name: str = Field(pattern=r"^[a-z][a-z0-9_]{0,39}$")
    inputs: list[Input] = Field(min_length=1, max_length=15)
    submit: Button
    cancel: Button | None = None

    @model_validator(mode="after")
    def _unique_names(self) -> Form:
        names = [i.name for i in self.inputs]
        if len(names) != len(set(names)):
            raise ValueError("form input names must be unique")
        return self


Element = Annotated[Markdown | Fields | Image | Note | Divider | Actions | Form, Field(discriminator="kind")]


class Card(Node):
    header: Header
    elements: list[Element] = Field(min_length=1, max_length=30)
    summary: str | None = Field(default=None, max_length=100)
    """The one-line preview shown in notification lists."""

    def buttons(self) -> list[Button]:
        out: list[Button] = []
        for el in self.elements:
            if isinstance(el, Actions):
                out.extend(el.buttons)
            elif isinstance(el, Form):
                out.append(el.submit)
                if el.cancel:
                    out.append(el.cancel)
        return out

    def forms(self) -> list[Form]:
        return [el for el in self.elements if isinstance(el, Form)]

    def text_inputs(self) -> list[TextInput]:
        return [i for f in self.forms() for i in f.inputs if isinstance(i, TextInput)]

    def disabled(self) -> Card:
        """The same card with every button disabled and forms collapsed to their labels (after a decision)."""
        new: list[Markdown | Fields | Image | Note | Divider | Actions | Form] = []
        for el in self.elements:
            if isinstance(el, Actions):
                new.append(Actions(buttons=[b.model_copy(update={"disabled": True}) for b in el.buttons]))
            elif isinstance(el, Form):
                continue
            else:
                new.append(el)
        if not new:
            new.append(Divider())
        return self.model_copy(update={"elements": new})
