"""A WhatsApp message template as Meta defines it (protocols.md B6).

The canonical form is Meta's own JSON, the body of ``POST /{WABA-ID}/message_templates`` as in
``shared/fixtures/whatsapp_templates/``, plus what the list endpoint adds (``id``, ``status``,
``rejected_reason``, ``quality_score``)::

    {"name": "order_update", "language": "en_US", "category": "UTILITY",
     "parameter_format": "POSITIONAL",            # or "NAMED"; POSITIONAL when absent
     "components": [{"type": "HEADER", ...}, {"type": "BODY", "text": "...", "example": {...}},
                    {"type": "FOOTER", ...}, {"type": "BUTTONS", "buttons": [...]}]}

Nothing is translated into a model of our own: a definition that round-trips through this module
is byte-for-byte what Meta returns and accepts. ``Template`` is a read-only view over that dict with
the few questions the rest of the gateway asks (which component, which parameters), and
``load_file``/``load_dir`` read definitions kept as ``.json``, ``.yaml`` or ``.yml`` files.
Whether a definition obeys Meta's rules is ``templates_catalog.validate``'s job, not this module's:
``Template.from_meta`` accepts anything shaped like a mapping so that a broken definition can still
be loaded, shown and reported on.

Docs: https://developers.facebook.com/documentation/business-messaging/whatsapp/templates/overview
and .../templates/components.
"""
from __future__ import annotations

import dataclasses
import json
import re
import types
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

__all__ = [
    "APPROVED", "ARCHIVED", "DELETED", "DISABLED", "FLAGGED", "IN_APPEAL", "LIMIT_EXCEEDED", "LOCKED",
    "PAUSED", "PENDING", "PENDING_DELETION", "REINSTATED", "REJECTED", "UNARCHIVED", "STATUSES",
    "MARKETING", "UTILITY", "AUTHENTICATION", "CATEGORIES", "POSITIONAL", "NAMED", "PARAMETER_FORMATS",
    "SUFFIXES", "Placeholder", "Template", "TemplateLoadError", "iter_files", "load_dir", "load_file", "placeholders",
    "sendable",
]

# --- Status -------------------------------------------------------------------------------------
# The API's status values plus the extra ones the message_template_status_update webhook reports
# (FLAGGED, LOCKED, REINSTATED, UNARCHIVED). Only APPROVED can be sent: everything else fails with
# 132001 (not approved), 132015 (paused) or 132016 (disabled).
APPROVED = "APPROVED"
PENDING = "PENDING"
REJECTED = "REJECTED"
PAUSED = "PAUSED"
DISABLED = "DISABLED"
IN_APPEAL = "IN_APPEAL"
PENDING_DELETION = "PENDING_DELETION"
DELETED = "DELETED"
FLAGGED = "FLAGGED"
REINSTATED = "REINSTATED"
LIMIT_EXCEEDED = "LIMIT_EXCEEDED"
ARCHIVED = "ARCHIVED"
UNARCHIVED = "UNARCHIVED"
LOCKED = "LOCKED"
STATUSES = frozenset({APPROVED, PENDING, REJECTED, PAUSED, DISABLED, IN_APPEAL, PENDING_DELETION,
                      DELETED, FLAGGED, REINSTATED, LIMIT_EXCEEDED, ARCHIVED, UNARCHIVED, LOCKED})


def sendable(status: object) -> bool:
    """True only for APPROVED (any case: Meta's create accepts lowercase, reads return uppercase)."""
    return isinstance(status, str) and status.strip().upper() == APPROVED


# --- Categories and parameter formats -----------------------------------------------------------
MARKETING = "MARKETING"
UTILITY = "UTILITY"
AUTHENTICATION = "AUTHENTICATION"
CATEGORIES = (MARKETING, UTILITY, AUTHENTICATION)

POSITIONAL = "POSITIONAL"   # {{1}}, {{2}}, ... — the default when parameter_format is absent
NAMED = "NAMED"             # {{first_name}}
PARAMETER_FORMATS = (POSITIONAL, NAMED)


# --- Placeholders -------------------------------------------------------------------------------
_PLACEHOLDER = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_POSITIONAL_NAME = re.compile(r"[0-9]+")
_NAMED_NAME = re.compile(r"[a-z_][a-z0-9_]*")


@dataclasses.dataclass(frozen=True)
class Placeholder:
    """One ``{{...}}`` in a text: ``name`` is what is between the braces, ``start``/``end`` its span
    (braces included). ``kind`` is "positional" (digits), "named" (lowercase letters, digits and
    underscores, not starting with a digit) or "invalid" (anything else, e.g. ``{{ 1 }}``)."""

    name: str
    start: int
    end: int

    @property
    def kind(self) -> str:
        if _POSITIONAL_NAME.fullmatch(self.name):
            return "positional"
        if _NAMED_NAME.fullmatch(self.name):
            return "named"
        return "invalid"


