"""Menus and small flows: their shape, validation, how a step looks on each channel, and how an answer is read.

A flow is an automation of kind ``flow`` (API body, or one document of a rules file)::

    name: main-menu
    kind: flow
    priority: 50
    definition:
      trigger: {match: whole, keywords: [menu, menú]}     # optional: else started by a {type: flow} action
      start: main
      expires_after_minutes: 1440                           # optional: a later answer starts afresh
      steps:
        main:
          type: menu
          text: {en: "How can we help?", es: "¿En qué te ayudamos?"}
          options:
            - {id: orders, title: {en: "My order", es: "Mi pedido"}, next: ask_order}
            - {id: person, title: "Talk to a person", next: agent}
        ask_order:
          type: question
          text: "What is your order number? (e.g. AB123456)"
          attribute: order_number
          pattern: "[A-Z]{2}[0-9]{6}"                       # the whole answer must match
          invalid: "That is not an order number: two letters and six digits, e.g. AB123456."
          next: thanks
        thanks: {type: message, text: "Thanks! We are looking at order {order_number}."}
        agent: {type: handoff, text: "A person will answer you here.", team: support}

Steps: ``menu`` (1 to 10 options, each leading to another step), ``question`` (the answer is stored as a contact
attribute, validated by an optional pattern), ``message`` (a text, then optionally another step) and ``handoff``
(optional text, optional team; the thread goes to a person). Texts are a string or language → string and may
say ``{attribute}`` for an attribute the contact has. An unexpected answer asks again once, then hands off.

On WhatsApp a menu of up to 3 options is reply buttons, more is a list; on Messenger and Instagram it is
quick replies; on SMS (and any channel without interactive messages) numbered options, answered by the
number or the option's title.
"""
from __future__ import annotations

import re

from gateway.automation import text_match

STEP_TYPES = ("menu", "question", "message", "handoff")
MAX_OPTIONS = 10                 # a WhatsApp list holds 10 rows
MAX_TITLE = 20                   # reply buttons and Messenger quick replies (a list row allows 24)
MAX_DESCRIPTION = 72             # a list row's description
MAX_BODY = 1024                  # an interactive message's body
MAX_BUTTON_LABEL = 20
WHATSAPP_BUTTONS = 3
MAX_ANSWER = 500                 # a question's answer is matched (and stored) up to this length
MAX_STEPS = 100
DEFAULT_EXPIRY_MINUTES = 24 * 60
NAME = re.compile(r"[A-Za-z0-9_-]{1,40}")
PAYLOAD_PREFIX = "flow:"
PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_.-]{0,63})\}")

_LIST_BUTTON = {"en": "Options", "es": "Opciones", "pt": "Opções", "fr": "Options", "de": "Optionen",
                "it": "Opzioni"}
_NUMBER_HINT = {"en": "Reply with the number of your choice.", "es": "Responde con el número de tu opción.",
                "pt": "Responda com o número da sua opção.", "fr": "Répondez avec le numéro de votre choix.",
                "de": "Antworten Sie mit der Nummer Ihrer Wahl.", "it": "Rispondi con il numero della tua scelta."}
_NOT_UNDERSTOOD = {"en": "Sorry, I did not understand that. Please choose one of the options.",
                   "es": "Perdona, no lo he entendido. Elige una de las opciones.",
                   "pt": "Desculpe, não entendi. Escolha uma das opções.",
                   "fr": "Désolé, je n'ai pas compris. Choisissez une des options.",
                   "de": "Entschuldigung, das habe ich nicht verstanden. Bitte wählen Sie eine Option.",
                   "it": "Scusa, non ho capito. Scegli una delle opzioni."}
_INVALID_ANSWER = {"en": "Sorry, that answer does not look right. Please try again.",
                   "es": "Perdona, esa respuesta no parece válida. Inténtalo de nuevo.",
                   "pt": "Desculpe, essa resposta não parece válida. Tente novamente.",
                   "fr": "Désolé, cette réponse ne semble pas valide. Réessayez.",
                   "de": "Entschuldigung, diese Antwort scheint nicht zu passen. Bitte versuchen Sie es erneut.",
                   "it": "Scusa, questa risposta non sembra valida. Riprova."}


