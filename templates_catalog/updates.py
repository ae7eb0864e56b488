"""Meta's template webhooks applied to the catalog, so the send gate follows Meta at once.

``message_template_status_update`` (approved, paused, disabled, rejected…), ``message_template_quality_update``,
``template_category_update`` and ``message_template_components_update`` arrive as provider Notices with
these topics (webhooks/whatsapp/notices.py). Templates are matched by Meta's template id.
"""
from __future__ import annotations

from typing import Any, Mapping

from templates_catalog import store

TOPICS = frozenset({"template_status", "template_quality", "template_category", "template_components"})


def apply(conn, *, account_id, topic: str, detail: Mapping[str, Any], channel_id=None) -> int:
    """Rows of the catalog changed (0 for a template the catalog does not hold yet: the next sync has it).
    ``channel_id``: the channel the webhook came through, named by the template.status_changed it emits."""
    meta_id = detail.get("message_template_id")
    if meta_id is None:
        return 0
    if topic == "template_status" and detail.get("event"):
        return store.set_status(conn, account_id=account_id, meta_id=meta_id, status=str(detail["event"]),
                                reason=detail.get("reason"), channel_id=channel_id)
    if topic == "template_quality" and detail.get("new_quality_score"):
        return store.set_quality(conn, account_id=account_id, meta_id=meta_id,
                                 quality=str(detail["new_quality_score"]).upper())
    if topic == "template_category" and detail.get("new_category"):
        return store.set_category(conn, account_id=account_id, meta_id=meta_id,
                                  category=str(detail["new_category"]).upper())
    if topic == "template_components":
        row = store.get_by_meta_id(conn, account_id=account_id, meta_id=meta_id)
        if row is None:
            return 0
        store.set_definition(conn, account_id=account_id, template_id=row["id"],
                             definition=with_components(row["definition"], detail))
        return 1
    return 0


def with_components(definition: Mapping[str, Any], detail: Mapping[str, Any]) -> dict:
    """The definition with the parts a components update names replaced: the body (``element``), a text
    header (``title``), the footer and the buttons. What the update leaves out stays as it was."""
    out = dict(definition)
    components = [dict(c) for c in definition.get("components") or [] if isinstance(c, Mapping)]

    def put(kind: str, new: dict) -> None:
        for i, comp in enumerate(components):
            if str(comp.get("type") or "").upper() == kind:
                components[i] = {**comp, **new}
                if "text" in new:
                    components[i].pop("example", None)   # the old examples no longer match the new text
                return
        order = ["HEADER", "BODY", "FOOTER", "BUTTONS"]
        at = next((i for i, c in enumerate(components)
                   if str(c.get("type") or "").upper() in order[order.index(kind) + 1:]), len(components))
        components.insert(at, {"type": kind, **new})

    if isinstance(detail.get("message_template_title"), str):
        put("HEADER", {"format": "TEXT", "text": detail["message_template_title"]})
    if isinstance(detail.get("message_template_element"), str):
        put("BODY", {"text": detail["message_template_element"]})
    if isinstance(detail.get("message_template_footer"), str):
        put("FOOTER", {"text": detail["message_template_footer"]})
    buttons = detail.get("message_template_buttons")
    if isinstance(buttons, list):
        put("BUTTONS", {"buttons": [_button(b) for b in buttons if isinstance(b, Mapping)]})
    out["components"] = components
    return out


def _button(button: Mapping[str, Any]) -> dict:
    out = {"type": str(button.get("message_template_button_type") or "QUICK_REPLY").upper(),
           "text": button.get("message_template_button_text") or ""}
    if button.get("message_template_button_url"):
        out["url"] = button["message_template_button_url"]
    if button.get("message_template_button_phone_number"):
        out["phone_number"] = button["message_template_button_phone_number"]
    return out
