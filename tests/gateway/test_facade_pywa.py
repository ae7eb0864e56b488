"""A bot written with pywa (a WhatsApp Cloud API client library from PyPI) runs against the gateway with two
settings changed - its requests go to the gateway's /graph instead of graph.facebook.com (through the
``httpx.Client`` pywa accepts), and its token is a gateway API key - and nothing else: it sends text, media,
template, interactive and reaction messages and marks a message read through the facade, the sandbox
provider receives them, and the customer's messages and the statuses come back to pywa's own webhook
handler (its signature check included) in Meta's format, under the ids pywa was given."""
from __future__ import annotations

import dataclasses
import struct
import time
import zlib

import httpx
import pytest
from pywa import WhatsApp
from pywa import errors as pywa_errors
from pywa.types import Button
from pywa.types.templates import TemplateLanguage

from gateway import db, runtime
from gateway.facade import ids
from templates_catalog import store
from tests.gateway.test_send_end_to_end import gateway_url, received, sandbox, wait_for  # noqa: F401
from tests.gateway.test_webhook_meta_format import (APP_SECRET, customer, meta_endpoint, says, signed_by,  # noqa: F401
                                                    wait_for_hits, whatsapp, world)


class ToGateway(httpx.BaseTransport):
    """What an operator does with a base-URL setting: Meta's Graph host becomes the gateway's /graph."""

    def __init__(self, gateway: str):
        self.gateway = httpx.URL(gateway)
        self.inner = httpx.HTTPTransport()
        self.seen: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.host == "graph.facebook.com":
            request.url = request.url.copy_with(scheme=self.gateway.scheme, host=self.gateway.host,
                                                port=self.gateway.port, path="/graph" + request.url.path)
            request.headers["Host"] = f"{self.gateway.host}:{self.gateway.port}"
        self.seen.append(f"{request.method} {request.url.path}")
        return self.inner.handle_request(request)

    def close(self) -> None:
        self.inner.close()