def localised(text, languages: list[str | None]) -> str | None:
    return text_match.reply_text(text, languages)


def builtin(table: dict, languages: list[str | None]) -> str:
    for lang in languages:
        if lang and lang.replace("-", "_").split("_")[0].lower() in table:
            return table[lang.replace("-", "_").split("_")[0].lower()]
    return table["en"]


# --- validation ------------------------------------------------------------------------------------------

def problems(d: dict, bad) -> None:
    """Report every problem of a flow definition through ``bad(pointer, detail)``."""
    for name in d:
        if name not in ("trigger", "start", "steps", "expires_after_minutes"):
            bad(f"/definition/{name}", "unknown field for a flow; use trigger, start, steps, expires_after_minutes")
    trigger = d.get("trigger")
    if trigger is not None:
        if not isinstance(trigger, dict):
            bad("/definition/trigger", "an object like a keyword rule's: match, keywords or pattern, language")
        else:
            for name in trigger:
                if name not in ("match", "keywords", "pattern", "language"):
                    bad(f"/definition/trigger/{name}", "unknown field; use match, keywords, pattern, language")
            text_match.trigger_problems(trigger, "/definition/trigger", bad)
    minutes = d.get("expires_after_minutes")
    if minutes is not None and (not isinstance(minutes, int) or isinstance(minutes, bool) or not 1 <= minutes <= 10080):
        bad("/definition/expires_after_minutes", "whole minutes from 1 to 10080 (a week), or leave it out")
    steps = d.get("steps")
    if not isinstance(steps, dict) or not steps:
        bad("/definition/steps", "required: an object of step name → step (menu, question, message, handoff)")
        return
    if len(steps) > MAX_STEPS:
        bad("/definition/steps", f"at most {MAX_STEPS} steps")
    start = d.get("start")
    if not isinstance(start, str) or start not in steps:
        bad("/definition/start", "required: the name of the first step (one of steps)")
    for name, step in steps.items():
        p = f"/definition/steps/{name}"
        if not NAME.fullmatch(name):
            bad(p, "a step name is 1 to 40 letters, digits, _ or -")
        _step(step, p, steps, bad)
    if isinstance(start, str) and start in steps:
        reachable = _reachable(steps, start)
        for name in steps:
            if name not in reachable:
                bad(f"/definition/steps/{name}", f"unreachable: no option or next leads here from {start!r}")
        loop = _message_loop(steps, start)
        if loop:
            bad(f"/definition/steps/{loop[0]}", "these message steps lead to each other without asking anything: "
                                                 + " → ".join(loop + [loop[0]]))


def _text(value, p, bad, *, required: bool, limit: int) -> None:
    if value is None:
        if required:
            bad(p, "required: a text, or an object of language → text")
        return
    items = value.items() if isinstance(value, dict) else [(None, value)]
    if isinstance(value, dict) and not value:
        bad(p, "required: a text, or an object of language → text")
    for lang, text in items:
        where = p + (f"/{lang}" if lang else "")
        if not isinstance(text, str) or not text.strip():
            bad(where, "a non-empty text")
        elif len(text) > limit:
            bad(where, f"at most {limit} characters")


_STEP_FIELDS = {
    "menu": ("type", "text", "button", "options"),
    "question": ("type", "text", "attribute", "pattern", "invalid", "next"),
    "message": ("type", "text", "next"),
    "handoff": ("type", "text", "team"),
}


