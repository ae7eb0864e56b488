"""The report's SQL: three statements, each grouped by the report's grouping and its total (GROUPING SETS).

Every statement is scoped by account_id on every table it reads, and returns aggregates only. See
gateway/reports/__init__.py for what each figure means; the comments here say how it is computed.

- activity: over the messages whose time is in the range - inbound volume and the out-of-hours shares - and
  the conversations whose first customer message is in the range (first response, service level);
- resolved: conversations resolved in the range (resolution time, FCR, reopen rate, containment);
- surveys: survey answers given in the range.

Conversations are not stored: a thread's resolutions (``thread_events`` status rows into ``resolved``)
cut its messages into conversations. The activity statement reads the range's messages and resolutions
once, as one stream per thread in time order, and numbers each row with the count of the thread's
resolutions before it (``seg``): rows of one number belong to one conversation. Only what lies outside the
range is looked up row by row: whether the customer had already written before the range (for the part of a
thread before its first resolution in the range) and a first reply that came after the range.
"""
from __future__ import annotations

# A person's message: outbound, not an automation's answer, not the survey, a campaign or a keyword
# confirmation (those carry their idempotency key's prefix), and not failed (it never reached the customer).
HUMAN = ("({m}.direction = 'outbound' AND NOT {m}.automated AND {m}.status <> 'failed' "
         "AND {m}.purpose IS DISTINCT FROM 'surveys' AND ({m}.idempotency_key IS NULL "
         "OR {m}.idempotency_key !~ '^(campaign|keyword-reply|survey|survey-follow-up|automation):'))")
# Any reply: as above, automation answers and keyword confirmations included.
ANY_REPLY = ("({m}.direction = 'outbound' AND {m}.status <> 'failed' AND {m}.purpose IS DISTINCT FROM 'surveys' "
             "AND ({m}.idempotency_key IS NULL OR {m}.idempotency_key NOT LIKE 'campaign:%%'))")
# A customer's message that answers a survey (the score, or the follow-up comment) is not the customer coming
# back: it neither starts nor reopens a conversation.
NOT_SURVEY = ("NOT EXISTS (SELECT 1 FROM survey_responses s WHERE s.account_id = %(a)s "
              "AND s.thread_id = {m}.thread_id AND (s.message_id = {m}.id OR s.commented_at = {m}.occurred_at))")
RESOLVED = "{e}.kind = 'status' AND {e}.detail ->> 'to' = 'resolved'"
# A person (not the customer's message) reopened the thread.
REOPENED_BY_PERSON = "{e}.kind = 'status' AND {e}.detail ->> 'from' = 'resolved' AND {e}.actor <> 'customer'"


def human(alias: str) -> str:
    return HUMAN.format(m=alias)


def group_key(group_by: str, at: str, channel: str, team: str = "h.team_id", agent: str = "h.agent_id") -> str:
    """The SQL of a row's group from its anchor time, channel and holder. Days and weeks are numbered by
    ``width_bucket`` over their starts (local midnights as UTC instants, from Python): a binary search per
    row, several times cheaper than converting every time to the account's zone."""
    return {"day": f"width_bucket({at}, %(bounds)s::timestamptz[])",
            "week": f"width_bucket({at}, %(bounds)s::timestamptz[])",
            "channel": channel, "team": team, "agent": agent}[group_by]


