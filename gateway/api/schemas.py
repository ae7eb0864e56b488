"""Request and response schemas of the REST API (marshmallow; unknown fields are rejected)."""
from __future__ import annotations

from marshmallow import RAISE, Schema, fields, validate, validates_schema, ValidationError

from gateway.accounts import SCOPES
from gateway.contacts import IDENTITY_KINDS, InvalidAddress, normalise_address


class StrictSchema(Schema):
    class Meta:
        unknown = RAISE


class ApiKeyCreate(StrictSchema):
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    scopes = fields.List(fields.String(validate=validate.OneOf(SCOPES)), required=True,
                         validate=validate.Length(min=1))


class IdentityIn(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(IDENTITY_KINDS))
    address = fields.String(required=True, validate=validate.Length(min=1, max=320))

    @validates_schema
    def _normalise(self, data, **kwargs):
        try:
            data["address"] = normalise_address(data["kind"], data["address"])
        except InvalidAddress as exc:
            raise ValidationError(str(exc), field_name="address") from None


LANGUAGE_CODE = validate.Regexp(r"^[a-z]{2,3}(_[A-Z]{2})?$", error="use a language code such as 'es' or 'pt_BR'")


def _time_zone(name: str) -> None:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValidationError(f"{name!r} is not an IANA time zone; e.g. Europe/Madrid") from None


class AccountUpdate(StrictSchema):
    timezone = fields.String(validate=_time_zone)
    default_language = fields.String(validate=LANGUAGE_CODE, allow_none=True)
    # Days; null keeps forever. Raw events need 7 at least: the stored row is what makes a provider's
    # redelivery (Meta retries for up to a week) a duplicate.
    retention_message_days = fields.Integer(allow_none=True, strict=True, validate=validate.Range(
        min=1, max=36500, error="must be a number of days from 1 to 36500, or null to keep messages forever"))
    retention_raw_event_days = fields.Integer(allow_none=True, strict=True, validate=validate.Range(
        min=7, max=36500, error="must be a number of days from 7 (providers redeliver for up to a week) "
                                "to 36500, or null to keep raw events forever"))
    # Report defaults (gateway/reports): the FCR window and the service-level target; null: 7 days, 60 s.
    report_fcr_days = fields.Integer(allow_none=True, strict=True, validate=validate.Range(
        min=1, max=90, error="must be a number of days from 1 to 90, or null for the default (7)"))
    report_sla_seconds = fields.Integer(allow_none=True, strict=True, validate=validate.Range(
        min=1, max=604800, error="must be a number of seconds from 1 to 604800, or null for the default (60)"))


class ContactCreate(StrictSchema):
    name = fields.String(validate=validate.Length(max=500), allow_none=True)
    language = fields.String(validate=LANGUAGE_CODE, allow_none=True)
    profile = fields.Dict(keys=fields.String(), allow_none=True)
    tags = fields.List(fields.String(validate=validate.Length(min=1, max=64)), allow_none=True)
    identities = fields.List(fields.Nested(IdentityIn), load_default=list)


_CHANNEL_KINDS = ("whatsapp", "messenger", "instagram", "twilio", "sandbox")
_SECRET = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                      values=fields.String(allow_none=True, validate=validate.Length(max=4096)))


class ChannelCreate(StrictSchema):
    kind = fields.String(required=True, validate=validate.OneOf(_CHANNEL_KINDS))
    name = fields.String(required=True, validate=validate.Length(min=1, max=200))
    external_id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    group_id = fields.String(validate=validate.Length(max=200), allow_none=True)
    credentials = fields.Dict(keys=fields.String(validate=validate.Length(min=1, max=64)),
                              values=fields.String(validate=validate.Length(max=4096)), load_default=dict)
    settings = fields.Dict(keys=fields.String(), load_default=dict)


class ChannelUpdate(StrictSchema):
    name = fields.String(validate=validate.Length(min=1, max=200))
    status = fields.String(validate=validate.OneOf(("active", "disabled")))   # paused is set by the gateway
    group_id = fields.String(validate=validate.Length(max=200), allow_none=True)
    credentials = _SECRET
    settings = fields.Dict(keys=fields.String())


class ContactRef(StrictSchema):
    contact_id = fields.UUID(required=True)


_SEND_TYPES = ("text", "template", "image", "video", "audio", "document", "sticker", "interactive", "location",
               "contacts", "reaction")


class Recipient(StrictSchema):
    kind = fields.String(validate=validate.OneOf(IDENTITY_KINDS))
    address = fields.String(required=True, validate=validate.Length(min=1, max=320))


class TextContent(StrictSchema):
    body = fields.String(required=True, validate=validate.Length(min=1))
    preview_url = fields.Boolean(load_default=False)


