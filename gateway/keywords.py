"""Opt-out, opt-in and help keywords on inbound messages of every channel.

A message is a keyword only when the whole of it is one (trimmed, any case, accents
and surrounding punctuation ignored): "STOP", "Baja", "arrêt!" are; "please don't
stop" is not. The families:

- ``stop``: withdraws every purpose (``all``) on the channel kind it came on, then
  confirms (purpose ``opt_out_confirmation``, which the send gate always lets through).
- ``stop_marketing``: withdraws marketing only. A WhatsApp template quick-reply button
  (inbound kind ``button``) whose payload or text is a ``stop`` or ``stop_marketing``
  word counts here: Meta's marketing templates carry a "Stop promotions" button, and
  tapping it is about promotions, not about the conversation.
- ``start``: acts only for a contact who has opted out on that channel (a plain "yes"
  in a conversation is not a consent change). It grants back what a STOP withdrew
  (``all`` on that channel kind), never marketing, which needs a grant with its own
  proof, nor a purpose withdrawn on its own.
- ``help``: answers with the help text, even to a contact who opted out (carriers
  require HELP to be answered).

Twilio answers STOP/START/HELP itself (its default keywords on SMS, or any keyword
configured in Advanced Opt-Out, which adds ``OptOutType`` to the webhook; the Twilio
parser puts either in ``content["opt_out"]``): the gateway then records the event
and sends no second reply.

Replies go through the one send gate in the inbound worker's transaction; their ids
are enqueued after it commits (``inbound._process``). Their language: the contact's,
else the keyword's (BAJA is Spanish), else the account's default, else English.

The default lists follow Twilio's default keywords (STOP, STOPALL, UNSUBSCRIBE,
CANCEL, END, QUIT, REVOKE, OPTOUT / START, UNSTOP, YES / HELP, INFO) and their usual
equivalents in Spanish, Portuguese, French, German and Italian. Each account can
replace any language's list or reply (``PUT /v1/consent-settings``).
"""
from __future__ import annotations

import logging
import threading
import time
import unicodedata
from dataclasses import dataclass

from gateway import consent, contacts, outbound, send_gate

log = logging.getLogger("gateway.keywords")

FAMILIES = ("stop", "stop_marketing", "start", "help")
MAX_KEYWORD = 40
# Anything longer is a sentence, not a keyword: skip it before reading the account's settings.
_MAX_CANDIDATE = 80

DEFAULT_KEYWORDS: dict[str, dict[str, list[str]]] = {
    "stop": {
        "en": ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "OPT OUT"],
        "es": ["BAJA", "PARAR", "CANCELAR", "DETENER"],
        "pt": ["SAIR", "PARAR", "CANCELAR"],
        "fr": ["ARRÊT", "STOP", "DÉSABONNER"],
        "de": ["STOPP", "ABMELDEN"],
        "it": ["ANNULLA", "STOP", "BASTA"],
    },
    "stop_marketing": {
        "en": ["STOP PROMOTIONS", "STOP PROMOTION"],
        "es": ["DETENER PROMOCIONES", "PARAR PROMOCIONES"],
        "pt": ["PARAR PROMOÇÕES"],
        "fr": ["ARRÊTER LES PROMOTIONS"],
        "de": ["WERBUNG STOPPEN"],
        "it": ["INTERROMPI PROMOZIONI"],
    },
    "start": {
        "en": ["START", "UNSTOP", "YES", "SUBSCRIBE"],
        "es": ["ALTA", "SÍ"],
        "pt": ["SIM", "VOLTAR"],
        "fr": ["OUI"],
        "de": ["JA", "START"],
        "it": ["SÌ"],
    },
    "help": {
        "en": ["HELP", "INFO"],
        "es": ["AYUDA"],
        "pt": ["AJUDA"],
        "fr": ["AIDE"],
        "de": ["HILFE"],
        "it": ["AIUTO"],
    },
}

