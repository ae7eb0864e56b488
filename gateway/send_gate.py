"""The one send gate (DESIGN invariant 4): every outbound message, whatever asked for it, passes here.

``check`` raises ``Refused`` naming the rule; callers turn it into a problem
(API), a recorded skip (campaigns) or a log line (automation). Nothing is
written before the gate has passed, so a refusal leaves no row behind.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from gateway import messages

# Messenger's HUMAN_AGENT tag lets a person answer up to 7 days after the customer's last message.
HUMAN_AGENT_WINDOW = timedelta(days=7)
# Kinds that are not conversation content: allowed whatever the window.
WINDOWLESS = frozenset({"template", "read"})


@dataclass
class Refused(Exception):
    rule: str                 # machine-readable, becomes the problem type
    status: int
    detail: str
    extra: dict = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.rule}: {self.detail}"


@dataclass(frozen=True)
class Request:
    channel: dict             # id, kind, status, paused_reason, has_credentials
    contact_id: object
    kind: str
    content: dict
    purpose: str = "transactional"
    tag: str | None = None


def capabilities(channel_kind: str) -> dict:
    from webhooks import registry  # providers declare what they can send
    provider = registry.get(channel_kind)
    return dict(getattr(provider, "capabilities", {}) or {})


def check(conn, account_id, req: Request, *, state: tuple[dict[str, str], dict | None],
          now: datetime | None = None, memo: dict | None = None) -> dict | None:
    """Pass (returning the contact's thread on the channel, if any, for the caller to reuse) or raise Refused.

    ``state`` is (latest consent action by purpose, thread) as the caller read them in this transaction
    (``outbound.send_contexts`` reads them for a whole batch in one query)."""
    now = now or datetime.now(timezone.utc)
    channel = req.channel
    if channel["status"] == "paused":
        raise Refused("channel_paused", 409, f"the channel is paused: {channel.get('paused_reason') or 'see it'}; "
                      "fix its credentials and set it active again (PATCH /v1/channels/{id})")
    if channel["status"] != "active":
        raise Refused("channel_disabled", 409, "the channel is disabled; enable it to send")
    caps = capabilities(channel["kind"])
    if caps.get("needs_credentials", True) and not channel.get("has_credentials"):
        raise Refused("channel_not_configured", 409, "the channel has no provider credentials; add them "
                      "(PATCH /v1/channels/{id})")
    kinds = caps.get("kinds")
    if kinds is not None and req.kind not in kinds:
        raise Refused("unsupported_message_type", 422, f"a {channel['kind']} channel cannot send '{req.kind}' "
                      f"messages; it sends {', '.join(sorted(kinds))}")
    limit = caps.get("max_text")
    text = (req.content.get("body") if req.kind == "text" else req.content.get("caption")) or ""
    if limit and len(text) > limit:
        raise Refused("text_too_long", 422, f"the text has {len(text)} characters; a {channel['kind']} message "
                      f"takes at most {limit}")

    consent, thread = state
    refusal = consent_refusal(consent, req.purpose, channel["kind"])
    if refusal is not None:
        raise refusal

    if caps.get("window") and req.kind not in WINDOWLESS:
        last = thread["last_inbound_at"] if thread else None
        window = messages.window(last, now)
        tagged_ok = (req.tag == "HUMAN_AGENT" and last is not None and last + HUMAN_AGENT_WINDOW > now
                     and "HUMAN_AGENT" in caps.get("tags", ()))
        if not window["open"] and not tagged_ok:
            hint = ("send an approved template instead" if "template" in (kinds or ())
                    else "a person may answer with the HUMAN_AGENT tag within 7 days" if caps.get("tags")
                    else "wait for the customer to write")
            raise Refused("outside_customer_service_window", 422,
                          "free-form messages can only be sent within 24 hours of the customer's last message; "
                          + hint, extra={"window_closed_at": window["closes_at"]})
    if req.kind == "template":
        from gateway import template_sends
        template_sends.check_whatsapp(conn, account_id, channel, req.contact_id, req.content, memo=memo)
    return thread


def consent_refusal(consent: dict[str, str], purpose: str, channel_kind: str) -> Refused | None:
    """The consent rule, on the state ``consent.state_sql`` reads (purpose → granted | withdrawn | lapsed, on
    this channel kind or all channels; ``all`` as a purpose is a channel-wide opt-out or its lifting).

    The confirmation of an opt-out always goes: the customer must learn that their STOP worked. A
    channel-wide opt-out stops everything else, transactional included, until START (or a recorded
    ``all`` grant). Marketing also needs a grant given after the last channel-wide opt-out; other
    purposes (transactional, surveys, an account's own) go unless withdrawn."""
    if purpose == "opt_out_confirmation":
        return None
    if consent.get("all") == "withdrawn":
        return Refused("opted_out", 403, f"the contact opted out of every message on {channel_kind}; nothing "
                       "is sent until they opt in again (START, or a recorded 'all' grant with proof)")
    if consent.get(purpose) == "withdrawn":
        return Refused("opted_out", 403, f"the contact opted out of {purpose} messages on {channel_kind}; "
                       f"nothing is sent for {purpose} until they grant it again")
    if purpose == "marketing" and consent.get("marketing") != "granted":
        lapsed = consent.get("marketing") == "lapsed"
        return Refused("no_marketing_consent", 403, "marketing messages need the contact's explicit opt-in"
                       + ("; the last one came before they opted out of everything, so it no longer counts"
                          if lapsed else "") + "; record a grant with its proof first "
                       "(POST /v1/contacts/{id}/consents)")
    return None


def sends_templates(channel: dict) -> bool:
    """Whether the channel's provider sends templates itself (WhatsApp); others get them as plain text."""
    kinds = capabilities(channel["kind"]).get("kinds")
    return kinds is None or "template" in kinds
