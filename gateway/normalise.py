"""Apply a provider's normalised events to the account's contacts, threads, messages, statuses and notices.

Everything here runs inside the worker's transaction for a batch of stored raw
events (see ``inbound._process``): an event is applied completely or not at all,
and applying one twice changes nothing the second time (provider ids are unique
per channel, statuses only move forward, history rows are deduplicated).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gateway import channels, consent, contacts, keystore, keywords, media, merges, messages, notices, thread_events
from gateway import routing
from gateway.automation import engine as automation
from gateway.contacts import InvalidAddress
from gateway.providers import IdentityChange, InboundMessage, Notice, StatusUpdate, Unsupported
from templates_catalog import updates as template_updates
from templates_catalog.updates import TOPICS as TEMPLATE_TOPICS

# A later message that points at an earlier one leaves a trace on it.
RELATED_EVENTS = {"reaction": "reacted", "edit": "edited", "revoke": "deleted"}
# Channel notices kept on the channel itself (the latest one per topic).
HEALTH_TOPICS = frozenset({"phone_quality", "account_update", "phone_name", "business_capability",
                           "account_alerts", "account_review_update", "security"})


@dataclass
class Outcome:
    media_ids: list = field(default_factory=list)
    review: list[str] = field(default_factory=list)
    send_ids: list = field(default_factory=list)   # keyword and automated replies, enqueued once the batch commits
    contact_ids: list = field(default_factory=list)   # the customers of the messages applied (erasure reaches
                                                      # their raw webhooks through these)
    replies: list = field(default_factory=list)       # (contact id, when) of customers' messages: campaign replies


def _address(kind: str, address: str) -> str:
    try:
        return contacts.normalise_address(kind, address)
    except InvalidAddress:
        return address.strip()   # kept as the provider gave it: an odd sender is still a customer


def _message(conn, account_id, channel: dict, ev: InboundMessage, out: Outcome) -> None:
    identities = [(ev.sender_kind, _address(ev.sender_kind, ev.sender))]
    identities += [(k, _address(k, a)) for k, a in ev.aliases if (k, _address(k, a)) not in identities]
    known = None
    if len(identities) == 1:   # the common case: a returning customer known by one address
        known = contacts.resolve_with_thread(conn, account_id=account_id, kind=identities[0][0],
                                             address=identities[0][1], channel_id=channel["id"])
    if known is not None:
        contact_id, thread_id = known["contact_id"], known["thread_id"]
        key = keystore.load_key(conn, account_id=account_id, key_id=known["data_key_id"])
    else:
        contact_id = merges.resolve_sender(conn, account_id=account_id, identities=identities, name=ev.sender_name,
                                           channel_kind=channel["kind"])
        thread_id = key = None
    out.contact_ids.append(contact_id)
    outbound = ev.direction == "outbound"
    recorded = messages.record_message(
        conn, account_id=account_id, contact_id=contact_id, channel_id=channel["id"],
        direction=ev.direction, body=ev.text, kind=ev.kind, status="sent" if outbound else "received",
        provider_message_id=ev.provider_message_id, content=_content(ev), reply_to_provider_id=ev.reply_to,
        occurred_at=ev.occurred_at, thread_id=thread_id, key=key, announce=None if outbound else channel["kind"])
    if recorded is None:
        return   # the same message arrived before (another batch, a redelivery with a new body hash)
    if ev.reply_to and ev.kind in RELATED_EVENTS:
        messages.mark_related(conn, account_id=account_id, channel_id=channel["id"],
                              provider_message_id=ev.reply_to, event=RELATED_EVENTS[ev.kind],
                              by_message_id=recorded["id"])
    for position, item in enumerate(ev.media):
        out.media_ids.append(media.announce(conn, account_id=account_id, message_id=recorded["id"],
                                            contact_id=contact_id, channel_id=channel["id"],
                                            position=position, item=item))
    if not outbound:
        out.replies.append((contact_id, recorded["occurred_at"]))
        # A new or reopened conversation goes to a team and an agent (gateway/routing.py) before automations run.
        routing.on_customer_message(conn, account_id=account_id, thread_id=recorded["thread_id"],
                                    contact_id=contact_id, channel=channel, text=ev.text, kind=ev.kind,
                                    content=ev.content)
        handled = keywords.on_inbound(conn, account_id=account_id, channel=channel, contact_id=contact_id,
                                      message=recorded, kind=ev.kind, text=ev.text, content=ev.content)
        out.send_ids += handled
        # Automated replies come after the consent layer, and never on a message it acted on (STOP, HELP…).
        out.send_ids += automation.on_inbound(conn, account_id=account_id, channel=channel, contact_id=contact_id,
                                              thread_id=recorded["thread_id"], message=recorded, kind=ev.kind,
                                              text=ev.text, content=ev.content,
                                              consent_keyword=getattr(handled, "family", None))
        if recorded.get("status_before") in ("resolved", "snoozed", "pending"):
            _reopened(conn, account_id, recorded)


def _reopened(conn, account_id, recorded: dict) -> None:
    """The customer's message reopened the thread: history says so, unless what the message was (a survey
    answer) put the thread straight back (gateway/surveys.py keeps it resolved)."""
    now = conn.execute("SELECT status FROM threads WHERE account_id = %s AND id = %s",
                       (account_id, recorded["thread_id"])).fetchone()
    if now is not None and now["status"] == "open":
        thread_events.record(conn, account_id=account_id, thread_id=recorded["thread_id"], kind="status",
                             actor="customer", detail={"from": recorded["status_before"], "to": "open"})


def _content(ev: InboundMessage) -> dict:
    content = dict(ev.content)
    if ev.sender_name:
        content.setdefault("profile_name", ev.sender_name)
    if ev.timestamp is not None:
        content.setdefault("provider_timestamp", ev.timestamp)
    return content


def _status(conn, account_id, channel: dict, ev: StatusUpdate, out: Outcome) -> None:
    detail = dict(ev.detail)
    if ev.callback_data is not None:
        detail["callback_data"] = ev.callback_data
    if ev.provider_message_id:
        messages.apply_status(conn, account_id=account_id, channel_id=channel["id"],
                              provider_message_id=ev.provider_message_id, status=ev.status,
                              error_code=ev.error_code, error_reason=ev.error_reason, detail=detail,
                              provider_ts=ev.timestamp, occurred_at=ev.occurred_at)
    elif ev.watermark is not None and ev.recipient and ev.recipient_kind:
        contact_id = contacts.contact_id_for(conn, account_id=account_id, kind=ev.recipient_kind,
                                             address=_address(ev.recipient_kind, ev.recipient))
        if contact_id is not None:
            messages.apply_watermark(conn, account_id=account_id, channel_id=channel["id"], contact_id=contact_id,
                                     status=ev.status, watermark=ev.watermark, provider_ts=ev.timestamp)
    else:
        out.review.append("status:no-message-id")


def _identity_change(conn, account_id, channel: dict, ev: IdentityChange, out: Outcome) -> None:
    result = contacts.move_identity(conn, account_id=account_id, kind=ev.kind, old=_address(ev.kind, ev.old),
                                    new=_address(ev.kind, ev.new), actor="inbound")
    if result == "conflict":
        out.review.append("identity-change:new-address-belongs-to-another-contact")


def _notice(conn, account_id, channel: dict, ev: Notice, out: Outcome) -> None:
    contact_id = None
    if ev.subject is not None:
        kind, address = ev.subject
        contact_id = contacts.contact_id_for(conn, account_id=account_id, kind=kind, address=_address(kind, address))
        preference = _marketing_preference(ev)
        if contact_id is None and preference is not None:
            # A stop from someone never written to still binds a later import of that number, and a
            # signup link brings a new subscriber: either way the ledger needs the contact.
            contact_id = merges.resolve_sender(conn, account_id=account_id,
                                               identities=[(kind, _address(kind, address))], name=None,
                                               channel_kind=channel["kind"])
        if contact_id is not None and preference is not None:
            consent.record(conn, account_id=account_id, contact_id=contact_id, channel_kind=channel["kind"],
                           purpose="marketing", action=preference, source="provider", occurred_at=ev.occurred_at,
                           actor="provider", proof=_preference_proof(ev))
    notices.record(conn, account_id=account_id, channel_id=channel["id"], topic=ev.topic, detail=ev.detail,
                   contact_id=contact_id, occurred_at=ev.occurred_at)
    if ev.topic in HEALTH_TOPICS:
        channels.record_health(conn, account_id=account_id, channel_id=channel["id"], topic=ev.topic,
                               detail=ev.detail)
    if ev.topic in TEMPLATE_TOPICS:
        template_updates.apply(conn, account_id=account_id, topic=ev.topic, detail=ev.detail, channel_id=channel["id"])
        if ev.topic == "template_status" and str(ev.detail.get("event") or "").upper() in _STOPS_CAMPAIGNS:
            _pause_campaigns(conn, account_id, ev.detail)


# Template statuses that stop sends: the campaigns using the template pause at once, and say why.
_STOPS_CAMPAIGNS = frozenset({"PAUSED", "DISABLED", "PENDING_DELETION", "DELETED", "REJECTED"})


def _pause_campaigns(conn, account_id, detail: dict) -> None:
    from gateway.campaigns import store as campaign_store
    from templates_catalog import store as template_store
    row = template_store.get_by_meta_id(conn, account_id=account_id, meta_id=detail.get("message_template_id"))
    name = row["name"] if row else detail.get("message_template_name")
    if name:
        campaign_store.pause_using_template(conn, account_id=account_id, waba_id=row["waba_id"] if row else None,
                                            name=name, status=str(detail["event"]).upper())


# WhatsApp's user_preferences values (the user's own marketing controls in the app, or a signup link).
_PREFERENCE_ACTIONS = {"stop": "withdrawn", "resume": "granted", "signup": "granted"}


def _marketing_preference(ev: Notice) -> str | None:
    if ev.topic != "user_preferences" or ev.detail.get("category") != "marketing_messages":
        return None
    return _PREFERENCE_ACTIONS.get(str(ev.detail.get("value") or "").lower())


def _preference_proof(ev: Notice) -> dict:
    given = {"text": ev.detail.get("detail"), "value": ev.detail.get("value"),
             "signup_id": ev.detail.get("signup_id"), "provider_event": ev.topic}
    return {k: v for k, v in given.items() if v is not None}


def _unsupported(conn, account_id, channel, ev: Unsupported, out: Outcome) -> None:
    out.review.append(ev.what)


_APPLY = {InboundMessage: _message, StatusUpdate: _status, IdentityChange: _identity_change,
          Notice: _notice, Unsupported: _unsupported}


def apply_all(conn, account_id, channel: dict, events: list) -> Outcome:
    """Apply every event. One body can address several numbers of one business account (one WABA):
    each event goes to the account's channel it names. An id the account has no channel for (a Twilio
    Messaging Service SID beside the number the channel is registered by, say) stays on the channel the
    request was routed to and verified with."""
    out = Outcome()
    siblings = {channel["external_id"]: channel}
    for ev in events:
        apply = _APPLY.get(type(ev))
        if apply is None:
            out.review.append(f"unknown-event:{type(ev).__name__}")
            continue
        target = channel
        named = getattr(ev, "external_id", None)
        if named and named != channel["external_id"] and named != channel.get("group_id"):
            if named not in siblings:
                siblings[named] = channels.sibling(conn, account_id=account_id, kind=channel["kind"],
                                                   external_id=named)
            target = siblings[named] or channel
        apply(conn, account_id, target, ev, out)
    return out
