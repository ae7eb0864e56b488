"""Running a flow on a thread: sending its steps, reading the customer's answer, asking again once, handing off.

The thread remembers the step the customer was last asked (``threads.flow_*``). The responder runs before
the rules: an answer to that step is the flow's, whatever a rule would say about the same words. A tap on
an option of an earlier menu of the flow (the payload names the flow and the step) is that menu's answer
even after the thread moved on or the flow expired. A typed answer after ``expires_after_minutes`` is not
read as an answer: the flow is forgotten and the rules see the message.

An unexpected answer asks again once (saying it did not understand); the next one hands the thread to a
person. A customer who asks for a person mid-flow ("agent", "humano", …) is handed off at once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta

from gateway import contacts, outbound, send_gate, surveys, threads
from gateway.automation import flows, rules, text_match


@dataclass
class Plan:
    """What entering a step (and the message steps after it) does."""
    drafts: list = field(default_factory=list)
    entered: list = field(default_factory=list)
    waiting_at: str | None = None       # the menu or question now waiting for an answer
    handoff: bool = False
    team: str | None = None


def _flow(ctx, flow_id) -> dict | None:
    rule = rules.get(ctx.conn, account_id=ctx.account_id, rule_id=flow_id)
    if rule is None or rule["kind"] != "flow" or not rule["enabled"]:
        return None
    if rule["channel_id"] is not None and rule["channel_id"] != ctx.channel["id"]:
        return None
    return rule


def by_name(ctx, name: str) -> dict | None:
    row = ctx.conn.execute("SELECT id FROM automations WHERE account_id = %s AND name = %s AND kind = 'flow'",
                           (ctx.account_id, name)).fetchone()
    return _flow(ctx, row["id"]) if row else None


class _Profile:
    """The contact's profile, decrypted only when a text needs one of its values."""

    def __init__(self, ctx):
        self.ctx, self.value = ctx, None

    def for_text(self, text) -> dict:
        if not flows.PLACEHOLDER.search(str(text)):
            return {}
        if self.value is None:
            self.value = contacts.read_profile(self.ctx.conn, account_id=self.ctx.account_id,
                                               contact_id=self.ctx.contact_id)
        return self.value

    def fill(self, text: str) -> str:
        return flows.fill(text, self.for_text(text))


def plan(ctx, rule: dict, name: str, prefix: str | None = None, key: str = "flow") -> Plan:
    """The messages of entering step ``name``: a message step goes on to its ``next`` at once; a menu or a
    question stops there and waits; a hand-off ends the flow."""
    steps, out, profile = rule["definition"]["steps"], Plan(), _Profile(ctx)
    kinds = send_gate.capabilities(ctx.channel["kind"]).get("kinds") or frozenset()

    def draft(kind, content):
        out.drafts.append(outbound.Draft(channel_id=ctx.channel["id"], kind=kind, content=content,
                                         contact_id=ctx.contact_id,
                                         idempotency_key=f"{key}:{ctx.message['id']}:{len(out.drafts)}"))

    while name is not None and name not in out.entered and name in steps:
        out.entered.append(name)
        step = steps[name]
        if step["type"] == "menu":
            draft(*flows.render_menu(ctx.channel["kind"], kinds, rule["id"], name, step, ctx.languages,
                                     profile.for_text(step["text"]), prefix))
            out.waiting_at = name
            return out
        text = flows.localised(step.get("text"), ctx.languages)
        if text:
            text = profile.fill(text)
            draft("text", {"body": f"{prefix}\n\n{text}" if prefix else text})
            prefix = None
        if step["type"] == "question":
            out.waiting_at = name
            return out
        if step["type"] == "handoff":
            out.handoff, out.team = True, step.get("team")
            return out
        name = step.get("next")
    return out


def _set_state(ctx, flow_id, step: str | None, misses: int = 0) -> None:
    ctx.conn.execute(
        "UPDATE threads SET flow_automation_id = %s, flow_step = %s, flow_misses = %s, flow_at = %s "
        "WHERE account_id = %s AND id = %s",
        (flow_id if step else None, step, misses if step else 0, ctx.now if step else None, ctx.account_id,
         ctx.thread_id))


def clear(conn, *, account_id, thread_id) -> None:
    conn.execute("UPDATE threads SET flow_automation_id = NULL, flow_step = NULL, flow_misses = 0, flow_at = NULL "
                 "WHERE account_id = %s AND id = %s", (account_id, thread_id))


def settle(ctx, rule: dict, p: Plan, why: str | None, misses: int = 0) -> list[dict]:
    """After a plan's messages were offered to the gate (``why``: None when all went): the thread waits at
    the step the plan stopped at (unchanged when nothing went), is assigned and handed off as the plan
    ends. Returns the actions for the decision."""
    actions = [{"type": "flow_step", "step": s} for s in p.entered]
    if why is None:
        _set_state(ctx, rule["id"], p.waiting_at, misses)
    if p.team and threads.assign_team(ctx.conn, account_id=ctx.account_id, thread_id=ctx.thread_id, team=p.team,
                                      by="automation"):
        actions.append({"type": "assign", "team": p.team})
    if p.handoff:
        _set_state(ctx, rule["id"], None)
        if ctx.hand_off(reason="flow", rule=rule):
            actions.append({"type": "handoff"})
    return actions