def holder(thread: str, until: str, current: bool = True) -> str:
    """A LATERAL giving (team_id, agent_id) as text: who held the thread at ``until`` (the conversation's
    resolution) by its last assignment event then; with ``current``, an ``until`` of NULL (not resolved)
    means now, read from the thread itself (``t``, by column name so this parses before migration 0018)."""
    team, agent = "a.detail ->> 'team_id'", "a.detail ->> 'agent_id'"
    if current:
        team = f"CASE WHEN {until} IS NULL THEN (SELECT to_jsonb(t) ->> 'team_id') ELSE {team} END"
        agent = f"CASE WHEN {until} IS NULL THEN (SELECT to_jsonb(t) ->> 'assignee_id') ELSE {agent} END"
    return (
        f"LEFT JOIN LATERAL (SELECT {team} AS team_id, {agent} AS agent_id "
        "FROM (SELECT 1) one LEFT JOIN LATERAL (SELECT e.kind, e.detail FROM thread_events e "
        f"WHERE e.account_id = %(a)s AND e.thread_id = {thread} AND e.kind IN ('assigned', 'unassigned') "
        f"AND e.created_at <= coalesce({until}, 'infinity') ORDER BY e.created_at DESC, e.id DESC LIMIT 1) a "
        "ON true) h ON true")


def _grouped(key: str) -> str:
    return f"GROUP BY GROUPING SETS (({key}), ())"


# Columns of the activity statement's two halves (messages, conversations), each NULL in the other half.
_MESSAGE_FIGURES = ("inbound_messages", "ooh_inbound_n", "ooh_inbound_closed", "ooh_reply_n", "ooh_reply_closed")
_CONVERSATION_FIGURES = ("conversations", "first_response_median_s", "first_response_p90_s",
                         "first_response_any_median_s", "first_response_any_p90_s", "sl_within", "sl_total")


def closed_sql(schedules: int, at: str, channel: str) -> str:
    """Whether the channel's business hours were closed at ``at``: NULL for a channel without business hours.
    One CASE branch per channel that has them, each with its opening hours as a constant multirange
    (parameters bh_ch_<i>, bh_<i>): a binary search per row, no join."""
    if not schedules:
        return "NULL::boolean"
    return ("CASE " + " ".join(f"WHEN {channel} = %(bh_ch_{i})s::uuid THEN NOT ({at} <@ %(bh_{i})s::tstzmultirange)"
                               for i in range(schedules)) + " END")


