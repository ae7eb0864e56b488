"""Meta's message_templates API for a WhatsApp Business Account: list (all pages), create, edit and delete.

``GET /{version}/{waba-id}/message_templates?fields=…&limit=…`` pages with ``paging.next``; ``POST`` the
same path creates one (Meta answers ``{id, status, category}``); ``DELETE`` it with ``?name=…[&hsm_id=…]``
deletes every language of a name, or one template. ``POST /{version}/{template-id}`` edits one. The WABA id
is the channel's ``group_id``. Errors raise TemplateApiError with Meta's code and message, never the token.
"""
from __future__ import annotations

from typing import Any, Mapping
from urllib.parse import quote

import requests

from gateway import provider_http
from webhooks.whatsapp.send import CONNECT_TIMEOUT, DEFAULT_BASE, DEFAULT_VERSION, READ_TIMEOUT, session

FIELDS = "name,status,language,category,components,parameter_format,quality_score,rejected_reason"
PAGE_LIMIT = 100
MAX_PAGES = 200


class TemplateApiError(Exception):
    def __init__(self, message: str, code: str | None = None):
        super().__init__(message)
        self.code = code


def _graph(channel: Mapping[str, Any]) -> str:
    settings = channel.get("settings") or {}
    base = (settings.get("api_base_url") or DEFAULT_BASE).rstrip("/")
    version = (settings.get("graph_version") or DEFAULT_VERSION).strip("/")
    return f"{base}/{version}"


def _endpoint(channel: Mapping[str, Any]) -> str:
    waba = channel.get("group_id")
    if not waba:
        raise TemplateApiError("the channel has no WhatsApp Business Account id (group_id); set it on the channel",
                               code="config")
    return f"{_graph(channel)}/{quote(str(waba), safe='')}/message_templates"


def _headers(credentials: Mapping[str, Any]) -> dict:
    token = credentials.get("access_token")
    if not token:
        raise TemplateApiError("the channel has no access_token", code="config")
    return {"Authorization": f"Bearer {token}"}


def _answer(response: requests.Response) -> dict:
    try:
        doc = response.json()
    except ValueError:
        doc = None
    if response.status_code != 200 or not isinstance(doc, dict):
        error = (doc or {}).get("error") if isinstance(doc, dict) else None
        code = str(error.get("code")) if isinstance(error, dict) and error.get("code") is not None else None
        message = error.get("message") if isinstance(error, dict) else None
        if isinstance(error, dict) and error.get("error_user_msg"):
            # Template refusals say what is wrong only here ("message" is a bare "Invalid parameter").
            message = f"{message}: {error['error_user_msg']}"
        raise TemplateApiError(f"Meta answered {response.status_code}: "
                               f"{provider_http.scrub(str(message or 'no readable error'))}",
                               code=code or str(response.status_code))
    return doc


def _call(method: str, channel: Mapping[str, Any], credentials: Mapping[str, Any], url: str, **kwargs) -> dict:
    timeout = provider_http.send_timeouts(channel.get("settings"), CONNECT_TIMEOUT, READ_TIMEOUT)
    headers = _headers(credentials)
    try:
        return _answer(session().request(method, url, headers=headers, timeout=timeout, allow_redirects=False,
                                         **kwargs))
    except requests.RequestException as exc:
        raise TemplateApiError(f"could not reach Meta ({type(exc).__name__})", code="network") from None


def list_all(channel: Mapping[str, Any], credentials: Mapping[str, Any]) -> list[dict]:
    """Every template of the channel's WABA, all pages."""
    url, params = _endpoint(channel), {"fields": FIELDS, "limit": str(PAGE_LIMIT)}
    timeout = provider_http.send_timeouts(channel.get("settings"), CONNECT_TIMEOUT, READ_TIMEOUT)
    out: list[dict] = []
    for _ in range(MAX_PAGES):
        try:
            doc = _answer(session().get(url, params=params, headers=_headers(credentials), timeout=timeout))
        except requests.RequestException as exc:
            raise TemplateApiError(f"could not reach Meta ({type(exc).__name__})", code="network") from None
        out.extend(t for t in doc.get("data") or [] if isinstance(t, dict) and t.get("name") and t.get("language"))
        following = (doc.get("paging") or {}).get("next")
        if not following:
            return out
        url, params = following, None
    raise TemplateApiError(f"more than {MAX_PAGES} pages of templates", code="too_many")


def create(channel: Mapping[str, Any], credentials: Mapping[str, Any], definition: Mapping[str, Any]) -> dict:
    """Submit one template for review: Meta's ``{id, status, category}``."""
    return _call("POST", channel, credentials, _endpoint(channel), json=dict(definition))


def delete(channel: Mapping[str, Any], credentials: Mapping[str, Any], name: str,
           meta_id: str | None = None) -> dict:
    """Delete every language of template ``name``, or only the one whose Meta id is ``meta_id``: ``{success}``."""
    if not name:
        raise TemplateApiError("a template name is required to delete it", code="config")
    params = {"name": name}
    if meta_id:
        params["hsm_id"] = str(meta_id)
    return _call("DELETE", channel, credentials, _endpoint(channel), params=params)


def edit(channel: Mapping[str, Any], credentials: Mapping[str, Any], meta_id: str,
         definition: Mapping[str, Any]) -> dict:
    """Edit the template ``meta_id`` from a template definition: Meta takes only its components and category
    (name and language never change), and puts it back in review. ``{success}``."""
    if not meta_id or not str(meta_id).isdigit():
        raise TemplateApiError(f"a template edit needs Meta's numeric template id, got {meta_id!r}", code="config")
    body = {key: definition[key] for key in ("components", "category") if definition.get(key) is not None}
    if not body:
        raise TemplateApiError("a template edit needs the template's components (or a category)", code="config")
    return _call("POST", channel, credentials, f"{_graph(channel)}/{meta_id}", json=body)
