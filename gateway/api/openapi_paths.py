"""What the OpenAPI document says about each endpoint: the one table to edit when adding one.

To document a new endpoint, add an entry to OPERATIONS keyed by the HTTP method and the Flask rule exactly
as registered (``app.url_map`` shows it), for example::

    ("GET", "/v1/things/<thing_id>"): Op("Things", "Read a thing", response=s.Thing),
    ("POST", "/v1/things"): Op("Things", "Create a thing", body=ThingCreate, response=s.Thing, status=201),

- ``tag`` groups it on /docs, ``summary`` is one line; the longer description is the view's docstring.
- ``body``: the request's marshmallow schema (the one the view loads, else one in openapi_requests.py),
  or ``{media type: JSON Schema}`` for other bodies. ``response``: the success body's marshmallow schema
  (openapi_schemas.py; ``None`` for 204), ``status`` its code; ``responses={200: A, 201: B}`` for several.
- ``query``: query parameters (``q(...)``); ``headers`` likewise (``h(...)``).
- ``raises``: modules whose refusals the view turns into problems (``"gateway.send_gate"``).

Everything else is found on its own: the scope from the view's ``@api(scope=...)``, path parameters from the
rule (``…_id`` ones are uuids), the problem types and error statuses from the view's code. The test
tests/gateway/test_openapi.py fails, naming the route, while a route has no entry here; schemathesis
(tests/gateway/test_schemathesis.py) then checks the answers against the schemas.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from gateway.api import openapi_requests as r
from gateway.api import openapi_schemas as s
from gateway.api import schemas as api
from gateway.api import webhook_endpoint_views as hooks
from gateway.api.routing_views import AgentCreate, AgentUpdate, TeamCreate, TeamUpdate
from webhooks import registry


@dataclass(frozen=True)
class Op:
    tag: str
    summary: str
    body: object = None
    response: object = None
    status: int = 200
    responses: dict | None = None
    query: tuple = ()
    headers: tuple = ()
    raises: tuple = ()
    description: str | None = None            # default: the view's docstring
    path_types: dict = field(default_factory=dict)   # {parameter: JSON Schema} when not a uuid or a string
    handler: str | None = None                # "module:qualname" answering in front of Flask (no view)
    operation_id: str | None = None           # default: the view's name
    body_required: bool = True

    def success(self) -> dict:
        return self.responses or {self.status: self.response}


def q(name: str, description: str = "", type: str = "string", *, required: bool = False, **schema) -> dict:
    """A query parameter; extra keywords go into its JSON Schema (format, enum, minimum, …)."""
    out = {"in": "query", "name": name, "required": required, "schema": {"type": type, **schema}}
    if description:
        out["description"] = description
    return out


def h(name: str, description: str = "", *, required: bool = False, **schema) -> dict:
    out = q(name, description, required=required, **schema)
    out["in"] = "header"
    return out


def limit(default: int = 50, most: int = 200) -> dict:
    return q("limit", f"page size, 1 to {most} (default {default})", "integer", minimum=1, maximum=most)


BEFORE = q("before", "the previous page's `next` cursor")
AFTER = q("after", "the previous page's `next` cursor")
UUID = {"format": "uuid"}
JSON_OBJECT = {"type": "object"}
CSV = {"text/csv": {"type": "string"}}
ANY_FILE = {"*/*": {"type": "string", "description": "the file's bytes, with its own content type"}}
TEXT = {"text/plain": {"type": "string"}}
SEND_GATE = ("gateway.send_gate", "gateway.template_sends", "gateway.outbound")   # what a send's refusals come from
PROVIDER = {"provider": {"type": "string", "enum": sorted(registry.PROVIDERS)}}

OPERATIONS: dict[tuple[str, str], Op] = {
    # --- service ---------------------------------------------------------------------------------------------
    ("GET", "/healthz"): Op("Service", "Liveness: the process answers", response=s.Health),
    ("GET", "/readyz"): Op("Service", "Readiness: PostgreSQL and Redis answer (503 otherwise)",
                           responses={200: s.Readiness, 503: s.Readiness}),
    ("GET", "/metrics"): Op(
        "Service", "Prometheus metrics (text exposition format)",
        response={**TEXT, "application/openmetrics-text": {"type": "string"}},
        description="With GATEWAY_METRICS_TOKEN set, send it as `Authorization: Bearer <token>`; without it, "
                    "only this host's loopback address may scrape."),
    ("GET", "/openapi.json"): Op("Service", "This OpenAPI document", response=JSON_OBJECT),
    ("GET", "/docs"): Op("Service", "The API reference page (HTML, from this document)",
                         response={"text/html": {"type": "string"}}),

    # --- account and keys ------------------------------------------------------------------------------------
    ("GET", "/v1/account"): Op("Account", "The account and the calling key", response=s.Account),
    ("PATCH", "/v1/account"): Op("Account", "Change the account's settings", body=api.AccountUpdate,
                                 response=s.Account),
    ("GET", "/v1/api-keys"): Op("Account", "List API keys", response=s.ApiKeyPage),
    ("POST", "/v1/api-keys"): Op("Account", "Create an API key (the secret is shown once)", body=api.ApiKeyCreate,
                                 response=s.NewApiKey, status=201),
    ("DELETE", "/v1/api-keys/<key_id>"): Op("Account", "Revoke an API key", response=s.ApiKey),
    ("GET", "/v1/audit"): Op("Account", "The audit log, newest first", response=s.AuditPage, query=(
        limit(), BEFORE, q("action"), q("actor"), q("target_type"), q("target_id"),
        q("since", "ISO 8601 time", format="date-time"), q("until", "ISO 8601 time", format="date-time"))),

    # --- channels and provider webhooks ----------------------------------------------------------------------
    ("POST", "/v1/channels"): Op("Channels", "Register a channel", body=api.ChannelCreate, response=s.Channel,
                                 status=201),
    ("GET", "/v1/channels"): Op("Channels", "List channels", response=s.ChannelPage),
    ("GET", "/v1/channels/summary"): Op("Channels", "List channels by id, kind, name and status",
                                        response=s.ChannelSummaryPage),
    ("GET", "/v1/channels/<channel_id>"): Op("Channels", "Read a channel", response=s.Channel),
    ("PATCH", "/v1/channels/<channel_id>"): Op("Channels", "Change a channel (name, status, credentials, settings)",
                                               body=api.ChannelUpdate, response=s.Channel),
    ("GET", "/webhooks/<provider>"): Op(
        "Provider webhooks", "Meta's subscription handshake: echoes hub.challenge", response=TEXT,
        query=(q("hub.mode", enum=["subscribe"]), q("hub.verify_token"), q("hub.challenge")), path_types=PROVIDER),
    ("POST", "/webhooks/<provider>"): Op(
        "Provider webhooks", "Receive a provider's webhook (verified, stored durably, then acknowledged)",
        body={"application/json": JSON_OBJECT, "application/x-www-form-urlencoded": JSON_OBJECT},
        response={"text/plain": {"type": "string"}, "text/xml": {"type": "string"}},
        handler="webhooks.receiver:Receiver._handle", operation_id="receive_webhook", path_types=PROVIDER,
        description="whatsapp, messenger and instagram sign with X-Hub-Signature-256, twilio with "
                    "X-Twilio-Signature. 200 once the raw event is committed (Twilio: an empty TwiML answer); "
                    "a body that parses but is not understood is stored and listed at "
                    "GET /v1/inbound-events/review."),
    ("GET", "/v1/inbound-events/review"): Op("Channels", "Webhooks stored but not fully understood",
                                             response=s.ReviewEventPage, query=(limit(),)),
    ("GET", "/v1/notices"): Op("Channels", "Provider notices, newest first", response=s.NoticePage,
                               query=(q("topic"), limit())),

    # --- contacts --------------------------------------------------------------------------------------------
    ("POST", "/v1/contacts"): Op("Contacts", "Create a contact", body=api.ContactCreate, response=s.Contact,
                                 status=201),
    ("GET", "/v1/contacts"): Op(
        "Contacts", "Search contacts", response=s.ContactPage,
        description="Newest first. Filters combine; `attribute.<name>=<value>` filters by a filterable "
                    "attribute (any other parameter is a 400).",
        query=(limit(), BEFORE, q("phone", "E.164, 00…, or national with region"),
               q("region", "ISO 3166 alpha-2, for a national phone number"),
               q("tag", "repeatable: all must hold"), q("channel_id", **UUID),
               q("channel_kind", enum=["whatsapp", "messenger", "instagram", "twilio", "sandbox"]),
               q("active_after", format="date-time"), q("active_before", format="date-time"))),
    ("GET", "/v1/contacts/<contact_id>"): Op("Contacts", "Read a contact", response=s.Contact),
    ("PATCH", "/v1/contacts/<contact_id>"): Op("Contacts", "Change a contact's attributes, tags, name or language",
                                               body=r.ContactPatch, response=s.Contact),
    ("DELETE", "/v1/contacts/<contact_id>"): Op("Contacts", "Erase a contact (GDPR Art. 17)", status=204),
    ("GET", "/v1/contacts/<contact_id>/export"): Op("Contacts", "Export everything held about a contact",
                                                    response=s.ContactExport),
    ("GET", "/v1/contacts/<contact_id>/timeline"): Op(
        "Contacts", "The contact's timeline across channels", response=s.Timeline,
        query=(limit(), q("after", "the previous page's `next`"), q("order", enum=["asc", "desc"]),
               q("kinds", "comma-separated: message, status, note, thread_event, consent, survey_answer, "
                          "campaign"))),
    ("POST", "/v1/contacts/<contact_id>/merge"): Op("Contacts", "Merge another contact into this one",
                                                    body=api.ContactRef, response=s.Merge, status=201),
    ("POST", "/v1/contacts/<contact_id>/unmerge"): Op("Contacts", "Undo a merge", body=api.ContactRef,
                                                      response=s.Merge),
    ("POST", "/v1/contacts/import"): Op(
        "Contacts", "Import contacts from a CSV file", response=s.ContactImport, status=201,
        body={"text/csv": r.CSV_FILE, "multipart/form-data": r.CSV_FORM},
        query=(q("default_region", "ISO 3166 alpha-2 for numbers without +"), q("filename"))),
    ("GET", "/v1/contacts/imports"): Op("Contacts", "List contact imports", response=s.ContactImportPage,
                                        query=(limit(), BEFORE)),
    ("GET", "/v1/contacts/imports/<import_id>"): Op("Contacts", "Read a contact import", response=s.ContactImport),
    ("GET", "/v1/attribute-definitions"): Op("Contacts", "List typed attributes",
                                             response=s.AttributeDefinitionPage),
    ("POST", "/v1/attribute-definitions"): Op("Contacts", "Define a typed attribute",
                                              body=r.AttributeDefinitionCreate, response=s.AttributeDefinition,
                                              status=201),
    ("PATCH", "/v1/attribute-definitions/<name>"): Op("Contacts", "Change an attribute's label or filterable",
                                                      body=r.AttributeDefinitionUpdate,
                                                      response=s.AttributeDefinition),
    ("DELETE", "/v1/attribute-definitions/<name>"): Op("Contacts", "Delete an attribute definition", status=204),

    # --- consent ---------------------------------------------------------------------------------------------
    ("GET", "/v1/contacts/<contact_id>/consents"): Op("Consent", "A contact's consent state and history",
                                                      response=s.Consents),
    ("POST", "/v1/contacts/<contact_id>/consents"): Op("Consent", "Record a grant or withdrawal",
                                                       body=r.ConsentRecord, response=s.ConsentEvent, status=201),
    ("GET", "/v1/consent-settings"): Op("Consent", "Purposes, keywords and replies", response=s.ConsentSettings),
    ("PUT", "/v1/consent-settings"): Op("Consent", "Replace the account's consent overrides",
                                        body=r.ConsentSettingsPut, response=s.ConsentSettings),

    # --- threads ---------------------------------------------------------------------------------------------
    ("GET", "/v1/threads"): Op(
        "Threads", "The inbox", response=s.ThreadPage,
        query=(limit(), BEFORE, q("status", "comma-separated: open, pending, snoozed, resolved"),
               q("team_id", **UUID), q("assignee", "an agent id, or none"), q("channel_id", **UUID),
               q("contact_id", **UUID), q("tag"), q("unread", enum=["true", "false"]),
               q("window", enum=["open", "closed"]), q("sort", enum=["activity", "waiting"]))),
    ("GET", "/v1/threads/<thread_id>"): Op("Threads", "Read a thread", response=s.Thread),
    ("GET", "/v1/threads/<thread_id>/messages"): Op(
        "Threads", "A thread's messages, oldest first", response=s.ThreadMessages,
        query=(limit(100), q("before", "a `previous` cursor, or latest"), q("after", "a `next` cursor"))),
    ("POST", "/v1/threads/<thread_id>/read"): Op("Threads", "Mark a thread read by an agent",
                                                 response=s.ThreadRead, body_required=False),
    ("POST", "/v1/threads/<thread_id>/status"): Op("Threads", "Open, set pending, snooze or resolve a thread",
                                                   body=r.ThreadStatus, response=s.ThreadStatusChange),
    ("POST", "/v1/threads/<thread_id>/assign"): Op("Threads", "Assign a thread to a team or an agent",
                                                   body=r.ThreadAssign, response=s.Thread,
                                                   raises=("gateway.routing",)),
    ("POST", "/v1/threads/<thread_id>/handler"): Op("Threads", "Hand a thread off to people, or back to the bot",
                                                    body=r.ThreadHandlerChange, response=s.ThreadHandler),
    ("GET", "/v1/threads/<thread_id>/decisions"): Op("Threads", "Automation decisions on a thread",
                                                     response=s.DecisionPage, query=(limit(100, 500),)),
    ("POST", "/v1/threads/<thread_id>/notes"): Op("Threads", "Add an internal note", body=r.NoteCreate,
                                                  response=s.Note, status=201),
    ("GET", "/v1/threads/<thread_id>/notes"): Op("Threads", "A thread's notes, oldest first", response=s.NotePage,
                                                 query=(limit(), AFTER)),
    ("GET", "/v1/threads/<thread_id>/tags"): Op("Threads", "A thread's tags", response=s.ThreadTags),
    ("POST", "/v1/threads/<thread_id>/tags"): Op("Threads", "Add or remove a thread's tags",
                                                 body=r.ThreadTagsChange, response=s.ThreadTagChange),
    ("GET", "/v1/threads/<thread_id>/surveys"): Op("Threads", "A thread's survey requests",
                                                   response=s.SurveyRequestPage),
    ("GET", "/v1/queues/<team_id>"): Op("Threads", "A team's queue, longest waiting first", response=s.TeamQueue,
                                        query=(limit(), AFTER)),

    # --- messages and media ----------------------------------------------------------------------------------
    ("POST", "/v1/messages"): Op(
        "Messages", "Send a message (through the send gate)", body=api.MessageCreate,
        responses={202: s.MessageDetail, 200: s.MessageDetail}, raises=SEND_GATE,
        headers=(h("Idempotency-Key", "same key and body: 200 with the same message; another body: 409",
                   minLength=1, maxLength=255),),
        description="202 with the queued message. With an Idempotency-Key seen before, 200 with that message."),
    ("POST", "/v1/messages/batch"): Op("Messages", "Send up to 100 messages, each through the send gate",
                                       body=r.MessageBatch, response=s.BatchResult, raises=SEND_GATE),
    ("GET", "/v1/messages"): Op(
        "Messages", "Outbound messages by state (the dead letters by default)", response=s.OutboundMessagePage,
        query=(q("state", enum=["queued", "sending", "retry_scheduled", "sent", "delivered", "read", "failed"]),
               limit())),
    ("GET", "/v1/messages/<message_id>"): Op("Messages", "Read a message with its history",
                                             response=s.MessageDetail),
    ("POST", "/v1/messages/<message_id>/read"): Op("Messages", "Send a read receipt for an inbound message",
                                                   response=s.ReadReceipt, status=202, raises=SEND_GATE),
    ("POST", "/v1/media"): Op("Media", "Upload a file to send", body={"multipart/form-data": r.UPLOAD_FORM},
                              response=s.Upload, status=201),
    ("GET", "/v1/uploads/<upload_id>"): Op("Media", "An upload's metadata", response=s.Upload),
    ("GET", "/media-links/<token>"): Op(
        "Media", "An upload's bytes, for providers (the token is the credential)", response=ANY_FILE,
        description="Links are made when a message is sent and last an hour."),
    ("GET", "/v1/media/<media_id>"): Op("Media", "A received file's bytes", response=ANY_FILE),
    ("POST", "/v1/media/<media_id>/retry"): Op("Media", "Retry a failed download", response=s.MediaRetry,
                                               status=202),

    # --- templates -------------------------------------------------------------------------------------------
    ("POST", "/v1/templates/sync"): Op("Templates", "Pull the channel's WhatsApp templates from Meta",
                                       body=r.ChannelRef, response=s.TemplateSync),
    ("GET", "/v1/templates"): Op("Templates", "The channel's template catalog", response=s.TemplatePage,
                                 query=(q("channel_id", required=True, **UUID), q("name"), q("status"), limit())),
    ("POST", "/v1/templates"): Op("Templates", "Validate and submit a template", body=r.TemplateDefinition,
                                  responses={201: s.TemplateSubmission, 200: s.TemplateSubmission}),
    ("GET", "/v1/templates/<name>"): Op("Templates", "One translation of a template", response=s.Template,
                                        query=(q("channel_id", **UUID), q("language"))),
    ("PUT", "/v1/templates/<name>"): Op("Templates", "Edit a template (Meta reviews it again)",
                                        body=r.TemplateDefinition, response=s.TemplateSubmission),
    ("DELETE", "/v1/templates/<name>"): Op("Templates", "Delete a template at Meta and from the catalog",
                                           response=s.TemplateDeletion,
                                           query=(q("channel_id", required=True, **UUID), q("language"))),
    ("POST", "/v1/templates/<name>/preview"): Op("Templates", "Render a template with parameters",
                                                 body=r.TemplatePreviewBody, response=s.TemplatePreview,
                                                 query=(q("channel_id", **UUID), q("language"))),

    # --- campaigns -------------------------------------------------------------------------------------------
    ("POST", "/v1/campaigns"): Op("Campaigns", "Create a campaign", body=r.CampaignBody, response=s.Campaign,
                                  status=201),
    ("GET", "/v1/campaigns"): Op("Campaigns", "List campaigns", response=s.CampaignPage, query=(
        q("state", enum=["draft", "scheduled", "running", "paused", "completed", "cancelled"]),
        q("before", "the previous page's `next`", **UUID),
        q("counts", "true: each campaign with its `counts` and `pace_per_s_effective`, as one campaign's read has "
                    "them", enum=["true", "false"]), limit())),
    ("POST", "/v1/campaigns/dry-run"): Op("Campaigns", "Dry run of an unsaved campaign", body=r.CampaignBody,
                                          response=s.DryRun),
    ("GET", "/v1/campaigns/<campaign_id>"): Op("Campaigns", "A campaign with its progress", response=s.Campaign),
    ("POST", "/v1/campaigns/<campaign_id>/dry-run"): Op("Campaigns", "Dry run of a saved campaign",
                                                        response=s.DryRun, body_required=False),
    ("POST", "/v1/campaigns/<campaign_id>/start"): Op("Campaigns", "Start a campaign", response=s.CampaignChange),
    ("POST", "/v1/campaigns/<campaign_id>/pause"): Op("Campaigns", "Pause a campaign", response=s.CampaignChange),
    ("GET", "/v1/campaigns/<campaign_id>/activity"): Op(
        "Campaigns", "Sends, deliveries, reads, replies and failures over time", response=s.CampaignActivity,
        query=(q("bucket", "the bucket size; auto: minute up to 3 hours of activity, hour up to 7 days, else day",
                 enum=["auto", "minute", "hour", "day"]),)),
    ("POST", "/v1/campaigns/<campaign_id>/resume"): Op("Campaigns", "Resume a campaign",
                                                       response=s.CampaignChange),
    ("POST", "/v1/campaigns/<campaign_id>/cancel"): Op("Campaigns", "Cancel a campaign",
                                                       response=s.CampaignChange),
    ("GET", "/v1/campaigns/<campaign_id>/recipients"): Op(
        "Campaigns", "Per-recipient results", response={"application/json": s.CampaignRecipientPage, **CSV},
        query=(q("format", enum=["json", "csv"]), limit(100, 1000),
               q("after", "the previous page's `next` (a seq)", "integer"))),

    # --- automation and assistant ----------------------------------------------------------------------------
    ("GET", "/v1/automations"): Op("Automation", "List automation rules", response=s.AutomationPage),
    ("POST", "/v1/automations"): Op("Automation", "Create an automation rule", body=r.AutomationRule,
                                    response=s.Automation, status=201),
    ("GET", "/v1/automations/<rule_id>"): Op("Automation", "Read an automation rule", response=s.Automation),
    ("PUT", "/v1/automations/<rule_id>"): Op("Automation", "Replace an automation rule", body=r.AutomationRule,
                                             response=s.Automation),
    ("DELETE", "/v1/automations/<rule_id>"): Op("Automation", "Delete an automation rule", status=204),
    ("GET", "/v1/automation-settings"): Op("Automation", "The account's automation settings",
                                           response=s.AutomationSettings),
    ("PUT", "/v1/automation-settings"): Op("Automation", "Change automation settings",
                                           body=r.AutomationSettingsPut, response=s.AutomationSettings),
    ("GET", "/v1/knowledge-base"): Op("Assistant", "List knowledge-base entries", response=s.KnowledgeEntryPage,
                                      query=(q("language"), limit(), AFTER)),
    ("POST", "/v1/knowledge-base"): Op("Assistant", "Create a knowledge-base entry", body=r.KnowledgeEntryBody,
                                       response=s.KnowledgeEntry, status=201),
    ("GET", "/v1/knowledge-base/<entry_id>"): Op("Assistant", "Read a knowledge-base entry",
                                                 response=s.KnowledgeEntry),
    ("PUT", "/v1/knowledge-base/<entry_id>"): Op("Assistant", "Change a knowledge-base entry",
                                                 body=r.KnowledgeEntryChange, response=s.KnowledgeEntry),
    ("DELETE", "/v1/knowledge-base/<entry_id>"): Op("Assistant", "Delete a knowledge-base entry", status=204),
    ("POST", "/v1/knowledge-base/import"): Op(
        "Assistant", "Import knowledge-base entries (CSV or YAML)", response=s.KnowledgeImport, status=201,
        body={"text/csv": r.CSV_FILE, "application/yaml": r.YAML_FILE},
        query=(q("format", enum=["csv", "yaml"]), q("language", "for rows that name none"))),
    ("GET", "/v1/knowledge-base/settings"): Op("Assistant", "The assistant's threshold",
                                               response=s.KnowledgeSettings),
    ("PUT", "/v1/knowledge-base/settings"): Op("Assistant", "Change the assistant's threshold",
                                               body=r.KnowledgeSettingsPut, response=s.KnowledgeSettings),
    ("POST", "/v1/knowledge-base/ask"): Op("Assistant", "What the assistant would answer", body=r.Ask,
                                           response=s.AskAnswer),

    # --- surveys and reports ---------------------------------------------------------------------------------
    ("GET", "/v1/surveys/config"): Op("Surveys", "The account's survey", response=s.SurveyConfig),
    ("PUT", "/v1/surveys/config"): Op("Surveys", "Set the account's survey", body=r.SurveyConfigPut,
                                      response=s.SurveyConfig),
    ("GET", "/v1/surveys/responses"): Op(
        "Surveys", "Survey answers, newest first", response=s.SurveyResponsePage,
        query=(q("thread_id", **UUID), q("channel_id", **UUID), q("kind", enum=["csat", "nps", "ces"]),
               q("since", format="date-time"), limit(), BEFORE)),
    ("GET", "/v1/reports/summary"): Op(
        "Reports", "Contact-center figures for a range of days", response={"application/json": s.Report, **CSV},
        query=(q("from", "YYYY-MM-DD, the account's time zone", format="date"),
               q("to", "YYYY-MM-DD, inclusive", format="date"),
               q("group_by", enum=["day", "week", "channel", "team", "agent"]),
               q("fcr_days", type="integer"), q("sla_seconds", type="integer"), q("format", enum=["json", "csv"]))),

    # --- agents, teams, routing ------------------------------------------------------------------------------
    ("GET", "/v1/teams"): Op("Routing", "List teams", response=s.TeamPage),
    ("POST", "/v1/teams"): Op("Routing", "Create a team", body=TeamCreate, response=s.Team, status=201),
    ("GET", "/v1/teams/<team_id>"): Op("Routing", "Read a team", response=s.Team),
    ("PATCH", "/v1/teams/<team_id>"): Op("Routing", "Rename a team or change its strategy", body=TeamUpdate,
                                         response=s.Team),
    ("DELETE", "/v1/teams/<team_id>"): Op("Routing", "Delete a team", status=204),
    ("PUT", "/v1/teams/<team_id>/members/<agent_id>"): Op(
        "Routing", "Add an agent to a team", responses={201: s.Membership, 200: s.Membership},
        body_required=False),
    ("DELETE", "/v1/teams/<team_id>/members/<agent_id>"): Op("Routing", "Remove an agent from a team", status=204),
    ("GET", "/v1/agents"): Op("Routing", "List agents", response=s.AgentPage, query=(
        q("availability", enum=["available", "away", "offline"]), q("external_id"), q("team_id", **UUID))),
    ("POST", "/v1/agents"): Op("Routing", "Create an agent", body=AgentCreate, response=s.Agent, status=201),
    ("GET", "/v1/agents/<agent_id>"): Op("Routing", "Read an agent", response=s.Agent),
    ("PATCH", "/v1/agents/<agent_id>"): Op("Routing", "Change an agent", body=AgentUpdate,
                                           response=s.AgentChange),
    ("DELETE", "/v1/agents/<agent_id>"): Op("Routing", "Delete an agent", status=204),
    ("GET", "/v1/routing-rules"): Op("Routing", "List routing rules in the order they are tried",
                                     response=s.RoutingRulePage),
    ("POST", "/v1/routing-rules"): Op("Routing", "Create a routing rule", body=r.RoutingRuleBody,
                                      response=s.RoutingRule, status=201),
    ("GET", "/v1/routing-rules/<rule_id>"): Op("Routing", "Read a routing rule", response=s.RoutingRule),
    ("PUT", "/v1/routing-rules/<rule_id>"): Op("Routing", "Replace a routing rule", body=r.RoutingRuleBody,
                                               response=s.RoutingRule),
    ("DELETE", "/v1/routing-rules/<rule_id>"): Op("Routing", "Delete a routing rule", status=204),

    # --- events and event webhooks ---------------------------------------------------------------------------
    ("GET", "/v1/webhook-endpoints"): Op("Events", "List webhook endpoints", response=s.WebhookEndpointPage),
    ("POST", "/v1/webhook-endpoints"): Op("Events", "Create a webhook endpoint (the secret is shown once)",
                                          body=hooks.EndpointCreate, response=s.NewWebhookEndpoint, status=201),
    ("GET", "/v1/webhook-endpoints/<endpoint_id>"): Op("Events", "Read a webhook endpoint",
                                                       response=s.WebhookEndpoint),
    ("PATCH", "/v1/webhook-endpoints/<endpoint_id>"): Op("Events", "Change a webhook endpoint",
                                                         body=hooks.EndpointUpdate, response=s.WebhookEndpoint),
    ("DELETE", "/v1/webhook-endpoints/<endpoint_id>"): Op("Events", "Delete a webhook endpoint", status=204),
    ("POST", "/v1/webhook-endpoints/<endpoint_id>/rotate-secret"): Op(
        "Events", "Rotate an endpoint's signing secret", body=hooks.SecretRotation, response=s.WebhookSecret,
        body_required=False),
    ("GET", "/v1/webhook-endpoints/<endpoint_id>/deliveries"): Op(
        "Events", "An endpoint's delivery log, newest first", response=s.WebhookDeliveryPage,
        query=(q("state", enum=["pending", "delivering", "delivered", "dead"]), q("event_type"),
               limit(50, 500), q("before", "the previous page's `next`", "integer", minimum=1))),
    ("GET", "/v1/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>"): Op(
        "Events", "One delivery with its attempts", response=s.WebhookDelivery),
    ("POST", "/v1/webhook-endpoints/<endpoint_id>/deliveries/<delivery_id>/replay"): Op(
        "Events", "Deliver one event again", response=s.WebhookDelivery, status=202, body_required=False),
    ("POST", "/v1/webhook-endpoints/<endpoint_id>/replay"): Op(
        "Events", "Deliver every event since a time again", body=hooks.Replay, response=s.WebhookReplay,
        status=202),
    ("GET", "/v1/events"): Op(
        "Events", "The change feed, oldest first", response=s.EventFeed,
        query=(q("after", "the `next` of the previous answer"),
               q("limit", "1 to 1000 (default 100)", "integer"),
               q("types", "comma-separated event types, e.g. message.received,thread.status_changed"))),
}
