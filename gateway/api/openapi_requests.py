"""Request bodies of the views that check their JSON by hand (to list every problem at once, or because the
rules need the database), written down for the OpenAPI document only: the views do not load them.

Where a view has a marshmallow schema of its own (gateway/api/schemas.py, routing_views.py, …) the table
uses that one instead. Keep these in step with the view's checks; the view stays the authority.
"""
from __future__ import annotations

from marshmallow import INCLUDE, RAISE, Schema, fields, validate

from gateway import attributes, notes, thread_status
from gateway.api.schemas import BatchMessage
from gateway.automation import engine, rules
from gateway.campaigns import spec as campaign_spec

_LANGUAGE = validate.Regexp(r"^[a-z]{2,3}(_[A-Z]{2})?$")
_TEXTS = fields.Dict(keys=fields.String(), values=fields.String(), metadata={"description": "language → text"})


class Body(Schema):
    class Meta:
        unknown = RAISE   # the view names each unknown field in a 422


class OpenBody(Schema):
    class Meta:
        unknown = INCLUDE


class ContactPatch(Body):
    attributes = fields.Dict(keys=fields.String(), metadata={
        "description": "attribute name → value (null removes it); defined attributes must have their type"})
    tags_add = fields.List(fields.String(validate=validate.Length(min=1, max=64)))
    tags_remove = fields.List(fields.String(validate=validate.Length(min=1, max=64)))
    name = fields.String(allow_none=True, validate=validate.Length(max=500))
    language = fields.String(allow_none=True, validate=_LANGUAGE)


class AttributeDefinitionCreate(Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=64))
    type = fields.String(required=True, validate=validate.OneOf(attributes.TYPES))
    label = fields.String(allow_none=True, validate=validate.Length(max=attributes.MAX_LABEL))
    filterable = fields.Boolean(metadata={"description": "index the values so GET /v1/contacts can filter by it"})


class AttributeDefinitionUpdate(Body):
    label = fields.String(allow_none=True, validate=validate.Length(max=attributes.MAX_LABEL))
    filterable = fields.Boolean()


class NoteCreate(Body):
    body = fields.String(required=True, validate=validate.Length(min=1, max=notes.MAX_BODY))
    author = fields.String(validate=validate.Length(min=1, max=notes.MAX_AUTHOR),
                           metadata={"description": "the CRM's agent; left out: this API key"})


class ThreadTagsChange(Body):
    add = fields.List(fields.String(validate=validate.Length(min=1, max=64)))
    remove = fields.List(fields.String(validate=validate.Length(min=1, max=64)))


class ThreadAssign(Body):
    team_id = fields.UUID(allow_none=True, metadata={"description": "null: out of any team"})
    agent_id = fields.UUID(allow_none=True, metadata={"description": "null: back to the team's queue"})
    force = fields.Boolean(metadata={"description": "assign an agent beyond their capacity"})


class ThreadStatus(Body):
    status = fields.String(required=True, validate=validate.OneOf(thread_status.STATUSES))
    snooze_until = fields.AwareDateTime(metadata={"description": "required with snoozed; in the future"})
    agent = fields.String(validate=validate.Length(min=1, max=200),
                          metadata={"description": "the CRM's id of the person making the change"})


class ThreadHandlerChange(OpenBody):
    handler = fields.String(required=True, validate=validate.OneOf(("human", "bot")))


class ConsentProof(Body):
    text = fields.String(metadata={"description": "the exact words agreed to"})
    text_version = fields.String()
    message_id = fields.String(metadata={"description": "the message in which the customer agreed"})
    form_submission_id = fields.String()
    ip = fields.String()
    page = fields.String()


class ConsentRecord(Body):
    channel_kind = fields.String(required=True, metadata={"description": "a provider (whatsapp, twilio, …) or all"})
    purpose = fields.String(required=True, metadata={"description": "one of the account's purposes, or all"})
    action = fields.String(required=True, validate=validate.OneOf(("granted", "withdrawn")))
    source = fields.String(validate=validate.OneOf(("api", "import", "web_form", "agent")))
    occurred_at = fields.AwareDateTime(allow_none=True)
    proof = fields.Nested(ConsentProof, allow_none=True, metadata={
        "description": "a grant needs text and text_version, or message_id"})


class ConsentSettingsPut(Body):
    purposes = fields.List(fields.String(), metadata={"description": "the account's extra purposes"})
    keywords = fields.Dict(metadata={"description": "family → language → [words]"})
    replies = fields.Dict(metadata={"description": "family → language → text"})


