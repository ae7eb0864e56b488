"""Submitting templates to Meta: one definition (``submit``, behind ``POST /v1/templates``) or a folder of
them (``push``, behind ``gateway templates push DIR``), and deleting (``remove``).

Every definition is validated first: one that breaks Meta's rules never leaves (Meta would reject it
days later, in review). ``push`` pulls the catalog first, so it compares with what Meta holds now:
a new name or language is created; a changed one is edited where Meta allows edits (APPROVED, REJECTED
or PAUSED; an approved template keeps its category); one that differs only in examples is unchanged.
Meta reviews every creation and edit: the catalog shows the template PENDING until the status webhook
(or the next sync) says otherwise.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping

from templates_catalog import store, sync
from templates_catalog.definition import Template
from templates_catalog.validate import validate

EDITABLE = frozenset({"APPROVED", "REJECTED", "PAUSED"})


@dataclass
class Outcome:
    """What happened to one definition: created, updated, unchanged, invalid, refused or failed."""
    name: Any
    language: Any
    result: str
    detail: str = ""
    problems: list = field(default_factory=list)     # validation issues, for 'invalid'
    template: dict | None = None                      # the catalog row afterwards
    code: str | None = None                           # Meta's error code, for 'failed'

    def as_dict(self) -> dict:
        return {"name": self.name, "language": self.language, "result": self.result, "detail": self.detail,
                "problems": [{"pointer": i.pointer, "rule": i.rule, "detail": i.message} for i in self.problems],
                "provider_code": self.code}


class PushError(sync.SyncError):
    """The channel cannot take templates (not WhatsApp, no WABA, no credentials, Meta unreachable)."""


def _target(conn, account_id, channel_id):
    return sync.target(conn, account_id=account_id, channel_id=channel_id, error=PushError)


def _comparable(doc: Mapping[str, Any]) -> str:
    """What Meta reviews, without the examples (they only illustrate) and spelled one way."""
    def strip(value):
        if isinstance(value, Mapping):
            return {k: strip(v) for k, v in value.items() if k != "example"}
        if isinstance(value, list):
            return [strip(v) for v in value]
        return value
    comps = []
    for comp in doc.get("components") or []:
        if isinstance(comp, Mapping):
            comp = strip(comp)
            comp["type"] = str(comp.get("type") or "").upper()
            if "format" in comp:
                comp["format"] = str(comp["format"]).upper()
            for button in comp.get("buttons") or []:
                if isinstance(button, dict):
                    button["type"] = str(button.get("type") or "").upper()
            comps.append(comp)
    return json.dumps({"category": str(doc.get("category") or "").upper(),
                       "parameter_format": str(doc.get("parameter_format") or "POSITIONAL").upper(),
                       "components": comps}, sort_keys=True)


def submit(conn, *, account_id, channel_id, definition: Mapping[str, Any] | Template,
           edit: bool = True, dry_run: bool = False, _target_=None) -> Outcome:
    """Create (or, with ``edit``, edit) one template at Meta and record it in the catalog."""
    template = Template.from_meta(definition)
    name, language = template.name, template.language
    problems = validate(template)
    if problems:
        return Outcome(name, language, "invalid", f"{len(problems)} problem(s) with the definition",
                       problems=problems)
    channel, provider, credentials = _target_ or _target(conn, account_id, channel_id)
    waba = channel["group_id"]
    doc = template.to_meta()
    current = store.get(conn, account_id=account_id, waba_id=waba, name=name, language=language)
    if current is None:
        if dry_run:
            return Outcome(name, language, "created", "would be submitted for review (dry run)")
        try:
            answer = provider.create_template(channel, credentials, doc)
        except Exception as exc:   # the adapter's TemplateApiError: Meta's answer, without secrets
            return Outcome(name, language, "failed", f"Meta refused it: {exc}", code=getattr(exc, "code", None))
        store.upsert_from_meta(conn, account_id=account_id, waba_id=waba, docs=[{
            **doc, "id": answer.get("id"), "status": answer.get("status") or "PENDING",
            "category": answer.get("category") or doc.get("category")}], channel_id=channel_id)
        return Outcome(name, language, "created", f"submitted for review: {answer.get('status') or 'PENDING'}",
                       template=store.get(conn, account_id=account_id, waba_id=waba, name=name, language=language))
    if _comparable(current["definition"]) == _comparable(doc):
        return Outcome(name, language, "unchanged", f"Meta holds the same template ({current['status']})",
                       template=current)
    if not edit:
        return Outcome(name, language, "refused", f"{name} ({language}) already exists at Meta "
                       f"({current['status']}) with different content; push it to edit it, or pick a new name")
    refusal = _edit_refusal(current, doc)
    if refusal:
        return Outcome(name, language, "refused", refusal, template=current)
    if dry_run:
        return Outcome(name, language, "updated", "would be edited and reviewed again (dry run)", template=current)
    try:
        provider.edit_template(channel, credentials, current["meta_id"], doc)
    except Exception as exc:
        return Outcome(name, language, "failed", f"Meta refused the edit: {exc}", code=getattr(exc, "code", None))
    store.set_definition(conn, account_id=account_id, template_id=current["id"], definition=doc, status="PENDING",
                         channel_id=channel_id)
    return Outcome(name, language, "updated", "edited; Meta reviews it again (PENDING until it decides)",
                   template=store.get(conn, account_id=account_id, waba_id=waba, name=name, language=language))


def _edit_refusal(current: dict, doc: Mapping[str, Any]) -> str | None:
    status, label = current["status"], f"{current['name']} ({current['language']})"
    if not current["meta_id"]:
        return f"{label} has no Meta template id; sync the catalog, then push again"
    if status not in EDITABLE:
        return (f"{label} is {status} at Meta, which allows no edits; "
                + ("push again once Meta has reviewed it" if status in ("PENDING", "IN_APPEAL")
                   else "submit it under a new name"))
    if status == "APPROVED" and str(doc.get("category") or "").upper() != str(current["category"] or "").upper():
        return (f"{label} is APPROVED as {current['category']}: Meta does not let an approved template change "
                "category; keep the category or submit it under a new name")
    if str(doc.get("parameter_format") or "POSITIONAL").upper() != str(
            current["definition"].get("parameter_format") or "POSITIONAL").upper():
        return f"{label}: Meta does not let a template switch between numbered and named parameters"
    return None


def push(connect: Callable, *, account_id, channel_id, definitions: Iterable[Mapping[str, Any] | Template],
         dry_run: bool = False, progress: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """Every definition validated, compared with Meta's catalog (pulled first) and created or edited.
    ``connect()`` gives a transaction (``gateway.db.connection``): each template is recorded in its own,
    so what Meta accepted stays recorded even if a later one fails."""
    with connect() as conn:
        target = _target(conn, account_id, channel_id)
        sync.pull(conn, account_id=account_id, channel_id=channel_id)
    out = []
    for definition in definitions:
        with connect() as conn:
            outcome = submit(conn, account_id=account_id, channel_id=channel_id, definition=definition,
                             dry_run=dry_run, _target_=target)
        out.append(outcome)
        if progress:
            progress(outcome)
    return out


def remove(conn, *, account_id, channel_id, name: str, language: str | None = None) -> int:
    """Delete a template at Meta (every language, or one) and from the catalog; rows removed."""
    channel, provider, credentials = _target(conn, account_id, channel_id)
    waba = channel["group_id"]
    meta_id = None
    if language:
        row = store.get(conn, account_id=account_id, waba_id=waba, name=name, language=language)
        if row is None:
            raise PushError(f"{name!r} has no {language} translation in the catalog", status=404,
                            code="template-not-found")
        meta_id = row["meta_id"]
    elif not store.languages(conn, account_id=account_id, waba_id=waba, name=name):
        raise PushError(f"no template named {name!r} in this business account", status=404,
                        code="template-not-found")
    try:
        provider.delete_template(channel, credentials, name, meta_id)
    except Exception as exc:
        raise PushError(f"Meta refused the deletion: {exc}", code=getattr(exc, "code", None)) from None
    return store.delete(conn, account_id=account_id, waba_id=waba, name=name, language=language)