def activity_sql(group_by: str, schedules: int = 0) -> str:
    """Messages in the range (inbound volume, out-of-hours shares) and conversations whose first customer
    message is in it (first reply by a person and by anyone, service level), as two halves of one result."""
    team = group_by in ("team", "agent")
    after_first_in = "x.last_in > coalesce(x.last_res, '-infinity')"
    frt = "extract(epoch FROM c.human_at - c.first_in)"
    anyr = "extract(epoch FROM c.any_at - c.first_in)"

    def late(column: str, which: str) -> str:
        # A first reply not found in the range, for a conversation not over before the range ends.
        return (f"coalesce(s.{column}, (SELECT o.occurred_at FROM messages o WHERE s.{column} IS NULL "
                "AND (s.ended_at IS NULL OR s.ended_at >= %(hi)s) AND o.account_id = %(a)s "
                "AND o.thread_id = s.thread_id AND o.direction = 'outbound' AND o.occurred_at >= %(hi)s "
                f"AND o.occurred_at <= coalesce(s.ended_at, 'infinity') AND {which} "
                f"ORDER BY o.occurred_at LIMIT 1)) AS {column}")

    m_key = group_key(group_by, "x.at", "x.channel_id", "s.team_id", "s.agent_id")
    m_cols = ", ".join(f"NULL::bigint AS {c}" for c in _MESSAGE_FIGURES)
    c_cols = ", ".join(f"NULL::{'bigint' if c in ('conversations', 'sl_within', 'sl_total') else 'float8'} AS {c}"
                       for c in _CONVERSATION_FIGURES)
    counts = ("count(*) FILTER (WHERE x.is_res = 0 AND x.inbound) AS inbound_messages, "
              "count(*) FILTER (WHERE x.is_res = 0 AND x.inbound AND x.closed IS NOT NULL) AS ooh_inbound_n, "
              "count(*) FILTER (WHERE x.is_res = 0 AND x.inbound AND x.closed) AS ooh_inbound_closed, "
              "count(*) FILTER (WHERE x.human AND x.closed IS NOT NULL) AS ooh_reply_n, "
              "count(*) FILTER (WHERE x.human AND x.closed) AS ooh_reply_closed")
    firsts = ("min(x.at) FILTER (WHERE x.inbound AND NOT x.survey) AS first_in, "
              "min(x.at) FILTER (WHERE x.is_res = 1) AS res_at, "
              f"min(x.at) FILTER (WHERE x.human AND {after_first_in}) AS human_at, "
              f"min(x.at) FILTER (WHERE x.anyreply AND {after_first_in}) AS any_at")
    if team:
        # The messages' group is their conversation's holder, known only per conversation: a second pass.
        per_part = f"seg AS (SELECT x.thread_id, x.seg, {firsts} FROM seq x GROUP BY x.thread_id, x.seg), "
        message_half = (f"SELECT {m_key} AS grp, GROUPING({m_key}) AS is_total, {counts}, {c_cols} FROM seq x "
                        "JOIN parts s ON s.thread_id = x.thread_id AND s.seg = x.seg "
                        f"WHERE x.is_res = 0 AND (x.inbound OR x.human) {_grouped(m_key)} ")
    else:
        # One pass of the stream gives both the conversation parts (per thread and seg) and the messages'
        # counts per group: grouping sets.
        per_part = (f"agg AS MATERIALIZED (SELECT x.thread_id, x.seg, {m_key} AS grp, "
                    f"GROUPING(x.thread_id, x.seg) AS g_part, GROUPING({m_key}) AS g_key, {firsts}, {counts} "
                    f"FROM seq x GROUP BY GROUPING SETS ((x.thread_id, x.seg), ({m_key}), ())), "
                    "seg AS (SELECT thread_id, seg, first_in, res_at, human_at, any_at FROM agg "
                    # (only those rows have a thread; written so, not g_part = 0, the planner counts them right)
                    "WHERE thread_id IS NOT NULL), ")
        message_half = (f"SELECT grp, g_key AS is_total, {', '.join(_MESSAGE_FIGURES)}, {c_cols} FROM agg "
                        "WHERE g_part <> 0 ")
    c_key = group_key(group_by, "c.first_in", "c.channel_id", "c.team_id", "c.agent_id")
    # Each conversation part with its thread's channel and creation (and, by team or agent, its holder).
    parts = ("SELECT s.*, t.channel_id, t.created_at AS thread_created"
             + (f", h.team_id, h.agent_id FROM segx s JOIN threads t ON t.account_id = %(a)s AND t.id = s.thread_id "
                f"{holder('s.thread_id', 's.ended_at')}" if team else
                " FROM segx s JOIN threads t ON t.account_id = %(a)s AND t.id = s.thread_id"))
    return (
        # Survey answers given around the range (a comment follows its score within the survey's expiry,
        # at most 720 h): scores are known by message id, comments by thread and time.
        "WITH sv AS MATERIALIZED (SELECT s.message_id, s.thread_id, s.commented_at FROM survey_responses s "
        "WHERE s.account_id = %(a)s AND s.answered_at >= %(lo)s - interval '31 days' AND s.answered_at < %(hi)s), "
        "msg AS (SELECT m.thread_id, m.occurred_at AS at, m.channel_id, m.direction = 'inbound' AS inbound, "
        f"{human('m')} AS human, {ANY_REPLY.format(m='m')} AS anyreply, "
        "m.direction = 'inbound' AND (m.id IN (SELECT message_id FROM sv WHERE message_id IS NOT NULL) "
        "OR (m.thread_id, m.occurred_at) IN (SELECT thread_id, commented_at FROM sv WHERE commented_at IS NOT NULL)"
        f") AS survey, {closed_sql(schedules, 'm.occurred_at', 'm.channel_id')} AS closed "
        "FROM messages m WHERE m.account_id = %(a)s AND m.occurred_at >= %(lo)s "
        f"AND m.occurred_at < %(hi)s AND (m.direction = 'inbound' OR {ANY_REPLY.format(m='m')})), "
        "tl AS (SELECT thread_id, at, 0 AS is_res, inbound, survey, human, anyreply, channel_id, closed FROM msg "
        "UNION ALL SELECT e.thread_id, e.created_at, 1, false, false, false, false, NULL, NULL FROM thread_events e "
        f"WHERE e.account_id = %(a)s AND {RESOLVED.format(e='e')} AND e.created_at >= %(lo)s "
        "AND e.created_at < %(hi)s), "
        # In time order per thread (a message at the very instant of a resolution belongs to the conversation
        # it ends): seg, and the last customer message and last resolution up to the row.
        "seq AS (SELECT tl.*, sum(is_res) OVER w - is_res AS seg, "
        "max(at) FILTER (WHERE inbound AND NOT survey) OVER w AS last_in, "
        "max(at) FILTER (WHERE is_res = 1) OVER w AS last_res "
        "FROM tl WINDOW w AS (PARTITION BY thread_id ORDER BY at, is_res ROWS UNBOUNDED PRECEDING)), "
        # Per conversation (part in the range): its first customer message, the resolution ending it, and the
        # first reply by a person and by anyone after that first message.
        f"{per_part}"
        # The part after the thread's last resolution in the range ends at its next resolution, if any yet.
        "segx AS (SELECT seg.*, coalesce(seg.res_at, (SELECT e.created_at FROM thread_events e "
        "WHERE seg.res_at IS NULL AND e.account_id = %(a)s AND e.thread_id = seg.thread_id "
        f"AND {RESOLVED.format(e='e')} AND e.created_at >= %(hi)s ORDER BY e.created_at LIMIT 1)) AS ended_at "
        "FROM seg), "
        f"parts AS MATERIALIZED ({parts}), "
        f"c AS (SELECT s.thread_id, s.first_in, s.ended_at, s.channel_id, "
        f"{'s.team_id, s.agent_id, ' if team else ''}{late('human_at', human('o'))}, "
        f"{late('any_at', ANY_REPLY.format(m='o'))} FROM parts s "
        "WHERE s.first_in IS NOT NULL AND (s.seg > 0 OR s.thread_created >= %(lo)s OR NOT EXISTS ("
        # The part before the range's first resolution started in the range only if the customer had not
        # written since the thread's last resolution before it.
        "SELECT 1 FROM messages p WHERE p.account_id = %(a)s AND p.thread_id = s.thread_id "
        "AND p.direction = 'inbound' AND p.occurred_at < %(lo)s AND p.occurred_at > coalesce(("
        "SELECT max(e.created_at) FROM thread_events e WHERE e.account_id = %(a)s AND e.thread_id = s.thread_id "
        f"AND {RESOLVED.format(e='e')} AND e.created_at < %(lo)s), '-infinity') AND {NOT_SURVEY.format(m='p')}))) "
        # Messages: counted by their own time; a person's replies and customer messages out of hours.
        + message_half
        # Conversations: counted by their first customer message.
        + f"UNION ALL SELECT {c_key}, GROUPING({c_key}), {m_cols}, count(*), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {frt}), percentile_cont(0.9) WITHIN GROUP (ORDER BY {frt}), "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY {anyr}), percentile_cont(0.9) WITHIN GROUP (ORDER BY {anyr}), "
        f"count(*) FILTER (WHERE c.human_at IS NOT NULL AND {frt} <= %(sla)s), "
        # Counted for the service level: answered by a person, or still waiting for one (not resolved) beyond
        # the target.
        "count(*) FILTER (WHERE c.human_at IS NOT NULL OR (c.ended_at IS NULL "
        f"AND extract(epoch FROM %(now)s - c.first_in) > %(sla)s)) FROM c {_grouped(c_key)}")


