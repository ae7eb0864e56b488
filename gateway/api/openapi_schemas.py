"""Response schemas of the REST API, for the OpenAPI document (the views build their answers by hand).

They describe what the views return today: schemathesis checks every answer of a live app against them
(tests/gateway/test_schemathesis.py), so a field a view stops sending, or starts sending as null, fails
there. Fields marked ``required`` are always present; objects may gain fields (``additionalProperties``
stays open), which clients must ignore. Free-form parts (a message's ``content``, a contact's ``profile``,
a campaign's ``audience``) are plain objects: their shape belongs to the provider or to the business.
"""
from __future__ import annotations

from marshmallow import INCLUDE, Schema, fields

from gateway.problems import PROBLEM_BASE


class Out(Schema):
    class Meta:
        unknown = INCLUDE   # documents additionalProperties: true; answers may gain fields


def _req(field: fields.Field) -> fields.Field:
    field.required = True
    return field


def Id(**kw):
    return fields.UUID(required=True, **kw)


def OptId(**kw):
    return fields.UUID(required=True, allow_none=True, **kw)


def At(**kw):
    return fields.DateTime(required=True, **kw)


def OptAt(**kw):
    return fields.DateTime(required=True, allow_none=True, **kw)


def Str(**kw):
    return fields.String(required=True, **kw)


def OptStr(**kw):
    return fields.String(required=True, allow_none=True, **kw)


def Int(**kw):
    return fields.Integer(required=True, **kw)


def Bool(**kw):
    return fields.Boolean(required=True, **kw)


def Obj(**kw):
    return fields.Dict(required=True, **kw)


def Strs(**kw):
    return fields.List(fields.String(), required=True, **kw)


def Ids(**kw):
    return fields.List(fields.UUID(), required=True, **kw)


def Many(schema, **kw):
    return fields.List(fields.Nested(schema), required=True, **kw)


def One(schema, **kw):
    return fields.Nested(schema, required=True, **kw)


NEXT = {"description": "the cursor of the next page, or null on the last one"}


def page(name: str, item, *, cursor: bool = True, doc: str = "", **extra) -> type[Schema]:
    """A list answer ``{data: [item], next?}`` as its own named schema."""
    attrs = {"data": Many(item), **extra}
    if cursor:
        attrs["next"] = OptStr(metadata=NEXT)
    cls = type(name, (Out,), attrs)
    cls.__doc__ = doc or f"A page of {item.__name__} items."
    return cls


# --- problems (RFC 9457) -------------------------------------------------------------------------------------

class ProblemError(Out):
    pointer = fields.String(metadata={"description": "JSON Pointer to the field (or ?parameter) at fault"})
    detail = fields.String(metadata={"description": "what is wrong and how to fix it"})


class ProblemSchema(Out):
    """An RFC 9457 problem document (``application/problem+json``). ``type`` ends in the problem's slug, the
    stable part to match on (the list is ``x-problem-types``); extension members such as
    ``window_closed_at`` or ``languages`` say more for some types."""
    type = Str(metadata={"description": f"{PROBLEM_BASE}<slug>"})
    title = Str()
    status = Int()
    detail = Str()
    instance = fields.String()
    request_id = fields.String(metadata={"description": "quote it when reporting a problem"})
    errors = fields.List(fields.Nested(ProblemError), metadata={
        "description": "one entry per invalid field or line (validation problems)"})


# --- accounts and keys ---------------------------------------------------------------------------------------

class KeyRef(Out):
    id = Id()
    scopes = Strs()


class Account(Out):
    id = Id()
    name = Str()
    timezone = Str()
    default_language = OptStr()
    retention_message_days = fields.Integer(required=True, allow_none=True)
    retention_raw_event_days = fields.Integer(required=True, allow_none=True)
    report_fcr_days = fields.Integer(required=True, allow_none=True)
    report_sla_seconds = fields.Integer(required=True, allow_none=True)
    api_key = One(KeyRef, metadata={"description": "the key making this request"})
    twilio_account_sid = Str(metadata={"description": "the AccountSid of the Twilio-shaped facade (/twilio): "
                                                      "\"AC\" + the account id's 32 hex digits"})


