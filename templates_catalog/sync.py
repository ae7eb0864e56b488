"""Keeping the catalog in step with Meta: pull a channel's WABA templates through its provider adapter."""
from __future__ import annotations

from gateway import channels
from templates_catalog import store


class SyncError(Exception):
    def __init__(self, message: str, status: int = 502, code: str | None = None):
        super().__init__(message)
        self.status, self.code = status, code


def target(conn, *, account_id, channel_id, error: type[SyncError] = SyncError) -> tuple[dict, object, dict]:
    """The WhatsApp channel whose business account holds the templates, its provider and its credentials;
    ``error`` (a SyncError) says what the channel lacks."""
    from webhooks import registry
    channel = channels.get_channel(conn, account_id=account_id, channel_id=channel_id)
    if channel is None:
        raise error(f"no channel with id {channel_id} in this account", status=404)
    provider = registry.get(channel["kind"])
    if not hasattr(provider, "list_templates"):
        raise error(f"{channel['kind']} channels have no message templates; use a WhatsApp channel",
                    status=422, code="not_whatsapp")
    if not channel.get("group_id"):
        raise error("the channel has no WhatsApp Business Account id: set group_id on the channel "
                    "(PATCH /v1/channels/{id})", status=422, code="no_waba")
    return channel, provider, channels.load_credentials(conn, account_id=account_id, channel_id=channel_id)


def pull(conn, *, account_id, channel_id) -> dict:
    """Every template of the channel's WhatsApp Business Account, stored with its status and quality.
    Returns ``{"waba_id", "pulled"}``; SyncError says what to fix."""
    channel, provider, credentials = target(conn, account_id=account_id, channel_id=channel_id)
    try:
        docs = provider.list_templates(channel, credentials)
    except Exception as exc:   # the adapter's TemplateApiError: Meta's answer, already without secrets
        raise SyncError(f"could not list the templates at Meta: {exc}", code=getattr(exc, "code", None)) from None
    pulled = store.upsert_from_meta(conn, account_id=account_id, waba_id=channel["group_id"], docs=docs,
                                    channel_id=channel_id)
    return {"waba_id": channel["group_id"], "pulled": pulled}
