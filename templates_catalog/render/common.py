"""What the renderer's modules share: Meta's limits on the values, the problem report, the result."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NamedTuple

# Meta's limits on the values sent. The guides named in comments and messages are pages under
# https://developers.facebook.com/docs/whatsapp/business-management-api/message-templates/ (e.g.
# .../limited-time-offer-templates, .../mpm-templates), authentication ones under
# https://developers.facebook.com/docs/whatsapp/business-management-api/authentication-templates/ and the
# parameter object under https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages.
HEADER_TEXT_MAX = 60          # a text header once filled in
BODY_TEXT_MAX = 1024          # a body once filled in, when the template has other components (132005)
BODY_ONLY_TEXT_MAX = 32768    # a body-only template
CARD_BODY_TEXT_MAX = 160      # a carousel card's body (media-card-carousel-templates)
URL_MAX = 2000                # a URL button's URL once the suffix is appended
CODE_MAX = 15                 # one-time codes (authentication-templates) and coupon codes (limited-time offer)
CAROUSEL_CARDS_MAX = 10
MPM_SECTIONS_MAX = 10         # mpm-templates: up to 10 sections, 30 products in all, titles <= 24 chars
MPM_PRODUCTS_MAX = 30
MPM_TITLE_MAX = 24

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MISSING: Any = object()
MEDIA = ("image", "video", "document")


@dataclass(frozen=True, slots=True)
class Issue:
    """One problem with the values: which one (``parameter``), what is wrong, and how to fix it."""
    parameter: str
    problem: str
    fix: str

    def __str__(self) -> str:
        return f"{self.parameter}: {self.problem}; {self.fix}"

    def as_dict(self) -> dict:
        return {"parameter": self.parameter, "problem": self.problem, "fix": self.fix}


class RenderError(ValueError):
    """The values do not fit the template (or the template cannot be rendered); ``issues`` lists them all."""

    def __init__(self, issues: list[Issue]):
        self.issues = list(issues)
        count = len(self.issues)
        super().__init__(f"{count} problem{'' if count == 1 else 's'} with the template values: "
                         + " | ".join(str(i) for i in self.issues))


class Rendered(NamedTuple):
    """A template filled in for one contact."""
    cloud_api: dict     # the Cloud API "template" object
    text: str           # what the customer sees, for the thread
    sms_text: str       # the same for SMS, Messenger and Instagram


def esc(text: str) -> str:
    """Literal text inside a str.format template."""
    return text.replace("{", "{{").replace("}", "}}")


def braces(key: str) -> str:
    return "{{" + key + "}}"


def kind_of(value: Any) -> str:
    return "nothing" if value is None else type(value).__name__


def a_or_an(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def text_problem(value: str) -> tuple[str, str] | None:
    """What Meta would refuse in a header or body text value (132012), if anything."""
    if not value or value.isspace():
        return "is empty", "give a non-empty value: Meta rejects empty parameters"
    if "\n" in value or "\t" in value or "\r" in value:
        return "contains a line break or tab", "replace them with spaces: Meta rejects them in parameters (132012)"
    if "     " in value:
        return ("has more than 4 consecutive spaces",
                "collapse the spaces: Meta rejects them in parameters (132012)")
    return None


def nonempty(value: Any) -> str | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return value if isinstance(value, str) and value.strip() else None