DEFAULT_REPLIES: dict[str, dict[str, str]] = {
    "stop": {
        "en": "You have unsubscribed and will get no more messages from us here. Reply START to subscribe again.",
        "es": "Te has dado de baja y no recibirás más mensajes nuestros por aquí. Responde ALTA para volver.",
        "pt": "Você cancelou a inscrição e não receberá mais mensagens nossas aqui. Responda VOLTAR para voltar.",
        "fr": "Vous êtes désinscrit et ne recevrez plus de messages de notre part ici. Répondez OUI pour revenir.",
        "de": "Sie sind abgemeldet und erhalten hier keine Nachrichten mehr von uns. Antworten Sie START, um "
              "sich wieder anzumelden.",
        "it": "Hai annullato l'iscrizione e non riceverai più messaggi da noi qui. Rispondi SI per tornare.",
    },
    "stop_marketing": {
        "en": "You will get no more promotions from us. Messages about your orders and requests still arrive.",
        "es": "No recibirás más promociones nuestras. Seguirás recibiendo mensajes sobre tus pedidos y consultas.",
        "pt": "Você não receberá mais promoções nossas. Mensagens sobre seus pedidos continuam chegando.",
        "fr": "Vous ne recevrez plus de promotions de notre part. Les messages sur vos commandes continuent.",
        "de": "Sie erhalten keine Werbung mehr von uns. Nachrichten zu Ihren Bestellungen erhalten Sie weiterhin.",
        "it": "Non riceverai più promozioni da noi. I messaggi sui tuoi ordini continueranno ad arrivare.",
    },
    "start": {
        "en": "You are subscribed again. Reply STOP to unsubscribe.",
        "es": "Te has vuelto a suscribir. Responde BAJA para darte de baja.",
        "pt": "Você se inscreveu novamente. Responda SAIR para cancelar.",
        "fr": "Vous êtes à nouveau abonné. Répondez ARRET pour vous désabonner.",
        "de": "Sie sind wieder angemeldet. Antworten Sie STOPP, um sich abzumelden.",
        "it": "Sei di nuovo iscritto. Rispondi ANNULLA per annullare l'iscrizione.",
    },
    "help": {
        "en": "Reply STOP to unsubscribe or START to subscribe again. For anything else, just write to us here.",
        "es": "Responde BAJA para darte de baja o ALTA para volver. Para cualquier otra cosa, escríbenos aquí.",
        "pt": "Responda SAIR para cancelar ou VOLTAR para voltar. Para outra coisa, escreva-nos aqui.",
        "fr": "Répondez ARRET pour vous désabonner ou OUI pour revenir. Pour le reste, écrivez-nous ici.",
        "de": "Antworten Sie STOPP zum Abmelden oder START zum Anmelden. Für alles andere schreiben Sie uns hier.",
        "it": "Rispondi ANNULLA per annullare l'iscrizione o SI per tornare. Per altro, scrivici qui.",
    },
}

# What the reply to each family is sent as: a STOP's confirmation must pass even though the contact just
# opted out; HELP is answered whatever the contact's state; START's reply follows the opt-in it records.
_REPLY_PURPOSE = {"stop": "opt_out_confirmation", "stop_marketing": "opt_out_confirmation",
                  "help": "opt_out_confirmation", "start": "transactional"}
_TRIM = " \t\r\n.,;:!?¡¿…\"'«»“”‘’()[]*_~-"


def normalise(text: str) -> str:
    """Case-, accent- and spacing-insensitive form: "  Arrêt ! " → "arret"."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(bare.casefold().split()).strip(_TRIM)


def index(keywords: dict[str, dict[str, list[str]]]) -> dict[str, tuple[str, tuple[str, ...]]]:
    """normalised keyword → (family, languages it belongs to)."""
    out: dict[str, tuple[str, tuple[str, ...]]] = {}
    for family in FAMILIES:
        for lang, words in (keywords.get(family) or {}).items():
            for word in words:
                norm = normalise(word)
                if not norm:
                    continue
                fam, langs = out.get(norm, (family, ()))
                if fam == family and lang not in langs:
                    out[norm] = (family, langs + (lang,))
    return out


def clashes(keywords: dict[str, dict[str, list[str]]]) -> dict[str, list[str]]:
    """Keywords listed under two families (which one a customer meant could not be told)."""
    seen: dict[str, list[str]] = {}
    for family in FAMILIES:
        for words in (keywords.get(family) or {}).values():
            for word in words:
                norm = normalise(word)
                if norm and family not in seen.setdefault(norm, []):
                    seen[norm].append(family)
    return {w: fams for w, fams in seen.items() if len(fams) > 1}


@dataclass(frozen=True)
class Match:
    family: str
    languages: tuple[str, ...]
    keyword: str              # normalised


def match(text: str | None, table: dict[str, tuple[str, tuple[str, ...]]]) -> Match | None:
    if not text or len(text) > _MAX_CANDIDATE:
        return None
    norm = normalise(text)
    hit = table.get(norm)
    return Match(hit[0], hit[1], norm) if hit else None


# --- the account's settings, cached per process ---------------------------------------------------
# Every short inbound message is checked, and the settings change rarely: a change made through the API
# is seen at once by the process that made it and within _SETTINGS_TTL_S by the others.
_SETTINGS_TTL_S = 30.0
_settings: dict[str, tuple[float, dict, dict]] = {}
_settings_lock = threading.Lock()


def forget_settings(account_id) -> None:
    with _settings_lock:
        _settings.pop(str(account_id), None)


def account_settings(conn, account_id) -> tuple[dict, dict]:
    """(effective settings, keyword index) of the account."""
    hit = _settings.get(str(account_id))
    if hit is not None and hit[0] > time.monotonic():
        return hit[1], hit[2]
    effective = consent.effective_settings(consent.stored_settings(conn, account_id=account_id))
    table = index(effective["keywords"])
    with _settings_lock:
        _settings[str(account_id)] = (time.monotonic() + _SETTINGS_TTL_S, effective, table)
    return effective, table


# --- applying them to an inbound message ----------------------------------------------------------

def _candidates(kind: str, text: str | None, content: dict) -> list[str]:
    """The texts a customer's message can be a keyword by: what they typed, or the button they tapped."""
    out = [text] if kind in ("text", "quick_reply", "postback", "button", "interactive") and text else []
    button = content.get("button") if isinstance(content.get("button"), dict) else {}
    for value in (button.get("payload"), button.get("text"), content.get("ButtonPayload"),
                  content.get("ButtonText"), content.get("payload")):
        if isinstance(value, str):
            out.append(value)
    for name in ("quick_reply", "interactive"):
        obj = content.get(name)
        if isinstance(obj, dict):
            if isinstance(obj.get("payload"), str):
                out.append(obj["payload"])
            reply = obj.get("button_reply")
            if isinstance(reply, dict):
                out += [v for v in (reply.get("id"), reply.get("title")) if isinstance(v, str)]
    return out