def resolved_sql(group_by: str, schedules: int = 0) -> str:
    """Conversations resolved in the range: when each started, whether a person took part, whether the
    thread was reopened, and whether the customer came back (any channel) within the FCR window."""
    team = group_by in ("team", "agent")
    key = group_key(group_by, "c.resolved_at", "c.channel_id")
    dur = "extract(epoch FROM c.resolved_at - c.started_at)"
    return (
        # Every contact merged into another, by survivor (few; the partial index contacts_merged_into).
        "WITH mg AS MATERIALIZED (SELECT merged_into AS customer, array_agg(id) AS ids FROM contacts "
        "WHERE account_id = %(a)s AND merged_into IS NOT NULL GROUP BY merged_into), "
        "r AS (SELECT e.thread_id, e.created_at AS resolved_at, lag(e.created_at) OVER (PARTITION BY e.thread_id "
        "ORDER BY e.created_at) AS prev_in_range FROM thread_events e "
        f"WHERE e.account_id = %(a)s AND {RESOLVED.format(e='e')} AND e.created_at >= %(lo)s "
        "AND e.created_at < %(hi)s), "
        "b AS MATERIALIZED (SELECT r.thread_id, r.resolved_at, t.channel_id, t.status AS thread_status, "
        "t.created_at AS thread_created, array_append(coalesce(mg.ids, '{}'), cu.customer) AS customer_contacts, "
        # The previous resolution: in the range (lag), else the last one before it.
        "coalesce(r.prev_in_range, (SELECT e.created_at FROM thread_events e WHERE e.account_id = %(a)s "
        f"AND e.thread_id = r.thread_id AND {RESOLVED.format(e='e')} AND e.created_at < %(lo)s "
        "ORDER BY e.created_at DESC LIMIT 1)) AS prev_at "
        "FROM r JOIN threads t ON t.account_id = %(a)s AND t.id = r.thread_id "
        "JOIN contacts k ON k.account_id = %(a)s AND k.id = t.contact_id "
        "CROSS JOIN LATERAL (SELECT coalesce(k.merged_into, k.id) AS customer) cu "
        "LEFT JOIN mg ON mg.customer = cu.customer), "
        "c AS (SELECT b.*, CASE WHEN b.prev_at IS NULL THEN b.thread_created ELSE coalesce(least(("
        # A later conversation starts when the thread reopens: the customer's first message after the last
        # resolution, or a person reopening it, whichever came first.
        "SELECT m.occurred_at FROM messages m WHERE m.account_id = %(a)s AND m.thread_id = b.thread_id "
        "AND m.direction = 'inbound' AND m.occurred_at > b.prev_at AND m.occurred_at <= b.resolved_at "
        f"AND {NOT_SURVEY.format(m='m')} ORDER BY m.occurred_at LIMIT 1), ("
        "SELECT e.created_at FROM thread_events e WHERE e.account_id = %(a)s AND e.thread_id = b.thread_id "
        f"AND {REOPENED_BY_PERSON.format(e='e')} AND e.created_at > b.prev_at AND e.created_at <= b.resolved_at "
        "ORDER BY e.created_at LIMIT 1)), b.prev_at) END AS started_at, "
        # Contained: no hand-off to a person and no message by a person during the conversation.
        "NOT EXISTS (SELECT 1 FROM messages o WHERE o.account_id = %(a)s AND o.thread_id = b.thread_id "
        "AND o.direction = 'outbound' AND o.occurred_at > coalesce(b.prev_at, '-infinity') "
        f"AND o.occurred_at <= b.resolved_at AND {human('o')}) AND NOT EXISTS (SELECT 1 FROM thread_events e "
        "WHERE e.account_id = %(a)s AND e.thread_id = b.thread_id AND e.kind = 'handler' "
        "AND e.detail ->> 'to' = 'human' AND e.created_at > coalesce(b.prev_at, '-infinity') "
        "AND e.created_at <= b.resolved_at) AS contained, "
        # Reopened: resolved again later (it must have reopened first), or not resolved now.
        "(b.thread_status <> 'resolved' OR EXISTS (SELECT 1 FROM thread_events e WHERE e.account_id = %(a)s "
        f"AND e.thread_id = b.thread_id AND {RESOLVED.format(e='e')} AND e.created_at > b.resolved_at)) AS reopened, "
        # Came back within the window: the customer (the contact and every contact merged into the same one)
        # wrote on any thread of any channel, or a person reopened this thread.
        "(EXISTS (SELECT 1 FROM threads t2 JOIN messages m2 ON m2.account_id = t2.account_id "
        "AND m2.thread_id = t2.id WHERE t2.account_id = %(a)s AND t2.contact_id = ANY(b.customer_contacts) "
        # (a thread whose last customer message is older than the resolution needs no look at its messages)
        "AND t2.last_inbound_at > b.resolved_at AND m2.direction = 'inbound' AND m2.occurred_at > b.resolved_at "
        f"AND m2.occurred_at <= b.resolved_at + %(fcr)s AND {NOT_SURVEY.format(m='m2')}) "
        "OR EXISTS (SELECT 1 FROM thread_events e WHERE e.account_id = %(a)s AND e.thread_id = b.thread_id "
        f"AND {REOPENED_BY_PERSON.format(e='e')} AND e.created_at > b.resolved_at "
        "AND e.created_at <= b.resolved_at + %(fcr)s)) AS came_back "
        "FROM b) "
        f"SELECT {key} AS grp, GROUPING({key}) AS is_total, count(*) AS resolved, "
        f"percentile_cont(0.5) WITHIN GROUP (ORDER BY greatest({dur}, 0)) AS resolution_median_s, "
        f"percentile_cont(0.9) WITHIN GROUP (ORDER BY greatest({dur}, 0)) AS resolution_p90_s, "
        "count(*) FILTER (WHERE NOT c.came_back AND c.resolved_at + %(fcr)s <= %(now)s) AS fcr_yes, "
        "count(*) FILTER (WHERE c.came_back OR c.resolved_at + %(fcr)s <= %(now)s) AS fcr_total, "
        "count(*) FILTER (WHERE NOT c.came_back AND c.resolved_at + %(fcr)s > %(now)s) AS fcr_pending, "
        "count(*) FILTER (WHERE c.reopened) AS reopened, count(*) FILTER (WHERE c.contained) AS contained "
        f"FROM c {holder('c.thread_id', 'c.resolved_at', current=False) if team else ''} {_grouped(key)}")