def _step(step, p, steps: dict, bad) -> None:
    if not isinstance(step, dict):
        bad(p, "a step is an object with a type (menu, question, message, handoff)")
        return
    kind = step.get("type")
    if kind not in STEP_TYPES:
        bad(f"{p}/type", f"required: one of {', '.join(STEP_TYPES)}")
        return
    for name in step:
        if name not in _STEP_FIELDS[kind]:
            bad(f"{p}/{name}", f"unknown field for a {kind} step; use {', '.join(_STEP_FIELDS[kind])}")
    _text(step.get("text"), f"{p}/text", bad, required=kind != "handoff",
          limit=MAX_BODY if kind == "menu" else text_match.MAX_TEXT)
    nxt = step.get("next")
    if nxt is not None and nxt not in steps:
        bad(f"{p}/next", f"no step named {nxt!r}")
    if kind == "menu":
        _text(step.get("button"), f"{p}/button", bad, required=False, limit=MAX_BUTTON_LABEL)
        options = step.get("options")
        if not isinstance(options, list) or not 1 <= len(options) <= MAX_OPTIONS:
            bad(f"{p}/options", f"required: a list of 1 to {MAX_OPTIONS} options (a WhatsApp list holds 10)")
            return
        seen = set()
        for i, o in enumerate(options):
            op = f"{p}/options/{i}"
            if not isinstance(o, dict):
                bad(op, "an option is an object with id, title and next")
                continue
            for name in o:
                if name not in ("id", "title", "description", "next"):
                    bad(f"{op}/{name}", "unknown field; use id, title, description, next")
            oid = o.get("id")
            if not isinstance(oid, str) or not NAME.fullmatch(oid):
                bad(f"{op}/id", "required: 1 to 40 letters, digits, _ or -")
            elif oid in seen:
                bad(f"{op}/id", f"another option of this menu is {oid!r}")
            seen.add(oid)
            _text(o.get("title"), f"{op}/title", bad, required=True, limit=MAX_TITLE)
            _text(o.get("description"), f"{op}/description", bad, required=False, limit=MAX_DESCRIPTION)
            if o.get("next") not in steps:
                bad(f"{op}/next", "required: the step this option leads to")
    elif kind == "question":
        attr = step.get("attribute")
        if not isinstance(attr, str) or not text_match.ATTRIBUTE.fullmatch(attr) or attr == "tags":
            bad(f"{p}/attribute", "required: the contact attribute the answer is stored in (letters, digits, "
                                  "_ . -; at most 64; not 'tags')")
        pattern = step.get("pattern")
        if pattern is not None:
            if not isinstance(pattern, str) or not pattern or len(pattern) > text_match.MAX_PATTERN:
                bad(f"{p}/pattern", f"a regular expression of at most {text_match.MAX_PATTERN} characters")
            else:
                try:
                    re.compile(pattern)
                except re.error as exc:
                    bad(f"{p}/pattern", f"not a valid regular expression: {exc}")
        _text(step.get("invalid"), f"{p}/invalid", bad, required=False, limit=text_match.MAX_TEXT)
    elif kind == "handoff":
        team = step.get("team")
        if team is not None and not text_match.valid_team(team):
            bad(f"{p}/team", "a team name of 1 to 64 characters")


def _edges(step) -> list[str]:
    if not isinstance(step, dict):
        return []
    out = [step["next"]] if isinstance(step.get("next"), str) else []
    for o in step.get("options") or []:
        if isinstance(o, dict) and isinstance(o.get("next"), str):
            out.append(o["next"])
    return out