class ApiKey(Out):
    id = Id()
    name = Str()
    prefix = Str()
    scopes = Strs()
    created_at = At()
    last_used_at = OptAt()
    revoked_at = OptAt()


class NewApiKey(ApiKey):
    key = Str(metadata={"description": "the secret, shown only here"})
    note = Str()


ApiKeyPage = page("ApiKeyPage", ApiKey, cursor=False)


# --- channels ------------------------------------------------------------------------------------------------

class Channel(Out):
    id = Id()
    kind = Str()
    name = Str()
    external_id = Str()
    group_id = OptStr()
    status = Str(metadata={"description": "active, paused or disabled"})
    paused_reason = OptStr()
    credentials_set = Strs(metadata={"description": "names of the credentials held (never their values)"})
    settings = Obj()
    health = Obj()
    rejected_signatures = Int()
    last_rejected_at = OptAt()
    webhook_path = Str()
    created_at = At()
    updated_at = At()


ChannelPage = page("ChannelPage", Channel, cursor=False)


class ChannelSummary(Out):
    """A channel as any key with messages:read sees it: enough to pick one."""
    id = Id()
    kind = Str()
    name = Str()
    status = Str(metadata={"description": "active, paused or disabled"})


ChannelSummaryPage = page("ChannelSummaryPage", ChannelSummary, cursor=False)


# --- contacts ------------------------------------------------------------------------------------------------

class Identity(Out):
    kind = Str()
    address = Str()
    via_merged_contact = fields.UUID()


class ThreadRef(Out):
    id = Id()
    channel_id = Id()
    channel_kind = Str()
    status = Str()
    last_activity_at = At()


class Contact(Out):
    id = Id()
    name = OptStr()
    language = OptStr()
    profile = Obj(metadata={"description": "the contact's attributes (encrypted at rest)"})
    tags = Strs()
    identities = Many(Identity)
    merged_into = OptId()
    merged_contacts = Ids()
    threads = Many(ThreadRef)
    created_at = At()
    updated_at = At()


ContactPage = page("ContactPage", Contact)


class Merge(Out):
    id = Id()
    survivor_id = Id()
    merged_id = Id()
    actor = Str()
    reason = OptStr()
    merged_at = At()
    unmerged_at = OptAt()


class ImportError_(Out):
    line = Int()
    reason = Str()


class ContactImport(Out):
    import_id = Id()
    status = Str()
    filename = OptStr()
    default_region = OptStr()
    columns = Strs()
    rows = Int()
    imported = Int()
    created = Int()
    updated = Int()
    duplicates = Int()
    skipped = Int()
    created_at = At()
    completed_at = OptAt()
    errors = fields.List(fields.Nested(ImportError_))
    errors_truncated = fields.Boolean()
    duplicate_lines = fields.List(fields.Dict())


ContactImportPage = page("ContactImportPage", ContactImport)


class TimelineItem(Out):
    id = Id()
    kind = Str(metadata={"description": "message, status, note, thread_event, consent, survey_answer or campaign"})
    at = At()
    thread_id = OptId()
    channel_id = OptId()
    channel_kind = OptStr()
    via_merged_contact = fields.UUID()


class Timeline(Out):
    contact_id = Id()
    order = Str()
    data = Many(TimelineItem, metadata={"description": "each item also has an object named by its kind"})
    next = OptStr(metadata=NEXT)


class ContactExport(Out):
    """Everything held about the contact, decrypted (format ``gateway.contact-export/1``)."""
    format = Str()
    exported_at = At()
    account_id = Id()
    contact = Obj()
    merged_contacts = fields.List(fields.Dict(), required=True)
    identities = fields.List(fields.Dict(), required=True)
    threads = fields.List(fields.Dict(), required=True)
    messages = fields.List(fields.Dict(), required=True)


class AttributeDefinition(Out):
    name = Str()
    type = Str(metadata={"description": "string, number, date, boolean or list"})
    label = OptStr()
    filterable = Bool()
    created_at = At()
    updated_at = At()
    indexed = fields.Integer(metadata={"description": "contacts indexed when it became filterable"})