def png() -> bytes:
    """A real 1x1 PNG (the gateway checks an image is what its type says)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\xff\x00\x00")) + chunk(b"IEND", b""))


@pytest.fixture
def public_url(gateway_url, monkeypatch):
    # Providers fetch uploaded media from the gateway's public URL: here, the live test server.
    monkeypatch.setattr(runtime, "_settings", dataclasses.replace(runtime.settings(), public_url=gateway_url))


def test_a_pywa_bot_sends_and_receives_through_the_gateway_unchanged(world, sandbox, gateway_url, public_url):
    inbox = world.account()
    ch = whatsapp(inbox, sandbox)
    with db.connection() as conn:
        store.upsert_from_meta(conn, account_id=inbox.account_id, waba_id=ch["group_id"], docs=[
            {"name": "pedido_listo", "language": "es", "status": "APPROVED", "category": "UTILITY",
             "components": [{"type": "BODY", "text": "Tu pedido {{1}} está listo",
                             "example": {"body_text": [["A-1"]]}}]}])
        conn.commit()
    hooks = world.integration(phone_id=ch["external_id"], waba_id=ch["group_id"])
    meta_endpoint(inbox, hooks.url, secret=APP_SECRET, verify_token="integration-verify-token")

    phone = "34600333444"
    customer(inbox, ch, says(phone, "hola, ¿tenéis mi pedido?"), phone=phone)
    wait_for_hits(hooks, 1)
    incoming = hooks.messages[0]
    assert incoming.text == "hola, ¿tenéis mi pedido?" and incoming.from_user.wa_id == phone

    transport = ToGateway(gateway_url)
    bot = WhatsApp(phone_id=ch["external_id"], token=inbox.key, session=httpx.Client(transport=transport),
                   api_version="21.0")
    sent = {
        "text": bot.send_message(to=phone, text="¡Hola! Sí, mira:"),
        "image": bot.send_image(to=phone, image=png(), mime_type="image/png", caption="tu pedido"),
        "template": bot.send_template(to=phone, name="pedido_listo", language=TemplateLanguage.SPANISH, params=[
            {"type": "body", "parameters": [{"type": "text", "text": "A-1001"}]}]),
        "interactive": bot.send_message(to=phone, text="¿Lo recoges hoy?", buttons=[
            Button(title="Sí", callback_data="hoy"), Button(title="Mañana", callback_data="manana")]),
        "reaction": bot.send_reaction(to=phone, emoji="👍", message_id=incoming.id),
    }
    assert bot.mark_message_as_read(message_id=incoming.id).success is True
    assert all(ids.parse(s.id) is not None for s in sent.values())
    assert any(p.endswith("/media") for p in transport.seen)   # pywa uploaded the image first
    assert all(p.split()[1].startswith("/graph/v21.0/") for p in transport.seen), transport.seen

    # What reached the provider: each type, to the customer, the reply and the read naming their message.
    bodies = [m["body"] for m in wait_for(lambda: len(received(sandbox)) >= 6 and received(sandbox), inbox,
                                          what="six requests at the provider")]
    by_type = {b.get("type", "read"): b for b in bodies}
    assert set(by_type) == {"text", "image", "template", "interactive", "reaction", "read"}
    assert all(b["to"] == phone for t, b in by_type.items() if t != "read")
    assert by_type["text"]["text"]["body"] == "¡Hola! Sí, mira:"
    assert by_type["image"]["image"]["caption"] == "tu pedido"
    assert by_type["image"]["image"]["link"].startswith(gateway_url + "/media-links/")
    assert by_type["template"]["template"]["name"] == "pedido_listo"
    assert by_type["interactive"]["interactive"]["action"]["buttons"][0]["reply"] == {"id": "hoy", "title": "Sí"}
    assert by_type["reaction"]["reaction"] == {"message_id": incoming.id, "emoji": "👍"}
    assert by_type["read"]["message_id"] == incoming.id

    # Each message is in the customer's history, the template as the customer saw it.
    template = inbox.api("GET", f"/v1/messages/{ids.parse(sent['template'].id)}").json
    assert template["text"] == "Tu pedido A-1001 está listo"

    # Statuses come back to pywa's handler under the ids pywa got when sending, in order per message.
    def statuses_for_all():
        got = {}
        for s in hooks.statuses:
            got.setdefault(s.id, []).append(s.status.value)
        return all(got.get(s.id, [])[-1:] == ["read"] for s in sent.values() if s is not sent["reaction"]) and got
    got = wait_for(lambda: (wait_for_hits(hooks, 1), statuses_for_all())[1], inbox, timeout=30,
                   what="pywa to hear every message read")
    for name, message in sent.items():
        if name != "reaction":
            assert got[message.id] == ["sent", "delivered", "read"], (name, got[message.id])
    assert all(signed_by(h, APP_SECRET) for h in hooks.hits) and set(hooks.answers) == {200}

    # The customer taps a button: pywa's callback handler side sees a reply to the interactive message.
    provider_id = inbox.api("GET", f"/v1/messages/{ids.parse(sent['interactive'].id)}").json["provider_message_id"]
    tap = {"from": phone, "id": "wamid.tap-" + phone, "timestamp": str(int(time.time())), "type": "interactive",
           "context": {"from": "15550001111", "id": provider_id},
           "interactive": {"type": "button_reply", "button_reply": {"id": "hoy", "title": "Sí"}}}
    before = len(hooks.hits)
    customer(inbox, ch, tap, phone=phone)
    wait_for_hits(hooks, before + 1)
    tapped = hooks.bodies()[-1]["entry"][0]["changes"][0]["value"]["messages"][0]
    assert tapped["context"]["id"] == sent["interactive"].id
    assert tapped["interactive"]["button_reply"]["id"] == "hoy"

    # A refusal reaches pywa as the exception it raises for Meta's code.
    quiet = "34600333555"
    customer(inbox, ch, {**says(quiet, "hola"), "timestamp": str(int(time.time()) - 26 * 3600)}, phone=quiet)
    with pytest.raises(pywa_errors.ReEngagementMessage) as refused:
        bot.send_message(to=quiet, text="¿Sigues ahí?")
    assert "template" in refused.value.details