class MediaContent(StrictSchema):
    link = fields.Url(schemes={"http", "https"})
    media_id = fields.String(validate=validate.Length(min=1, max=200))
    caption = fields.String()
    filename = fields.String(validate=validate.Length(max=240))

    @validates_schema
    def _one_source(self, data, **kwargs):
        if bool(data.get("link")) == bool(data.get("media_id")):
            raise ValidationError("give exactly one of link or media_id", field_name="link")


class TemplateContent(StrictSchema):
    name = fields.String(required=True, validate=validate.Regexp(r"^[a-z0-9_]{1,512}$",
                         error="template names are lowercase letters, digits and underscores"))
    # Left out: the catalog picks the translation (the contact's language, its base, the account default).
    language = fields.String(validate=validate.Length(min=2, max=15))
    # Either Cloud API components as they are, or parameters the catalog renders and checks (see
    # templates_catalog.render: a list or map for the body, or {header, body, buttons, …}).
    components = fields.List(fields.Dict(), load_default=list)
    parameters = fields.Raw()

    @validates_schema
    def _one_form(self, data, **kwargs):
        if data.get("components") and data.get("parameters") is not None:
            raise ValidationError("give parameters (checked against the synced catalog) or components, not both",
                                  field_name="parameters")


class Button(StrictSchema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=256))
    title = fields.String(required=True, validate=validate.Length(min=1, max=20))


class Row(StrictSchema):
    id = fields.String(required=True, validate=validate.Length(min=1, max=200))
    title = fields.String(required=True, validate=validate.Length(min=1, max=24))
    description = fields.String(validate=validate.Length(max=72))


class Section(StrictSchema):
    title = fields.String(validate=validate.Length(max=24))
    rows = fields.List(fields.Nested(Row), required=True, validate=validate.Length(min=1, max=10))


class InteractiveContent(StrictSchema):
    type = fields.String(required=True, validate=validate.OneOf(("button", "list")))
    body = fields.String(required=True, validate=validate.Length(min=1, max=1024))
    header = fields.String(validate=validate.Length(max=60))
    footer = fields.String(validate=validate.Length(max=60))
    buttons = fields.List(fields.Nested(Button), validate=validate.Length(min=1, max=3))
    button = fields.String(validate=validate.Length(min=1, max=20))
    sections = fields.List(fields.Nested(Section), validate=validate.Length(min=1, max=10))

    @validates_schema
    def _shape(self, data, **kwargs):
        if data["type"] == "button" and not data.get("buttons"):
            raise ValidationError("reply-button messages need 1 to 3 buttons", field_name="buttons")
        if data["type"] == "list" and not (data.get("button") and data.get("sections")):
            raise ValidationError("list messages need a button label and sections", field_name="sections")


class LocationContent(StrictSchema):
    latitude = fields.Float(required=True, validate=validate.Range(-90, 90))
    longitude = fields.Float(required=True, validate=validate.Range(-180, 180))
    name = fields.String()
    address = fields.String()


class ReactionContent(StrictSchema):
    message_id = fields.UUID(required=True)
    emoji = fields.String(load_default="", validate=validate.Length(max=16))


class MessageCreate(StrictSchema):
    channel_id = fields.UUID(required=True)
    contact_id = fields.UUID()
    to = fields.Nested(Recipient)
    type = fields.String(required=True, validate=validate.OneOf(_SEND_TYPES))
    text = fields.Nested(TextContent)
    template = fields.Nested(TemplateContent)
    image = fields.Nested(MediaContent)
    video = fields.Nested(MediaContent)
    audio = fields.Nested(MediaContent)
    document = fields.Nested(MediaContent)
    sticker = fields.Nested(MediaContent)
    interactive = fields.Nested(InteractiveContent)
    location = fields.Nested(LocationContent)
    contacts = fields.List(fields.Dict(), validate=validate.Length(min=1))
    reaction = fields.Nested(ReactionContent)
    reply_to = fields.UUID()
    purpose = fields.String(load_default="transactional",
                            validate=validate.OneOf(("transactional", "marketing", "surveys", "opt_out_confirmation")))
    tag = fields.String(validate=validate.OneOf(("HUMAN_AGENT", "ACCOUNT_UPDATE", "CONFIRMED_EVENT_UPDATE",
                                                 "POST_PURCHASE_UPDATE", "CUSTOMER_FEEDBACK")))

    @validates_schema
    def _shape(self, data, **kwargs):
        if bool(data.get("contact_id")) == bool(data.get("to")):
            raise ValidationError("give exactly one of contact_id or to", field_name="contact_id")
        if data["type"] not in data:
            raise ValidationError(f"a '{data['type']}' message needs a '{data['type']}' object",
                                  field_name=data["type"])
        extra = [t for t in _SEND_TYPES if t in data and t != data["type"]]
        if extra:
            raise ValidationError(f"only the '{data['type']}' object belongs in a '{data['type']}' message",
                                  field_name=extra[0])


class BatchMessage(MessageCreate):
    """One item of POST /v1/messages/batch: a message as POST /v1/messages takes it, plus its own key."""
    idempotency_key = fields.String(validate=validate.Length(min=1, max=255))