class AttributeDefinitionPage(Out):
    data = Many(AttributeDefinition)
    types = Strs()


# --- consent -------------------------------------------------------------------------------------------------

class ConsentEvent(Out):
    id = Id()
    channel_kind = Str()
    purpose = Str()
    action = Str(metadata={"description": "granted or withdrawn"})
    source = Str()
    proof = fields.Dict(required=True, allow_none=True)
    occurred_at = At()
    recorded_at = At()
    contact_id = fields.UUID()
    via_merged_contact = fields.UUID()


class ConsentState(Out):
    channel_kind = Str()
    purpose = Str()
    action = Str()
    source = Str()
    event_id = Id()
    occurred_at = At()


class Consents(Out):
    contact_id = Id()
    purposes = Strs()
    current = Many(ConsentState)
    send_gate = Obj(metadata={"description": "channel kind → purpose → allowed, or the rule that refuses"})
    history = Many(ConsentEvent)


class ConsentSettings(Out):
    overrides = Obj()
    effective = Obj()
    families = Strs()


# --- threads -------------------------------------------------------------------------------------------------

class NamedRef(Out):
    id = Id()
    name = Str()


class AgentRef(Out):
    id = Id()
    name = Str()
    external_id = Str()


class Window(Out):
    open = Bool()
    closes_at = OptAt()


class LastMessage(Out):
    id = Id()
    direction = Str()
    kind = Str()
    text = OptStr()
    status = Str()
    automated = Bool()
    occurred_at = At()


class ThreadContact(Out):
    id = Id()
    name = OptStr(metadata={"description": "the contact's name, or null when none is known"})
    phone = OptStr(metadata={"description": "the contact's first phone number (E.164), or null (Messenger, "
                                            "Instagram)"})


class Thread(Out):
    id = Id()
    contact_id = Id()
    contact = One(ThreadContact, metadata={"description": "who the thread is with, as an inbox row names them"})
    channel_id = Id()
    channel_kind = Str()
    status = Str(metadata={"description": "open, pending, snoozed or resolved"})
    handler = Str(metadata={"description": "bot or human"})
    team = fields.Nested(NamedRef, required=True, allow_none=True)
    assignee = fields.Nested(AgentRef, required=True, allow_none=True)
    assigned_at = OptAt()
    tags = Strs()
    unread_count = Int()
    window = One(Window)
    last_message = fields.Nested(LastMessage, allow_none=True)
    last_inbound_at = OptAt()
    last_outbound_at = OptAt()
    last_activity_at = At()
    reopened_at = OptAt()
    created_at = At()
    message_count = fields.Integer()


ThreadPage = page("ThreadPage", Thread)


class QueuedThread(Out):
    id = Id()
    contact_id = Id()
    channel_id = Id()
    channel_kind = Str()
    status = Str()
    handler = Str()
    team = fields.Nested(NamedRef, required=True, allow_none=True)
    assignee = fields.Nested(AgentRef, required=True, allow_none=True)
    assigned_at = OptAt()
    window = One(Window)
    waiting_since = OptAt()
    last_inbound_at = OptAt()
    last_outbound_at = OptAt()
    last_activity_at = At()
    reopened_at = OptAt()
    created_at = At()


class TeamQueue(Out):
    team = Obj()
    data = Many(QueuedThread)
    next = OptStr(metadata=NEXT)


class ThreadRead(Out):
    thread_id = Id()
    unread_count = Int()
    read_at = OptAt()


class ThreadStatusSurvey(Out):
    id = Id()
    kind = Str()
    state = Str()
    skip_reason = OptStr()
    message_id = OptId()
    sent_at = OptAt()
    expires_at = OptAt()


class ThreadStatusChange(Out):
    id = Id()
    status = Str()
    previous_status = Str()
    changed = Bool()
    resolved_at = OptAt()
    snoozed_until = OptAt()
    reopened_at = OptAt()
    survey = fields.Nested(ThreadStatusSurvey, required=True, allow_none=True)