def placeholders(text: object) -> list[Placeholder]:
    """Every ``{{...}}`` in ``text``, in order of appearance (repeats included); [] for a non-string."""
    if not isinstance(text, str):
        return []
    return [Placeholder(m.group(1), m.start(), m.end()) for m in _PLACEHOLDER.finditer(text)]


def _parameter_names(text: object) -> tuple[str, ...]:
    """The distinct parameter names a text needs, in the order a sender supplies them: positional
    ones by number (``{{2}} {{1}}`` needs 1 then 2), named ones by first appearance."""
    found = [p for p in placeholders(text) if p.kind != "invalid"]
    positional = sorted({p.name for p in found if p.kind == "positional"}, key=int)
    named = list(dict.fromkeys(p.name for p in found if p.kind == "named"))
    return tuple(positional + named)


# --- Read-only views ----------------------------------------------------------------------------
def _freeze(value: Any) -> Any:
    if isinstance(value, Mapping):
        return types.MappingProxyType({key: _freeze(item) for key, item in value.items()})
    if isinstance(value, (list, tuple)):
        return tuple(_freeze(item) for item in value)
    return value


def _thaw(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, tuple):
        return [_thaw(item) for item in value]
    return value


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


@dataclasses.dataclass(frozen=True, eq=True)
class Template:
    """A read-only view over one definition in Meta's shape. ``doc`` is that definition, frozen
    (mappings are read-only, lists are tuples); ``to_meta()`` gives a plain, mutable copy back."""

    doc: Mapping[str, Any]

    __hash__ = None  # the frozen mappings inside are not hashable; compare with ==

    @classmethod
    def from_meta(cls, doc: Mapping[str, Any]) -> Template:
        if isinstance(doc, Template):
            return doc
        if not isinstance(doc, Mapping):
            raise TypeError(f"a template definition is a JSON object (mapping), not {type(doc).__name__}")
        return cls(_freeze(doc))

    def to_meta(self) -> dict[str, Any]:
        return _thaw(self.doc)

    # Meta's top-level fields, as given (None when absent).
    @property
    def name(self) -> Any:
        return self.doc.get("name")

    @property
    def language(self) -> Any:
        return self.doc.get("language")

    @property
    def category(self) -> Any:
        return _upper(self.doc.get("category"))

    @property
    def parameter_format(self) -> Any:
        """POSITIONAL when the definition does not say (Meta's default)."""
        value = self.doc.get("parameter_format")
        return POSITIONAL if value is None else _upper(value)

    @property
    def status(self) -> Any:
        return _upper(self.doc.get("status"))

    @property
    def rejected_reason(self) -> Any:
        return self.doc.get("rejected_reason")

    @property
    def quality_score(self) -> Any:
        return self.doc.get("quality_score")

    @property
    def id(self) -> Any:
        value = self.doc.get("id")
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @property
    def sendable(self) -> bool:
        return sendable(self.status)

    @property
    def components(self) -> tuple[Mapping[str, Any], ...]:
        comps = self.doc.get("components")
        if not isinstance(comps, tuple):
            return ()
        return tuple(c for c in comps if isinstance(c, Mapping))

    def component(self, type_: str) -> Mapping[str, Any] | None:
        """The first top-level component of that type (``"BODY"``, ``"header"``...), or None."""
        wanted = type_.upper()
        return next((c for c in self.components if _upper(c.get("type")) == wanted), None)

    def buttons(self) -> tuple[Mapping[str, Any], ...]:
        """The BUTTONS component's buttons, in order (their position is the send-time ``index``)."""
        comp = self.component("BUTTONS")
        buttons = comp.get("buttons") if comp is not None else None
        return tuple(b for b in buttons if isinstance(b, Mapping)) if isinstance(buttons, tuple) else ()

    def parameters(self) -> dict[str, tuple[str, ...]]:
        """The parameters a sender must supply, per place, in send order; places without any are
        left out. Keys: ``"header"``, ``"body"``, ``"button:<index>"`` (a URL button's suffix, or an
        authentication template's code button), and for carousels ``"card:<n>:body"`` and
        ``"card:<n>:button:<index>"``. Positional names are ``"1"``, ``"2"``...

        An authentication template's body has Meta's fixed text ``*{{1}}* is your verification
        code.``, and its OTP button repeats the code (protocols.md B1), so both report ``("1",)``."""
        out: dict[str, tuple[str, ...]] = {}
        if self.category == AUTHENTICATION:
            if self.component("BODY") is not None:
                out["body"] = ("1",)
            for index, button in enumerate(self.buttons()):
                if _upper(button.get("type")) == "OTP":
                    out[f"button:{index}"] = ("1",)
            return out
        out.update(_component_parameters(self.components, prefix=""))
        carousel = self.component("CAROUSEL")
        cards = carousel.get("cards") if carousel is not None else None
        for n, card in enumerate(cards if isinstance(cards, tuple) else ()):
            card_comps = card.get("components") if isinstance(card, Mapping) else None
            if isinstance(card_comps, tuple):
                comps = tuple(c for c in card_comps if isinstance(c, Mapping))
                out.update(_component_parameters(comps, prefix=f"card:{n}:"))
        return out