def surveys_sql(group_by: str, schedules: int = 0) -> str:
    """Survey answers given in the range, attributed to who held the thread when it was resolved."""
    team = group_by in ("team", "agent")
    key = group_key(group_by, "s.answered_at", "s.channel_id")
    return (
        f"SELECT {key} AS grp, GROUPING({key}) AS is_total, "
        "count(*) FILTER (WHERE s.kind = 'csat') AS csat_responses, "
        "avg(s.score) FILTER (WHERE s.kind = 'csat') AS csat_average, "
        "count(*) FILTER (WHERE s.kind = 'csat' AND s.score >= 4) AS csat_satisfied, "
        "count(*) FILTER (WHERE s.kind = 'nps') AS nps_responses, "
        "count(*) FILTER (WHERE s.kind = 'nps' AND s.score >= 9) AS nps_promoters, "
        "count(*) FILTER (WHERE s.kind = 'nps' AND s.score <= 6) AS nps_detractors, "
        "count(*) FILTER (WHERE s.kind = 'ces') AS ces_responses, "
        "avg(s.score) FILTER (WHERE s.kind = 'ces') AS ces_average "
        "FROM survey_responses s "
        + ("JOIN survey_requests q ON q.account_id = s.account_id AND q.id = s.request_id "
           f"{holder('s.thread_id', 'q.created_at', current=False)} " if team else "")
        + f"WHERE s.account_id = %(a)s AND s.answered_at >= %(lo)s AND s.answered_at < %(hi)s {_grouped(key)}")


STATEMENTS = (activity_sql, resolved_sql, surveys_sql)