class ThreadHandler(Out):
    thread_id = Id()
    handler = Str()
    handed_off_at = OptAt()
    changed = Bool()


class Decision(Out):
    id = Id()
    outcome = Str()
    reason = OptStr()
    responder = Str()
    rule_kind = OptStr()
    automation_id = OptId()
    message_id = OptId()
    sent_message_ids = fields.List(fields.UUID(), required=True)
    actions = fields.List(fields.Dict(), required=True)
    created_at = At()


DecisionPage = page("DecisionPage", Decision, cursor=False)


class Note(Out):
    id = Id()
    thread_id = Id()
    contact_id = Id()
    author = Str()
    actor = Str()
    body = Str()
    created_at = At()


NotePage = page("NotePage", Note)


class ThreadTags(Out):
    thread_id = Id()
    tags = Strs()


class ThreadTagChange(ThreadTags):
    added = Strs()
    removed = Strs()


class SurveyRequest(Out):
    id = Id()
    kind = Str()
    state = Str()
    language = OptStr()
    skip_reason = OptStr()
    message_id = OptId()
    resolution_seq = Int()
    sent_at = OptAt()
    expires_at = OptAt()
    answered_at = OptAt()
    created_at = At()


SurveyRequestPage = page("SurveyRequestPage", SurveyRequest, cursor=False)


# --- messages and media --------------------------------------------------------------------------------------

class MessageError(Out):
    code = OptStr()
    reason = OptStr()


class StatusEntry(Out):
    status = Str()
    at = At()
    provider_ts = OptStr()
    detail = Obj()


class MessageMedia(Out):
    id = Id()
    kind = Str()
    mime_type = OptStr()
    state = Str(metadata={"description": "pending, stored or failed"})
    attempts = Int()
    last_error = OptStr()
    size_bytes = fields.Integer(required=True, allow_none=True)
    sha256 = OptStr()
    stored_at = OptAt()
    url = Str(metadata={"description": "where GET /v1/media/{id} serves the bytes"})


class Message(Out):
    id = Id()
    thread_id = Id()
    direction = Str(metadata={"description": "inbound or outbound"})
    kind = Str()
    text = OptStr(metadata={"description": "what the thread shows; null once retention wiped it"})
    content = Obj(metadata={"description": "the structured message as the provider has it"})
    provider_message_id = OptStr()
    reply_to_id = OptId()
    status = Str()
    error = fields.Nested(MessageError, required=True, allow_none=True)
    occurred_at = At()
    created_at = At()
    updated_at = At()
    automated = fields.Boolean()


class MessageDetail(Message):
    """A message with its status history, media and, for outbound ones, its send state."""
    statuses = Many(StatusEntry)
    media = Many(MessageMedia)
    channel_id = Id()
    attempts = Int()
    next_attempt_at = OptAt()
    last_error = OptStr()
    purpose = OptStr()


class MessageInThread(Message):
    statuses = Many(StatusEntry)
    media = Many(MessageMedia)


class ThreadMessages(Out):
    data = Many(MessageInThread)
    previous = OptStr(metadata={"description": "cursor toward older messages (?before=), or null"})
    next = OptStr(metadata={"description": "cursor toward newer messages (?after=), or null"})


class OutboundMessage(Message):
    channel_id = Id()
    attempts = Int()
    last_error = OptStr()


OutboundMessagePage = page("OutboundMessagePage", OutboundMessage, cursor=False)


class BatchItem(Out):
    index = Int()
    status = Int(metadata={"description": "202 accepted, 200 seen before (same idempotency key), 4xx refused"})
    message = fields.Dict(metadata={"description": "202: the queued message (as MessageDetail); 200: only its id"})
    problem = fields.Nested(ProblemSchema, metadata={"description": "when refused"})


class BatchResult(Out):
    data = Many(BatchItem)
    accepted = Int()
    refused = Int()


class ReadReceipt(Out):
    id = Id()
    status = Str(metadata={"description": "queued, or 'already requested'"})