def _reply_text(settings: dict, family: str, languages: list[str]) -> tuple[str | None, str | None]:
    replies = settings["replies"].get(family) or {}
    for lang in languages:
        if not lang:
            continue
        for candidate in (lang, lang.replace("-", "_").split("_")[0].lower()):
            if replies.get(candidate):
                return replies[candidate], candidate
    if replies:
        lang = next(iter(replies))
        return replies[lang], lang
    return None, None


class Handled(list):
    """The ids of replies to enqueue, and ``family``: the keyword family that acted on the message (None when it
    is conversation). Automation stays silent on a message the consent layer acted on, replied or not."""
    family: str | None = None


def _handled(ids: list, family: str | None) -> Handled:
    out = Handled(ids)
    out.family = family
    return out


def on_inbound(conn, *, account_id, channel: dict, contact_id, message: dict, kind: str, text: str | None,
               content: dict) -> Handled:
    """Apply keywords to one newly recorded inbound message; returns the ids of replies to enqueue after commit."""
    provider_said = content.get("opt_out") if channel["kind"] == "twilio" else None
    if provider_said:
        if str(provider_said).upper() not in ("STOP", "START", "HELP"):
            return _handled([], None)
        found = Match(str(provider_said).lower(), (), normalise(text or ""))
    else:
        candidates = [c for c in _candidates(kind, text, content) if len(c) <= _MAX_CANDIDATE]
        if not candidates:
            return _handled([], None)
        settings, table = account_settings(conn, account_id)
        found = next((m for m in (match(c, table) for c in candidates) if m is not None), None)
        if found is None:
            return _handled([], None)
    family = found.family
    if kind == "button" and family in ("stop", "stop_marketing"):
        family = "stop_marketing"
    settings, _ = account_settings(conn, account_id)
    proof = {"text": text, "message_id": str(message["id"]), "keyword": found.keyword}
    if provider_said:
        proof["handled_by"] = "twilio"
    if kind == "button":
        tapped = content.get("button") if isinstance(content.get("button"), dict) else {}
        payload = tapped.get("payload") or content.get("ButtonPayload")
        if payload:
            proof["button_payload"] = payload
    occurred = message.get("occurred_at")
    common = dict(account_id=account_id, contact_id=contact_id, channel_kind=channel["kind"], source="keyword",
                  proof=proof, occurred_at=occurred, actor="inbound")

    if family == "stop":
        consent.record(conn, purpose=consent.ALL, action="withdrawn", **common)
    elif family == "stop_marketing":
        consent.record(conn, purpose="marketing", action="withdrawn", **common)
    elif family == "start":
        state = consent.gate_state(conn, account_id=account_id, contact_id=contact_id, channel_kind=channel["kind"])
        back = consent.start_restores(state)
        if not back:
            return _handled([], None)   # not opted out: "yes" is conversation, not consent
        for purpose in back:
            consent.record(conn, purpose=purpose, action="granted", **common)
    if provider_said:
        return _handled([], family)       # Twilio has answered the customer already
    return _handled(_reply(conn, account_id, channel, contact_id, message, family, found.languages, settings),
                    family)


def _reply(conn, account_id, channel, contact_id, message, family, languages, settings) -> list:
    contact_language, default = contacts.languages(conn, account_id=account_id, contact_id=contact_id)
    preferred = [contact_language, *languages, default, "en"]
    body, _lang = _reply_text(settings, family, preferred)
    if not body:
        return []
    try:
        with conn.transaction():   # a reply that cannot go must not undo the consent event before it
            accepted, created = outbound.accept(
                conn, account_id, channel_id=channel["id"], kind="text", content={"body": body},
                contact_id=contact_id, purpose=_REPLY_PURPOSE[family],
                idempotency_key=f"keyword-reply:{message['id']}")
    except send_gate.Refused as exc:
        log.info("keyword reply refused by the send gate", extra={"rule": exc.rule, "family": family})
        return []
    except Exception as exc:
        log.warning("keyword reply not queued", extra={"error": type(exc).__name__, "family": family})
        return []
    return [accepted["id"]] if created else []
