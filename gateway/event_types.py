"""Every event type the gateway emits: what its ``data`` holds and which API scope may receive it.

One registry serves three readers: webhook endpoints (an unknown type is a 422, a type the creating key may
not read is a 403), the OpenAPI document (each type is a webhook with its payload schema) and the tests
(an emitted event's data must load through its schema). ``data`` holds ids and facts, never personal data:
events outlive an erasure. Content an integrator needs (a message's text) is added when a delivery is
made, from the live record, and only for endpoints allowed to read it.
"""
from __future__ import annotations

from dataclasses import dataclass

from marshmallow import INCLUDE, Schema, fields


class _Data(Schema):
    class Meta:
        unknown = INCLUDE   # a newer gateway may add fields; consumers ignore what they do not know


class MessageReceived(_Data):
    message_id = fields.UUID(required=True)
    thread_id = fields.UUID(required=True)
    contact_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)
    channel_kind = fields.String(required=True, metadata={"description": "whatsapp, sms, messenger or instagram"})
    kind = fields.String(required=True, metadata={"description": "text, image, audio, video, document, sticker, "
                                                  "location, contacts, interactive, reaction, button, unsupported"})
    received_at = fields.DateTime(required=True)


class MessageSent(_Data):
    message_id = fields.UUID(required=True)
    thread_id = fields.UUID(required=True)
    contact_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)
    channel_kind = fields.String(required=True)
    kind = fields.String(required=True, metadata={"description": "text, template, image, audio, video, document, "
                                                  "sticker, location, interactive, reaction…: the message's type"})
    # Left out of the event: a WhatsApp message id encodes the recipient's phone number, and events outlive an
    # erasure. Optional, so a consumer that reads it still validates.
    provider_message_id = fields.String(allow_none=True, metadata={"description": "not sent: the provider's id "
                                        "is on the message (GET /v1/messages/{id})"})
    automated = fields.Boolean(required=True)
    campaign_id = fields.UUID(allow_none=True)


class MessageStatus(_Data):
    message_id = fields.UUID(required=True)
    thread_id = fields.UUID(required=True)
    contact_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)
    status = fields.String(required=True, metadata={"description": "delivered, read, played (a voice message) "
                                                    "or failed"})
    error_code = fields.String(allow_none=True, metadata={"description": "the provider's code when failed"})
    reason = fields.String(allow_none=True, metadata={"description": "why it failed, in words"})
    at = fields.DateTime(required=True)


class ThreadCreated(_Data):
    thread_id = fields.UUID(required=True)
    contact_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)


class ThreadStatusChanged(_Data):
    thread_id = fields.UUID(required=True)
    actor = fields.String(required=True, metadata={"description": "api key id, agent, customer or gateway"})
    to = fields.String(required=True, metadata={"description": "open, pending, snoozed or resolved"})
    from_ = fields.String(data_key="from", allow_none=True)
    reason = fields.String(allow_none=True)


class ThreadAssignment(_Data):
    thread_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)
    team_id = fields.UUID(allow_none=True)
    agent_id = fields.UUID(allow_none=True)
    previous_team_id = fields.UUID(allow_none=True)
    previous_agent_id = fields.UUID(allow_none=True)
    by = fields.String(allow_none=True)


class ThreadHandedOff(_Data):
    thread_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)
    reason = fields.String(allow_none=True)
    automation_id = fields.UUID(allow_none=True)


class ThreadHandedBack(_Data):
    thread_id = fields.UUID(required=True)
    channel_id = fields.UUID(required=True)


class ThreadNoteAdded(_Data):
    thread_id = fields.UUID(required=True)
    note_id = fields.UUID(required=True)


class ThreadUpdated(_Data):
    thread_id = fields.UUID(required=True)
    changed = fields.List(fields.String(), required=True)


class ContactCreated(_Data):
    contact_id = fields.UUID(required=True)
    source = fields.String(required=True, metadata={"description": "inbound, api or import"})
    channel_kind = fields.String(allow_none=True)


class ContactUpdated(_Data):
    contact_id = fields.UUID(required=True)
    changed = fields.List(fields.String(), required=True, metadata={"description": "names of the changed fields"})


class ContactMerged(_Data):
    contact_id = fields.UUID(required=True, metadata={"description": "the contact that remains"})
    merged_contact_id = fields.UUID(required=True, metadata={"description": "the contact merged into it"})
    reason = fields.String(allow_none=True)


class ContactErased(_Data):
    contact_id = fields.UUID(required=True)
    merged_contact_ids = fields.List(fields.UUID(), load_default=list)