class Upload(Out):
    id = Id()
    kind = Str()
    mime_type = Str()
    size_bytes = Int()
    sha256 = Str()
    filename = OptStr()
    created_at = At()
    expires_at = At()


class MediaRetry(Out):
    id = Id()
    state = Str()


# --- templates -----------------------------------------------------------------------------------------------

class Template(Out):
    id = Id()
    waba_id = Str()
    name = Str()
    language = Str()
    category = OptStr()
    status = Str()
    status_reason = OptStr()
    quality_score = OptStr()
    meta_id = OptStr()
    definition = Obj(metadata={"description": "Meta's JSON definition"})
    sendable = Bool()
    synced_at = OptAt()
    updated_at = At()


TemplatePage = page("TemplatePage", Template, cursor=False)


class TemplateSubmission(Out):
    result = Str(metadata={"description": "created, updated or unchanged"})
    detail = OptStr()
    template = One(Template)


class TemplateSync(Out):
    waba_id = Str()
    pulled = Int()


class TemplatePreview(Out):
    template = One(Template)
    cloud_api = Obj()
    text = Str()
    sms_text = Str()
    sendable = Bool()


class TemplateDeletion(Out):
    name = Str()
    language = OptStr()
    deleted = Int()


# --- campaigns -----------------------------------------------------------------------------------------------

class Campaign(Out):
    id = Id()
    name = Str()
    purpose = Str()
    channel_id = Id()
    audience = Obj()
    message = Obj()
    state = Str(metadata={"description": "draft, scheduled, running, paused, completed or cancelled"})
    state_reason = OptStr()
    waiting = OptStr()
    start_at = OptAt()
    started_at = OptAt()
    finished_at = OptAt()
    created_at = At()
    updated_at = At()
    pace_per_s_effective = fields.Float()
    counts = fields.Dict(metadata={"description": "pending, skipped by reason, queued, sent, delivered, read, "
                                                 "replied, failed by error code, opted out after"})


class CampaignChange(Campaign):
    changed = Bool()


CampaignPage = page("CampaignPage", Campaign)


class ActivityCounts(Out):
    sent = Int(metadata={"description": "messages the provider accepted"})
    delivered = Int(metadata={"description": "messages delivered (a message read with no delivery status counts, "
                                             "at its read time)"})
    read = Int()
    replied = Int(metadata={"description": "recipients' first replies credited to the campaign"})
    failed = Int()


class ActivityBucket(ActivityCounts):
    at = At(metadata={"description": "the bucket's start (UTC)"})


class CampaignActivity(Out):
    """A campaign's events over time: each counted once, in the bucket of the time it happened."""
    bucket = Str(metadata={"description": "minute, hour or day: the one asked for, or coarser to keep to 500 "
                                          "buckets"})
    bucket_seconds = Int(metadata={"description": "a bucket's width: 60, 3600, or a multiple of 86400 (several "
                                                  "days to a bucket past 500 days)"})
    from_ = fields.DateTime(required=True, allow_none=True, data_key="from", metadata={
        "description": "the first bucket's start; null while nothing has happened"})
    to = OptAt(metadata={"description": "the last bucket's end (exclusive)"})
    series = Many(ActivityBucket, metadata={"description": "every bucket from the first event's to the last's, "
                                                          "in time order, empty ones as zeros"})
    totals = One(ActivityCounts)


class DryRun(Out):
    recipients = Int()
    would_send = Int()
    deferred_by_quiet_hours = Int()
    skipped = Obj()
    skipped_total = Int()
    pace_per_s = fields.Float(required=True)
    estimated_duration_s = Int()
    messaging_limit = fields.Dict()


class CampaignRecipient(Out):
    seq = Int()
    contact_id = Id()
    address = OptStr()
    state = Str()
    skip_reason = OptStr()
    defer_until = OptAt()
    message_id = OptId()
    status = OptStr()
    error_code = OptStr()
    error_reason = OptStr()
    queued_at = OptAt()
    sent_at = OptAt()
    replied_at = OptAt()