def _reachable(steps: dict, start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        name = todo.pop()
        if name in seen or name not in steps:
            continue
        seen.add(name)
        todo.extend(_edges(steps[name]))
    return seen


def _message_loop(steps: dict, start: str) -> list[str] | None:
    """A cycle of message steps (each leads to the next without waiting for the customer), if any."""
    for first in steps:
        path, name = [], first
        while isinstance(steps.get(name), dict) and steps[name].get("type") == "message" and name not in path:
            path.append(name)
            name = steps[name].get("next")
        if name in path:
            return path[path.index(name):]
    return None


# --- how a step looks on a channel ---------------------------------------------------------------------

def payload(flow_id, step: str, option: str) -> str:
    return f"{PAYLOAD_PREFIX}{flow_id}:{step}:{option}"


def parse_payload(value: str | None) -> tuple[str, str, str] | None:
    """(flow id, step, option) of a tapped flow option, or None."""
    if not value or not value.startswith(PAYLOAD_PREFIX):
        return None
    parts = value[len(PAYLOAD_PREFIX):].split(":")
    return tuple(parts) if len(parts) == 3 and all(parts) else None


def fill(text: str, profile: dict) -> str:
    """``{attribute}`` replaced by the contact's value (a missing one is left as written)."""
    def one(m):
        value = profile.get(m.group(1))
        return m.group(0) if value is None or isinstance(value, (dict, list)) else str(value)
    return PLACEHOLDER.sub(one, text)


def render_menu(channel_kind: str, kinds: frozenset, flow_id, name: str, step: dict, languages: list,
                profile: dict, prefix: str | None = None) -> tuple[str, dict]:
    """(message kind, content) of a menu step on this channel, as ``outbound`` takes them."""
    body = fill(localised(step["text"], languages), profile)
    if prefix:
        body = f"{prefix}\n\n{body}"
    options = step["options"]
    titles = [localised(o["title"], languages) for o in options]
    if "interactive" in kinds and channel_kind == "whatsapp":
        if len(options) <= WHATSAPP_BUTTONS:
            return "interactive", {"type": "button", "body": body, "buttons": [
                {"id": payload(flow_id, name, o["id"]), "title": t} for o, t in zip(options, titles)]}
        rows = []
        for o, t in zip(options, titles):
            row = {"id": payload(flow_id, name, o["id"]), "title": t}
            if o.get("description"):
                row["description"] = localised(o["description"], languages)
            rows.append(row)
        label = localised(step.get("button"), languages) if step.get("button") else builtin(_LIST_BUTTON, languages)
        return "interactive", {"type": "list", "body": body, "button": label, "sections": [{"rows": rows}]}
    if "interactive" in kinds:
        # Messenger and Instagram show interactive buttons as quick replies.
        return "interactive", {"type": "button", "body": body, "buttons": [
            {"id": payload(flow_id, name, o["id"]), "title": t} for o, t in zip(options, titles)]}
    lines = [f"{i}. {t}" for i, t in enumerate(titles, 1)]
    return "text", {"body": f"{body}\n\n" + "\n".join(lines) + f"\n\n{builtin(_NUMBER_HINT, languages)}"}


def not_understood(languages: list) -> str:
    return builtin(_NOT_UNDERSTOOD, languages)


def invalid_answer(step: dict, languages: list) -> str:
    return localised(step["invalid"], languages) if step.get("invalid") else builtin(_INVALID_ANSWER, languages)


# --- reading an answer -----------------------------------------------------------------------------------

_NUMBER = re.compile(r"\s*(?:n[ºo°.]?\s*)?(\d{1,2})\s*[.)]?\s*", re.IGNORECASE)


def chosen_option(step: dict, text: str | None) -> dict | None:
    """The option a typed answer picks: its number, or its title or id (in any language), ignoring case,
    accents and surrounding punctuation."""
    if not text or len(text) > MAX_ANSWER:
        return None
    options = step["options"]
    number = _NUMBER.fullmatch(text)
    if number:
        n = int(number.group(1))
        return options[n - 1] if 1 <= n <= len(options) else None
    folded = text_match.fold(text)
    for o in options:
        titles = o["title"].values() if isinstance(o["title"], dict) else [o["title"]]
        if folded == text_match.fold(o["id"]) or any(folded == text_match.fold(t) for t in titles):
            return o
    return None


def valid_answer(step: dict, text: str | None) -> str | None:
    """The answer to store for a question step, or None when it does not fit."""
    answer = (text or "").strip()
    if not answer or len(answer) > MAX_ANSWER:
        return None
    pattern = step.get("pattern")
    if pattern:
        try:
            if re.fullmatch(pattern, answer) is None:
                return None
        except re.error:
            return None
    return answer