def run(ctx, rule: dict, p: Plan, *, outcome: str = "acted", answered: dict | None = None, misses: int = 0) -> list:
    """Send a plan, settle the thread, and record the decision. Returns the ids queued."""
    sent, why = ctx.send(p.drafts)
    actions = ([dict(answered)] if answered else []) + settle(ctx, rule, p, why, misses)
    ctx.decide(responder="flow", rule=rule, reason=why, actions=actions, sent=sent,
               outcome={None: outcome, "cap": "capped"}.get(why, "refused"))
    return sent


def start(ctx, rule: dict) -> list:
    """Enter the flow's first step (its trigger matched)."""
    return run(ctx, rule, plan(ctx, rule, rule["definition"]["start"]), outcome="started")


def _handoff_definition(ctx) -> dict:
    for r in rules.active_for(ctx.conn, account_id=ctx.account_id, channel_id=ctx.channel["id"]):
        if r["kind"] == "handoff":
            return r["definition"]
    return {}


def respond(ctx) -> list | None:
    """The responder: the customer's answer to the step their thread waits at (or to a tapped option)."""
    state = ctx.state
    tapped = flows.parse_payload(surveys.reply_payload(ctx.kind, ctx.content))
    rule = step_name = None
    if tapped is not None:
        flow_id = _uuid(tapped[0])
        rule = _flow(ctx, flow_id) if flow_id else None
        if rule is not None and tapped[1] in rule["definition"]["steps"]:
            step_name = tapped[1]
        else:
            rule = None
    if rule is None:
        if state["flow_automation_id"] is None:
            return None
        rule = _flow(ctx, state["flow_automation_id"])
        expiry = timedelta(minutes=(rule or {}).get("definition", {}).get("expires_after_minutes")
                           or flows.DEFAULT_EXPIRY_MINUTES)
        step_name = state["flow_step"]
        if rule is None or step_name not in rule["definition"]["steps"] or state["flow_at"] + expiry < ctx.now:
            clear(ctx.conn, account_id=ctx.account_id, thread_id=ctx.thread_id)
            return None
    steps = rule["definition"]["steps"]
    step = steps[step_name]
    if step["type"] == "menu":
        option = None
        if tapped is not None:
            option = next((o for o in step["options"] if o["id"] == tapped[2]), None)
        elif ctx.kind not in ("image", "video", "audio", "document", "sticker", "location", "contacts"):
            option = flows.chosen_option(step, ctx.text)
        if option is not None:
            return run(ctx, rule, plan(ctx, rule, option["next"]),
                       answered={"type": "flow_answer", "step": step_name, "option": option["id"]})
    elif step["type"] == "question" and tapped is None:
        answer = flows.valid_answer(step, ctx.text)
        if answer is not None:
            contacts.update_profile(ctx.conn, account_id=ctx.account_id, contact_id=ctx.contact_id,
                                    change=lambda profile: profile.__setitem__(step["attribute"], answer))
            return run(ctx, rule, plan(ctx, rule, step.get("next")),
                       answered={"type": "flow_answer", "step": step_name, "attribute": step["attribute"]})
    return _missed(ctx, rule, step_name, step, state)


def _missed(ctx, rule: dict, step_name: str, step: dict, state: dict) -> list:
    if text_match.handoff_matches(_handoff_definition(ctx), ctx.text):
        _set_state(ctx, rule["id"], None)
        handed = ctx.hand_off(reason="customer_asked", rule=rule)
        ctx.decide(responder="flow", rule=rule, outcome="handed_off" if handed else "skipped", reason="customer_asked",
                   actions=[{"type": "handoff"}] if handed else [])
        return []
    trigger = rule["definition"].get("trigger")
    if trigger and text_match.keyword_matches(trigger, ctx.text):
        return start(ctx, rule)
    if state["flow_step"] == step_name and state["flow_misses"] >= 1:
        _set_state(ctx, rule["id"], None)
        handed = ctx.hand_off(reason="flow_unanswered", rule=rule)
        ctx.decide(responder="flow", rule=rule, outcome="handed_off" if handed else "skipped",
                   reason="unexpected_answer", actions=[{"type": "handoff"}] if handed else [])
        return []
    prefix = flows.not_understood(ctx.languages) if step["type"] == "menu" else flows.invalid_answer(step, ctx.languages)
    if step["type"] == "question":
        # The question's own text follows the explanation only when the author wrote none.
        p = Plan(entered=[step_name], waiting_at=step_name)
        text = prefix if step.get("invalid") else f"{prefix}\n\n{flows.localised(step['text'], ctx.languages)}"
        p.drafts.append(outbound.Draft(channel_id=ctx.channel["id"], kind="text", content={"body": text},
                                       contact_id=ctx.contact_id, idempotency_key=f"flow:{ctx.message['id']}:0"))
    else:
        p = plan(ctx, rule, step_name, prefix=prefix)
    return run(ctx, rule, p, outcome="reasked", misses=1)


def _uuid(value: str):
    import uuid
    try:
        return uuid.UUID(value)
    except ValueError:
        return None