class CampaignRecipientPage(Out):
    data = Many(CampaignRecipient)
    next = fields.Integer(required=True, allow_none=True, metadata={"description": "the ?after= of the next page"})


# --- automation, assistant, surveys --------------------------------------------------------------------------

class Automation(Out):
    id = Id()
    channel_id = OptId()
    name = Str()
    priority = Int()
    enabled = Bool()
    kind = Str()
    definition = Obj()
    created_at = At()
    updated_at = At()


AutomationPage = page("AutomationPage", Automation, cursor=False)


class AutomationSettings(Out):
    max_per_thread_per_hour = Int()
    handoff_after_unanswered = fields.Integer()


class KnowledgeEntry(Out):
    id = Id()
    language = Str()
    question = Str()
    answer = Str()
    tags = Strs()
    phrasings = Strs()
    enabled = Bool()
    created_at = At()
    updated_at = At()


KnowledgeEntryPage = page("KnowledgeEntryPage", KnowledgeEntry)


class KnowledgeImport(Out):
    imported = Int()
    ids = Ids()


class KnowledgeSettings(Out):
    threshold = fields.Float(required=True, allow_none=True)
    effective_threshold = fields.Float(required=True)
    default_threshold = fields.Float(required=True)


class AskAnswer(Out):
    handoff = Bool()
    threshold = fields.Float(required=True)
    text = fields.String()
    entry_id = fields.UUID()
    score = fields.Float()
    source = fields.String()
    best_score = fields.Float()
    best_entry_id = fields.UUID(allow_none=True)


class SurveyConfig(Out):
    configured = Bool()
    enabled = Bool()
    kind = fields.String()
    questions = fields.Dict()
    follow_up = fields.Dict(allow_none=True)
    expiry_hours = fields.Integer()
    updated_at = fields.DateTime()


class SurveyResponse(Out):
    id = Id()
    request_id = Id()
    thread_id = Id()
    contact_id = Id()
    channel_id = Id()
    message_id = OptId()
    kind = Str()
    score = Int()
    scale = Obj()
    comment = OptStr()
    commented_at = OptAt()
    assignee = fields.Raw(required=True, allow_none=True)
    answered_at = At()


SurveyResponsePage = page("SurveyResponsePage", SurveyResponse)


# --- agents, teams, routing ----------------------------------------------------------------------------------

class Agent(Out):
    id = Id()
    external_id = Str()
    name = Str()
    availability = Str(metadata={"description": "available, away or offline"})
    languages = Strs()
    capacity = Int()
    open_threads = Int()
    team_ids = Ids()
    created_at = At()
    updated_at = At()


class AgentChange(Agent):
    assigned_thread_ids = Ids(metadata={"description": "threads the agent took from their teams' queues"})


AgentPage = page("AgentPage", Agent, cursor=False)


class TeamMember(Out):
    agent_id = Id()
    external_id = Str()
    name = Str()
    availability = Str()
    capacity = Int()
    open_threads = Int()
    last_assigned_at = OptAt()


class Team(Out):
    id = Id()
    name = Str()
    strategy = Str(metadata={"description": "round_robin or least_busy"})
    members = Many(TeamMember)
    queued = Int()
    created_at = At()
    updated_at = At()


TeamPage = page("TeamPage", Team, cursor=False)


class Membership(Out):
    team_id = Id()
    agent_id = Id()
    added = Bool()
    assigned_thread_ids = Ids()


class RoutingRule(Out):
    id = Id()
    name = Str()
    priority = Int()
    enabled = Bool()
    conditions = Obj()
    team_id = Id()
    agent_id = OptId()
    created_at = At()
    updated_at = At()


RoutingRulePage = page("RoutingRulePage", RoutingRule, cursor=False)


# --- events, audit, notices, reports, health -----------------------------------------------------------------

class FeedEvent(Out):
    id = Id()
    type = Str()
    subject_id = OptStr()
    data = Obj(metadata={"description": "as the event type's webhook payload `data` (see `webhooks`)"})
    created_at = At()


