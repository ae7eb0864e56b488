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


class ContactCreate(StrictSchema):
    name = fields.String(validate=validate.Length(max=500), allow_none=True)
    language = fields.String(validate=validate.Regexp(r"^[a-z]{2,3}(_[A-Z]{2})?$",
                             error="use a language code such as 'es' or 'pt_BR'"), allow_none=True)
    profile = fields.Dict(keys=fields.String(), allow_none=True)
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
    status = fields.String(validate=validate.OneOf(("active", "disabled")))
    group_id = fields.String(validate=validate.Length(max=200), allow_none=True)
    credentials = _SECRET
    settings = fields.Dict(keys=fields.String())


class ContactRef(StrictSchema):
    contact_id = fields.UUID(required=True)
