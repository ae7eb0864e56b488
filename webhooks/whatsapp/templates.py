"""Meta's message_templates API for a WhatsApp Business Account: list (all pages) and create.

``GET /{version}/{waba-id}/message_templates?fields=…&limit=…`` pages with ``paging.next``; ``POST`` the
same path creates one (Meta answers ``{id, status, category}``). The WABA id is the channel's
``group_id``. Errors raise TemplateApiError with Meta's code and message, never the token.
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


def _endpoint(channel: Mapping[str, Any]) -> str:
    settings = channel.get("settings") or {}
    waba = channel.get("group_id")
    if not waba:
        raise TemplateApiError("the channel has no WhatsApp Business Account id (group_id); set it on the channel",
                               code="config")
    base = (settings.get("api_base_url") or DEFAULT_BASE).rstrip("/")
    version = (settings.get("graph_version") or DEFAULT_VERSION).strip("/")
    return f"{base}/{version}/{quote(str(waba), safe='')}/message_templates"


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
        raise TemplateApiError(f"Meta answered {response.status_code}: "
                               f"{provider_http.scrub(str(message or 'no readable error'))}",
                               code=code or str(response.status_code))
    return doc


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
    timeout = provider_http.send_timeouts(channel.get("settings"), CONNECT_TIMEOUT, READ_TIMEOUT)
    try:
        return _answer(session().post(_endpoint(channel), json=dict(definition), headers=_headers(credentials),
                                      timeout=timeout, allow_redirects=False))
    except requests.RequestException as exc:
        raise TemplateApiError(f"could not reach Meta ({type(exc).__name__})", code="network") from None