class EventFeed(Out):
    data = Many(FeedEvent)
    next = OptStr(metadata={"description": "ask with ?after= this next time (the cursor given when nothing came)"})
    more = Bool(metadata={"description": "true when the page was full: ask again at once"})


class AuditEntry(Out):
    id = Id()
    at = At()
    actor = Str()
    action = Str()
    target_type = OptStr()
    target_id = OptStr()
    detail = fields.Dict(required=True, allow_none=True)


AuditPage = page("AuditPage", AuditEntry)


class Notice(Out):
    id = Id()
    channel_id = OptId()
    contact_id = OptId()
    topic = Str()
    detail = Obj()
    occurred_at = OptAt()
    handled_at = OptAt()
    created_at = At()


NoticePage = page("NoticePage", Notice, cursor=False)


class ReviewEvent(Out):
    id = Id()
    channel_id = OptId()
    provider = Str()
    received_at = At()
    processed_at = OptAt()
    attempts = Int()
    last_error = OptStr()
    review_reasons = Strs()


ReviewEventPage = page("ReviewEventPage", ReviewEvent, cursor=False)


class ReportFigures(Out):
    inbound_messages = Int()
    conversations = Int()
    resolved = Int()


class ReportGroup(ReportFigures):
    group = fields.String(required=True, allow_none=True)
    label = fields.String(required=True, allow_none=True)


class Report(Out):
    from_ = fields.Date(required=True, data_key="from")
    to = fields.Date(required=True)
    timezone = Str()
    group_by = Str()
    fcr_days = Int()
    sla_seconds = Int()
    business_hours = Bool()
    figures = Strs()
    generated_at = At()
    groups = Many(ReportGroup)
    total = One(ReportFigures)


class Health(Out):
    status = Str()


class Readiness(Out):
    status = Str(metadata={"description": "ready or unavailable"})
    checks = Obj(metadata={"description": "postgresql and redis: true when they answer"})


# --- event webhook endpoints ---------------------------------------------------------------------------------

class WebhookEndpoint(Out):
    id = Id()
    url = Str()
    description = OptStr()
    format = Str(metadata={"description": "standard, meta (WhatsApp in Meta's webhook format) or twilio (Twilio's "
                                          "status callbacks, made by the /twilio facade)"})
    channel_ids = fields.List(fields.UUID(), required=True, allow_none=True, metadata={
        "description": "format meta: the WhatsApp channels forwarded (null: every one)"})
    event_types = Strs()
    include_content = Bool()
    enabled = Bool()
    disabled_reason = OptStr()
    disabled_at = OptAt()
    failing_since = OptAt()
    last_success_at = OptAt()
    previous_secret_valid_until = OptAt()
    created_at = At()
    updated_at = At()


class NewWebhookEndpoint(WebhookEndpoint):
    secret = Str(metadata={"description": "the signing secret, shown only here"})


WebhookEndpointPage = page("WebhookEndpointPage", WebhookEndpoint, cursor=False)


class WebhookSecret(Out):
    id = Id()
    secret = Str(metadata={"description": "the new signing secret, shown only here"})
    previous_secret_valid_until = OptAt()


class WebhookAttempt(Out):
    n = Int()
    at = At()
    status_code = fields.Integer(required=True, allow_none=True)
    latency_ms = Int()
    error = OptStr()
    response = OptStr(metadata={"description": "the start of the receiver's answer"})


class WebhookDelivery(Out):
    id = Id()
    event_id = Id()
    event_type = Str()
    state = Str(metadata={"description": "pending, delivering, delivered or dead"})
    attempts = Int()
    next_attempt_at = OptAt()
    held = fields.Boolean(required=True, allow_none=True,
                          metadata={"description": "waiting for the endpoint to be enabled again"})
    last_status_code = fields.Integer(required=True, allow_none=True)
    last_error = OptStr()
    replay_of = OptId()
    delivered_at = OptAt()
    created_at = At()
    attempt_log = Many(WebhookAttempt)


WebhookDeliveryPage = page("WebhookDeliveryPage", WebhookDelivery)


class WebhookReplay(Out):
    queued = Int()
    more = Bool()
    next_since = OptAt()