class ConsentChanged(_Data):
    contact_id = fields.UUID(required=True)
    channel_kind = fields.String(required=True)
    purpose = fields.String(required=True, metadata={"description": "transactional, marketing, … (the account's)"})
    action = fields.String(required=True, metadata={"description": "granted or revoked"})
    source = fields.String(required=True)


class TemplateStatusChanged(_Data):
    template_id = fields.UUID(allow_none=True)
    channel_id = fields.UUID(allow_none=True)
    name = fields.String(required=True)
    language = fields.String(allow_none=True)
    status = fields.String(required=True, metadata={"description": "APPROVED, REJECTED, PAUSED, DISABLED, …"})
    previous_status = fields.String(allow_none=True)
    reason = fields.String(allow_none=True)


class CampaignStatusChanged(_Data):
    campaign_id = fields.UUID(required=True)
    state = fields.String(required=True)
    reason = fields.String(allow_none=True)
    by = fields.String(allow_none=True)


class SurveyAnswered(_Data):
    survey_id = fields.UUID(required=True, metadata={"description": "the survey request answered"})
    thread_id = fields.UUID(required=True)
    contact_id = fields.UUID(required=True)
    kind = fields.String(required=True, metadata={"description": "csat, nps or ces"})
    score = fields.Integer(required=True)


class ChannelStatusChanged(_Data):
    channel_id = fields.UUID(required=True)
    channel_kind = fields.String(required=True)
    status = fields.String(required=True, metadata={"description": "active, paused or disabled; or the health topic"})
    previous_status = fields.String(allow_none=True)
    reason = fields.String(allow_none=True, metadata={"description": "why; for a health topic, the provider's word "
                                                      "(FLAGGED, DISABLED_UPDATE, APPROVED…)"})
    previous_reason = fields.String(allow_none=True, metadata={"description": "a health topic's word before"})


@dataclass(frozen=True)
class EventType:
    name: str
    scope: str              # an endpoint's key must hold this scope to subscribe
    schema: type[Schema]
    description: str


_ALL = (
    EventType("message.received", "messages:read", MessageReceived, "A customer's message was stored."),
    EventType("message.sent", "messages:read", MessageSent, "The provider accepted a message the gateway sent."),
    EventType("message.status", "messages:read", MessageStatus,
              "A sent message was delivered, read or failed (statuses never go backwards)."),
    EventType("thread.created", "messages:read", ThreadCreated, "A conversation began."),
    EventType("thread.status_changed", "messages:read", ThreadStatusChanged,
              "A thread moved between open, pending, snoozed and resolved."),
    EventType("thread.assigned", "messages:read", ThreadAssignment, "A thread was given to a team or an agent."),
    EventType("thread.unassigned", "messages:read", ThreadAssignment, "A thread lost its team or agent."),
    EventType("thread.handed_off", "messages:read", ThreadHandedOff, "Automation handed the thread to people."),
    EventType("thread.handed_back", "messages:read", ThreadHandedBack, "The thread went back to automation."),
    EventType("thread.note_added", "messages:read", ThreadNoteAdded, "An internal note was added."),
    EventType("thread.updated", "messages:read", ThreadUpdated, "A thread's tags changed."),
    EventType("contact.created", "contacts:read", ContactCreated, "A contact was created."),
    EventType("contact.updated", "contacts:read", ContactUpdated, "A contact's profile, tags or attributes changed."),
    EventType("contact.merged", "contacts:read", ContactMerged, "Two contacts became one."),
    EventType("contact.erased", "contacts:read", ContactErased, "A contact was erased (GDPR Art. 17)."),
    EventType("consent.changed", "contacts:read", ConsentChanged, "A contact granted or revoked consent."),
    EventType("template.status_changed", "templates:write", TemplateStatusChanged,
              "Meta approved, rejected, paused or disabled a template."),
    EventType("campaign.status_changed", "campaigns:write", CampaignStatusChanged,
              "A campaign was scheduled, started, paused, resumed, completed or cancelled."),
    EventType("survey.answered", "messages:read", SurveyAnswered, "A customer answered a CSAT, NPS or CES survey."),
    EventType("channel.status_changed", "admin", ChannelStatusChanged,
              "A channel was paused, disabled or re-enabled, or the provider reported its health."),
)
TYPES: dict[str, EventType] = {t.name: t for t in _ALL}


def unknown(names) -> list[str]:
    return [n for n in names if n not in TYPES]


def readable_by(scopes) -> set[str]:
    """The event types a key with these scopes may receive."""
    return {t.name for t in _ALL if t.scope in scopes or "admin" in scopes}