class SurveyConfigPut(Body):
    kind = fields.String(required=True, validate=validate.OneOf(("csat", "nps", "ces")))
    questions = fields.Dict(keys=fields.String(), values=fields.String(), required=True,
                            metadata={"description": "language → the question"})
    follow_up = fields.Dict(keys=fields.String(), values=fields.String(), allow_none=True)
    expiry_hours = fields.Integer(validate=validate.Range(min=1, max=720))
    enabled = fields.Boolean()


AutomationSettingsPut = Body.from_dict({
    name: fields.Integer(validate=validate.Range(min=low, max=high), metadata={"description": f"default {default}"})
    for name, (default, low, high) in engine.SETTINGS.items()}, name="AutomationSettingsPut")


class AutomationRule(Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    kind = fields.String(required=True, validate=validate.OneOf(rules.KINDS))
    priority = fields.Integer(metadata={"description": "lower acts first (default 100)"})
    enabled = fields.Boolean()
    channel_id = fields.UUID(allow_none=True, metadata={"description": "null: every channel"})
    definition = fields.Dict(required=True, metadata={"description": "by kind: see the README's Automation section"})


class RoutingRuleBody(Body):
    name = fields.String(required=True)
    priority = fields.Integer()
    enabled = fields.Boolean()
    conditions = fields.Dict(metadata={
        "description": "channel_id, channel_kind, language, tags, attributes, keyword: all must hold"})
    team_id = fields.UUID(required=True)
    agent_id = fields.UUID(allow_none=True)


class CampaignBody(Body):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    purpose = fields.String(required=True, validate=validate.OneOf(campaign_spec.PURPOSES))
    channel_id = fields.UUID(required=True)
    message = fields.Dict(required=True, metadata={
        "description": "{template: {name, language?, parameters?}} or {text} (SMS)"})
    audience = fields.Dict(required=True, metadata={"description": "{contact_ids}, {import_id} or {segment}"})
    start_at = fields.AwareDateTime(allow_none=True)
    quiet_hours = fields.Dict(allow_none=True, metadata={"description": "{from, to, timezone?}"})
    pace_per_s = fields.Float(allow_none=True)
    canary = fields.Dict(allow_none=True, metadata={
        "description": "size, max_failure_rate, max_opt_out_rate, max_blocked_rate"})
    window = fields.Integer(allow_none=True, validate=validate.Range(min=10, max=100_000))


class KnowledgeEntryBody(Body):
    language = fields.String()
    question = fields.String(required=True)
    answer = fields.String(required=True)
    tags = fields.List(fields.String())
    phrasings = fields.List(fields.String(), metadata={"description": "other ways customers ask it"})
    enabled = fields.Boolean()


class KnowledgeEntryChange(KnowledgeEntryBody):
    question = fields.String()
    answer = fields.String()


class KnowledgeSettingsPut(OpenBody):
    threshold = fields.Float(allow_none=True, validate=validate.Range(min=0, max=1),
                             metadata={"description": "null: the default"})


class Ask(OpenBody):
    text = fields.String(required=True, validate=validate.Length(min=1, max=4096))
    language = fields.String()


class ChannelRef(OpenBody):
    channel_id = fields.UUID(required=True)


class TemplateDefinition(OpenBody):
    """Meta's template create body (name, language, category, components, …) plus the channel."""
    channel_id = fields.UUID(required=True, metadata={"description": "a WhatsApp channel with its WABA id"})
    name = fields.String()
    language = fields.String()
    category = fields.String()
    components = fields.List(fields.Dict())


class TemplatePreviewBody(OpenBody):
    channel_id = fields.UUID(metadata={"description": "or ?channel_id="})
    language = fields.String(metadata={"description": "or ?language="})
    parameters = fields.Raw(metadata={"description": "as a send takes them"})


class MessageBatch(Body):
    messages = fields.List(fields.Nested(BatchMessage), required=True, validate=validate.Length(min=1, max=100))


# Bodies that are not JSON.
UPLOAD_FORM = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "contentMediaType": "application/octet-stream", "description": "the file"},
    "type": {"type": "string", "enum": ["image", "video", "audio", "document", "sticker"],
             "description": "left out: inferred from the MIME type"}}}
CSV_FILE = {"type": "string", "description": "the CSV file (UTF-8, a header line first)"}
CSV_FORM = {"type": "object", "required": ["file"], "properties": {
    "file": {"type": "string", "contentMediaType": "text/csv"}}}
YAML_FILE = {"type": "string", "description": "the entries as YAML"}