def _component_parameters(comps: Sequence[Mapping[str, Any]], *, prefix: str) -> dict[str, tuple[str, ...]]:
    out: dict[str, tuple[str, ...]] = {}
    for comp in comps:
        kind = _upper(comp.get("type"))
        if kind == "HEADER" and _upper(comp.get("format")) == "TEXT":
            names = _parameter_names(comp.get("text"))
            if names:
                out[f"{prefix}header"] = names
        elif kind == "BODY":
            names = _parameter_names(comp.get("text"))
            if names:
                out[f"{prefix}body"] = names
        elif kind == "BUTTONS":
            buttons = comp.get("buttons")
            for index, button in enumerate(buttons if isinstance(buttons, tuple) else ()):
                if isinstance(button, Mapping) and _upper(button.get("type")) == "URL":
                    names = _parameter_names(button.get("url"))
                    if names:
                        out[f"{prefix}button:{index}"] = names
    return out


# --- Loading files ------------------------------------------------------------------------------
SUFFIXES = (".json", ".yaml", ".yml")


class TemplateLoadError(ValueError):
    """A definition file that cannot be read as templates. ``path`` is the file; ``str()`` starts with it."""

    def __init__(self, path: Path | str, problem: str):
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def _parse(path: Path) -> Any:
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise TemplateLoadError(path, f"unknown file type {path.suffix or '(no suffix)'!r}; "
                                      f"template definitions are {', '.join(SUFFIXES)} files")
    try:
        raw = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise TemplateLoadError(path, "no such file") from None
    except UnicodeDecodeError as exc:
        raise TemplateLoadError(path, f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except OSError as exc:
        raise TemplateLoadError(path, f"cannot be read ({exc.strerror})") from None
    if not raw.strip():
        raise TemplateLoadError(path, "is empty; it should hold one template definition or a list of them")
    if suffix == ".json":
        try:
            return json.loads(raw)
        except json.JSONDecodeError as exc:
            raise TemplateLoadError(path, f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                                          f"{exc.msg}") from None
    try:
        return yaml.safe_load(raw)
    except yaml.composer.ComposerError as exc:
        if "single document" in str(exc):
            raise TemplateLoadError(path, "holds several YAML documents ('---'); put the templates in "
                                          "one list instead") from None
        raise TemplateLoadError(path, f"invalid YAML: {_yaml_problem(exc)}") from None
    except yaml.YAMLError as exc:
        raise TemplateLoadError(path, f"invalid YAML: {_yaml_problem(exc)}") from None


def _yaml_problem(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or str(exc)
    if mark is not None:
        return f"{problem} at line {mark.line + 1}, column {mark.column + 1}"
    return problem


def load_file(path: Path | str) -> list[Template]:
    """The templates in one ``.json``/``.yaml``/``.yml`` file: a single definition (a mapping) or a
    list of them. Raises ``TemplateLoadError`` naming the file for anything else."""
    path = Path(path)
    data = _parse(path)
    if isinstance(data, Mapping):
        return [Template.from_meta(data)]
    if isinstance(data, list):
        out = []
        for i, item in enumerate(data):
            if not isinstance(item, Mapping):
                raise TemplateLoadError(path, f"item {i} of the list is {_kind(item)}, not a template "
                                              "definition (a mapping with name, language, category, "
                                              "components)")
            out.append(Template.from_meta(item))
        return out
    raise TemplateLoadError(path, f"holds {_kind(data)}; it should hold one template definition (a "
                                  "mapping with name, language, category, components) or a list of them")


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    return {str: "a string", bool: "a boolean", int: "a number", float: "a number",
            list: "a list"}.get(type(value), f"a {type(value).__name__}")


def iter_files(path: Path | str) -> Iterator[Path]:
    """The definition files directly in a directory, sorted by name (hidden files skipped)."""
    root = Path(path)
    if not root.is_dir():
        raise TemplateLoadError(root, "is not a directory")
    for child in sorted(root.iterdir()):
        if child.is_file() and not child.name.startswith(".") and child.suffix.lower() in SUFFIXES:
            yield child


def load_dir(path: Path | str) -> list[Template]:
    """Every template in the ``.json``/``.yaml``/``.yml`` files directly in ``path``, files in name
    order. Other files are ignored. Meta identifies a template by (name, language), so the same pair
    in two places is refused, naming both."""
    seen: dict[tuple[Any, Any], Path] = {}
    out = []
    for file in iter_files(path):
        for template in load_file(file):
            key = (template.name, template.language)
            if isinstance(template.name, str) and key in seen:
                raise TemplateLoadError(file, f"template {template.name!r} in language "
                                              f"{template.language!r} is also defined in {seen[key]}")
            seen.setdefault(key, file)
            out.append(template)
    return out
