"""``gateway``: the admin command line."""
from __future__ import annotations

import json
import os
import sys
import time
import uuid
from pathlib import Path

import click

from gateway.config import ConfigError, load_settings

DEMO_ACCOUNT = "demo"


def _settings():
    try:
        return load_settings()
    except ConfigError as exc:
        for line in exc.problems:
            click.echo(f"config error: {line}", err=True)
        sys.exit(2)


def _init():
    from gateway import logs, runtime
    settings = _settings()
    runtime.init(settings)
    logs.setup(settings.log_level)
    return settings


def _uuid(value: str, what: str) -> uuid.UUID:
    try:
        return uuid.UUID(value)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a {what} id (a UUID); list them first") from None


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main():
    """Self-hosted omnichannel messaging gateway: admin commands."""


@main.command()
@click.option("--port", type=int, default=None, help="Port for the web app (default: $PORT or 8000, or a free one).")
@click.option("--host", default=None, help="Bind address (default: $GATEWAY_BIND or 127.0.0.1).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None,
              help="Where embedded servers and the keyring live (default: $GATEWAY_DATA_DIR or ./data).")
def up(port, host, data_dir):
    """Start everything: embedded servers if needed, migrations, web, worker, sweeper."""
    from gateway.supervisor import run_up
    sys.exit(run_up(port=port, host=host, data_dir=data_dir))


@main.command()
def migrate():
    """Apply pending database migrations (safe to run any time, from any number of hosts)."""
    from gateway.migrate import migrate as run
    settings = _settings()
    applied = run(settings.database_url, log=lambda m: click.echo(m, err=True))
    click.echo(f"{len(applied)} migration(s) applied; schema is up to date")


@main.group()
def accounts():
    """Accounts: one per business (tenant)."""


@accounts.command("create")
@click.argument("name")
@click.option("--timezone", "tz", default="UTC", show_default=True, help="IANA time zone of the business.")
@click.option("--language", default=None, help="Default language for templates, e.g. es or pt_BR.")
def accounts_create(name, tz, language):
    """Create an account and print its id."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError
    from gateway import accounts as acc, db
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise click.BadParameter(f"{tz!r} is not an IANA time zone; e.g. Europe/Madrid", param_hint="--timezone")
    _init()
    with db.connection() as conn:
        row = acc.create_account(conn, name=name, timezone_name=tz, default_language=language, actor="cli")
    click.echo(json.dumps({"id": str(row["id"]), "name": row["name"], "timezone": row["timezone"],
                           "default_language": row["default_language"]}))


@accounts.command("list")
def accounts_list():
    """List accounts."""
    from gateway import accounts as acc, db
    _init()
    with db.connection() as conn:
        for row in acc.list_accounts(conn):
            click.echo(f"{row['id']}  {row['name']}  ({row['timezone']})")


@main.group("api-keys")
def api_keys():
    """API keys: scoped, stored hashed, shown once."""


@api_keys.command("create")
@click.option("--account", "account_id", required=True, help="Account id.")
@click.option("--name", required=True, help="What the key is for, e.g. 'crm-prod'.")
@click.option("--scope", "scopes", multiple=True, required=True,
              help="Repeat for each scope: messages:read, messages:send, contacts:read, contacts:write, "
                   "templates:write, campaigns:write, admin.")
def api_keys_create(account_id, name, scopes):
    """Create a key and print it once."""
    from gateway import accounts as acc, db
    account_id = _uuid(account_id, "account")
    _init()
    with db.connection() as conn:
        if acc.get_account(conn, account_id=account_id) is None:
            raise click.ClickException(f"no account {account_id}; see `gateway accounts list`")
        try:
            row, secret = acc.create_api_key(conn, account_id=account_id, name=name, scopes=scopes, actor="cli")
        except acc.UnknownScope as exc:
            raise click.BadParameter(str(exc), param_hint="--scope")
    click.echo(f"key id: {row['id']}", err=True)
    click.echo("store this key now; it is not shown again:", err=True)
    click.echo(secret)


@api_keys.command("list")
@click.option("--account", "account_id", required=True, help="Account id.")
def api_keys_list(account_id):
    """List an account's keys (never the secrets)."""
    from gateway import accounts as acc, db
    account_id = _uuid(account_id, "account")
    _init()
    with db.connection() as conn:
        for row in acc.list_api_keys(conn, account_id=account_id):
            state = "revoked" if row["revoked_at"] else "active"
            used = row["last_used_at"].isoformat() if row["last_used_at"] else "never"
            click.echo(f"{row['id']}  gwk_{row['prefix']}_…  {state:7}  {row['name']}  "
                       f"[{' '.join(row['scopes'])}]  last used {used}")


@api_keys.command("revoke")
@click.option("--account", "account_id", required=True, help="Account id.")
@click.argument("key_id")
def api_keys_revoke(account_id, key_id):
    """Revoke a key at once."""
    from gateway import accounts as acc, db
    account_id, key_id = _uuid(account_id, "account"), _uuid(key_id, "API key")
    _init()
    with db.connection() as conn:
        row = acc.revoke_api_key(conn, account_id=account_id, key_id=key_id, actor="cli")
    if row is None:
        raise click.ClickException(f"no key {key_id} in account {account_id}; see `gateway api-keys list`")
    click.echo(f"revoked {key_id}")


def _account_id(conn, value: str):
    """An account given by id or by its (unique) name."""
    from gateway import accounts as acc
    try:
        wanted = uuid.UUID(value)
    except ValueError:
        wanted = None
    matches = [r for r in acc.list_accounts(conn) if r["id"] == wanted or r["name"] == value]
    if len(matches) != 1:
        raise click.ClickException(f"{'no' if not matches else 'more than one'} account matches {value!r}; "
                                   "see `gateway accounts list` and pass its id")
    return matches[0]["id"]


@main.group()
def users():
    """People who sign in to the web console at /console."""


@users.command("invite")
@click.option("--account", "account", required=True, help="Account id or name.")
@click.option("--email", required=True, help="The person's email address (they sign in with it).")
@click.option("--role", type=click.Choice(["agent", "supervisor", "admin"]), default=None,
              help="Role for a new user (default agent); given for an existing one, changes theirs.")
@click.option("--name", default=None, help="Name shown in the console (default: the email's local part).")
@click.option("--base-url", default=None, help="The console's address (default: $GATEWAY_PUBLIC_URL or "
              "http://127.0.0.1:8000).")
def users_invite(account, email, role, name, base_url):
    """Print a one-time sign-in link (valid 24 hours); makes the user when new."""
    from gateway import db
    from gateway.console import invites
    from gateway.console import users as console_users
    _init()
    problem = console_users.email_problem(email)
    if problem:
        raise click.BadParameter(f"{email!r} is not {problem}", param_hint="--email")
    with db.connection() as conn:
        account_id = _account_id(conn, account)
        try:
            user, token, created = invites.invite(conn, account_id=account_id, email=email, role=role, name=name,
                                                  actor="cli")
        except console_users.EmailTaken:
            raise click.ClickException(f"{email} is a user of another account; one email signs in to one "
                                       "account") from None
    click.echo(f"{'created' if created else 'existing'} {user['role']} {user['email']}; this link signs them in "
               "once, within 24 hours:", err=True)
    click.echo(invites.link_url(invites.base_url(base_url), token))


@users.command("list")
@click.option("--account", "account", required=True, help="Account id or name.")
def users_list(account):
    from gateway import db
    from gateway.console import users as console_users
    _init()
    with db.connection() as conn:
        rows = console_users.list_users(conn, account_id=_account_id(conn, account))
    for row in rows:
        state = "disabled" if row["disabled_at"] else "active"
        click.echo(f"{row['id']}  {row['email']:<32}  {row['role']:<10}  {state:<8}  {row['sessions']} session(s)")


@users.command("revoke-sessions")
@click.option("--account", "account", required=True, help="Account id or name.")
@click.option("--email", required=True)
def users_revoke_sessions(account, email):
    """Sign the person out everywhere (their next page asks them to sign in)."""
    from gateway import db
    from gateway.console import users as console_users
    _init()
    with db.connection() as conn:
        account_id = _account_id(conn, account)
        user = console_users.find_by_email(conn, email)
        if user is None or user["account_id"] != account_id:
            raise click.ClickException(f"no user {email} in that account; see `gateway users list`")
        count = console_users.sign_out_everywhere(conn, account_id=account_id, user_id=user["id"], actor="cli")
    click.echo(f"ended {count} session(s) of {user['email']}")


@main.group()
def channels():
    """Channels: one business number or page each, with encrypted credentials."""


@channels.command("add")
@click.option("--account", "account", required=True, help="Account id or name.")
@click.option("--kind", required=True, type=click.Choice(["whatsapp", "messenger", "instagram", "twilio", "sandbox"]))
@click.option("--name", required=True, help="A label, e.g. 'Support ES'.")
@click.option("--external-id", required=True,
              help="WhatsApp: phone_number_id; Messenger: Page id; Instagram: account id; "
                   "Twilio: the number (+E.164) or Messaging Service SID.")
@click.option("--waba-id", "group_id", default=None, help="WhatsApp Business Account id (template/account updates).")
@click.option("--credential", "creds", multiple=True, metavar="NAME=VALUE",
              help="Repeat: app_secret=…, access_token=…, verify_token=…, page_access_token=…, account_sid=…, "
                   "auth_token=…. Prefer --credentials-file to keep secrets out of shell history.")
@click.option("--credentials-file", type=click.File("r"), default=None, help="A JSON object of credentials.")
@click.option("--setting", "settings", multiple=True, metavar="NAME=VALUE",
              help="Repeat: api_base_url=… (point the channel at the sandbox), graph_version=v24.0.")
def channels_add(account, kind, name, external_id, group_id, creds, credentials_file, settings):
    """Register a channel and print it (credentials are never printed)."""
    from gateway import channels as ch, db
    import psycopg.errors

    def pairs(values, what):
        out = {}
        for item in values:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise click.BadParameter(f"{item!r} is not NAME=VALUE", param_hint=what)
            out[key.strip()] = value
        return out

    credentials = json.load(credentials_file) if credentials_file else {}
    credentials.update(pairs(creds, "--credential"))
    _init()
    with db.connection() as conn:
        account_id = _account_id(conn, account)
        try:
            row = ch.create_channel(conn, account_id=account_id, kind=kind, name=name, external_id=external_id,
                                    group_id=group_id, credentials=credentials,
                                    settings=pairs(settings, "--setting"), actor="cli")
        except ch.ChannelError as exc:
            raise click.ClickException(str(exc)) from None
        except psycopg.errors.UniqueViolation:
            raise click.ClickException(f"a {kind} channel with external id {external_id} already exists") from None
    click.echo(json.dumps(row, default=str))


@channels.command("list")
@click.option("--account", "account", required=True, help="Account id or name.")
def channels_list(account):
    """List an account's channels."""
    from gateway import channels as ch, db
    _init()
    with db.connection() as conn:
        for row in ch.list_channels(conn, account_id=_account_id(conn, account)):
            click.echo(f"{row['id']}  {row['kind']:<9}  {row['external_id']:<20}  {row['status']:<8}  {row['name']}"
                       f"  credentials: {', '.join(row['credentials_set']) or 'none'}")


@main.group()
def templates():
    """WhatsApp message templates kept as files (see templates_catalog/)."""


@templates.command("validate")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def templates_validate(directory):
    """Check every template file (.json, .yaml, .yml) in DIRECTORY against Meta's rules; for CI: the exit
    status is 1 when any template breaks a rule or a file cannot be read."""
    from templates_catalog.definition import TemplateLoadError, iter_files, load_file
    from templates_catalog.validate import validate
    files = list(iter_files(directory))
    checked = broken = 0
    with click.progressbar(files, label="validating", file=sys.stderr, show_pos=True) as bar:
        report = []
        for path in bar:
            try:
                found = load_file(path)
            except TemplateLoadError as exc:
                report.append(f"{exc}")
                broken += 1
                continue
            for template in found:
                checked += 1
                issues = validate(template)
                if issues:
                    broken += 1
                    report.append(f"{path}: {template.name} ({template.language}): {len(issues)} problem(s)")
                    report.extend(f"  {issue.pointer or '/'}: {issue.message} [{issue.rule}]" for issue in issues)
    for line in report:
        click.echo(line)
    click.echo(f"{checked} template(s) in {len(files)} file(s): "
               f"{'all valid' if not broken else f'{broken} with problems'}")
    sys.exit(1 if broken else 0)


def _whatsapp_channel(conn, account_id, value: str | None):
    """The channel given by id, else the account's only WhatsApp channel."""
    from gateway import channels as ch
    if value:
        return _uuid(value, "channel")
    found = [r["id"] for r in ch.list_channels(conn, account_id=account_id) if r.get("group_id")]
    if len(found) != 1:
        raise click.ClickException(f"the account has {len(found) or 'no'} WhatsApp channel(s) with a business "
                                   "account id; pass --channel (see `gateway channels list`)")
    return found[0]


def _catalog_options(f):
    f = click.option("--channel", default=None, help="WhatsApp channel id (default: the account's only one).")(f)
    return click.option("--account", "account", required=True, help="Account id or name.")(f)


@templates.command("sync")
@_catalog_options
def templates_sync(account, channel):
    """Pull every template of the channel's WhatsApp Business Account from Meta, with status and quality."""
    from gateway import db
    from templates_catalog import sync
    _init()
    with db.connection() as conn:
        account_id = _account_id(conn, account)
        try:
            result = sync.pull(conn, account_id=account_id, channel_id=_whatsapp_channel(conn, account_id, channel))
        except sync.SyncError as exc:
            raise click.ClickException(str(exc)) from None
    click.echo(f"{result['pulled']} template(s) synced from business account {result['waba_id']}")


@templates.command("push")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@_catalog_options
@click.option("--dry-run", is_flag=True, help="Say what would be created or edited; submit nothing.")
def templates_push(directory, account, channel, dry_run):
    """Submit the new and changed templates in DIRECTORY to Meta for review (each validated first). The exit
    status is 1 when any template is invalid, refused or failed."""
    from gateway import db
    from templates_catalog import push
    from templates_catalog.definition import TemplateLoadError, iter_files, load_file
    definitions, unreadable = [], []
    for path in iter_files(directory):
        try:
            definitions.extend(load_file(path))
        except TemplateLoadError as exc:
            unreadable.append(str(exc))
    _init()
    with db.connection() as conn:
        account_id = _account_id(conn, account)
        channel_id = _whatsapp_channel(conn, account_id, channel)
    counts: dict[str, int] = {}
    with click.progressbar(length=len(definitions), label="pushing", file=sys.stderr, show_pos=True) as bar:
        def shown(outcome):
            counts[outcome.result] = counts.get(outcome.result, 0) + 1
            bar.update(1)
            if outcome.result not in ("unchanged",):
                click.echo(f"\n{outcome.name} ({outcome.language}): {outcome.result}: {outcome.detail}", err=True)
                for issue in outcome.problems:
                    click.echo(f"  {issue.pointer or '/'}: {issue.message} [{issue.rule}]", err=True)
        try:
            push.push(db.connection, account_id=account_id, channel_id=channel_id, definitions=definitions,
                      dry_run=dry_run, progress=shown)
        except push.sync.SyncError as exc:
            raise click.ClickException(str(exc)) from None
    for line in unreadable:
        click.echo(line)
    click.echo(", ".join(f"{n} {result}" for result, n in sorted(counts.items())) or "no templates found")
    sys.exit(1 if unreadable or any(counts.get(r) for r in ("invalid", "refused", "failed")) else 0)


@templates.command("preview")
@click.argument("name")
@click.option("--parameters", default=None, help='JSON: a list ["Ana", "42"], a map, or {"body": …, "buttons": …}.')
@click.option("--language", default=None, help="Which translation (default: the only one).")
@click.option("--dir", "directory", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Render from template files instead of the synced catalog.")
@click.option("--account", "account", default=None, help="Account id or name (catalog preview).")
@click.option("--channel", default=None, help="WhatsApp channel id (default: the account's only one).")
def templates_preview(name, parameters, language, directory, account, channel):
    """Render a template with parameters: the text the customer sees, its SMS form and the Cloud API object;
    exit status 1 with every problem when the parameters do not fit."""
    from templates_catalog import render
    try:
        values = json.loads(parameters) if parameters is not None else None
    except ValueError as exc:
        raise click.BadParameter(f"not JSON ({exc})", param_hint="--parameters") from None
    if directory is not None:
        from templates_catalog.definition import load_dir
        found = [t.to_meta() for t in load_dir(directory) if t.name == name]
    elif account:
        from gateway import db, channels as ch
        from templates_catalog import store
        _init()
        with db.connection() as conn:
            account_id = _account_id(conn, account)
            waba = ch.get_channel(conn, account_id=account_id,
                                  channel_id=_whatsapp_channel(conn, account_id, channel))["group_id"]
            found = [dict(r["definition"], status=r["status"]) for r in store.translations(
                conn, account_id=account_id, name=name, waba_id=waba)]
    else:
        raise click.UsageError("give --dir (template files) or --account (the synced catalog)")
    have = sorted(str(d.get("language")) for d in found)
    chosen = [d for d in found if language in (None, d.get("language"))]
    if len(chosen) != 1:
        raise click.ClickException(f"no template {name!r}" + (f" in {language}" if language else "") +
                                   (f"; it exists in {', '.join(have)}: pass --language" if have else ""))
    try:
        rendered = render.render(chosen[0], values)
    except render.RenderError as exc:
        for issue in exc.issues:
            click.echo(f"problem: {issue}", err=True)
        sys.exit(1)
    if chosen[0].get("status") not in (None, "APPROVED"):
        click.echo(f"note: this template is {chosen[0]['status']} at Meta and cannot be sent yet", err=True)
    click.echo(f"--- text (WhatsApp) ---\n{rendered.text}\n--- text (SMS, Messenger) ---\n{rendered.sms_text}")
    click.echo(f"--- Cloud API template object ---\n{json.dumps(rendered.cloud_api, indent=2, ensure_ascii=False)}")


@main.group("contacts")
def contacts_group():
    """Contacts: data-subject requests (access and portability)."""


@contacts_group.command("export")
@click.option("--account", "account", required=True, help="Account id or name.")
@click.argument("contact_id")
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the JSON document here (owner-only permissions) instead of to standard output.")
def contacts_export(account, contact_id, out):
    """Export everything held about a contact (and contacts merged into it), decrypted, as one JSON
    document: what GET /v1/contacts/{id}/export returns. The export is recorded in the audit log."""
    from gateway import db, export
    contact_id = _uuid(contact_id, "contact")
    _init()
    with db.connection() as conn:
        export.begin_snapshot(conn)   # one consistent view of a history that keeps growing meanwhile
        account_id = _account_id(conn, account)
        subject = export.find(conn, account_id=account_id, contact_id=contact_id)
        if subject is None:
            raise click.ClickException(f"no contact {contact_id} in account {account}; find its id with "
                                       "GET /v1/contacts")
        total = export.count_messages(conn, subject)
        # Personal data: the file is owner-only, and appears under its name only once complete.
        tmp = None if out is None else out.with_name(f".{out.name}.partial")
        fh = sys.stdout if tmp is None else open(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600),
                                                 "w", encoding="utf-8")
        try:
            with click.progressbar(length=total, label="exporting messages", file=sys.stderr) as bar:
                for piece in export.chunks(conn, subject, progress=bar.update):
                    fh.write(piece)
            fh.flush()
            if tmp is not None:
                os.fsync(fh.fileno())
                fh.close()
                os.replace(tmp, out)
        finally:
            if tmp is not None:
                fh.close()
                tmp.unlink(missing_ok=True)
        export.record(conn, subject=subject, actor="cli", via="cli")
    if out is not None:
        click.echo(f"exported contact {contact_id}: {subject.message_count} message(s), "
                   f"{len(subject.merged)} merged contact(s) → {out}", err=True)


@main.group()
def retention():
    """Retention: message content and raw webhooks kept no longer than each account's periods."""


@retention.command("run")
@click.option("--account", "account", default=None, help="Account id or name (default: every account).")
@click.option("--dry-run", is_flag=True, help="Only say what would go; change nothing.")
@click.option("--batch", type=click.IntRange(1, 100000), default=1000, show_default=True,
              help="Rows per statement, each batch its own short transaction.")
def retention_run(account, dry_run, batch):
    """Wipe expired message content and delete expired processed raw events, in batches.

    Prints one line per account and table (what is due and what went), progress on standard error, and a
    JSON summary last. Periods are set per account with PATCH /v1/account (retention_message_days,
    retention_raw_event_days)."""
    from gateway import db, retention as r
    _init()
    account_id = None
    if account is not None:
        with db.connection() as conn:
            account_id = _account_id(conn, account)

    def progress(policy, table, done, due):
        click.echo(f"  {policy.name}  {table}: {done:,} of {due:,}", err=True)

    with db.connection() as conn:
        found = r.policies(conn, account_id)
    names = {p.account_id: p.name for p in found}
    for p in found:
        click.echo(f"{p.name} ({p.account_id}): message content "
                   f"{'kept forever' if p.message_days is None else f'{p.message_days} days'}, raw events "
                   f"{'kept forever' if p.raw_event_days is None else f'{p.raw_event_days} days'}")
    report = r.run(account_id, dry_run=dry_run, batch=batch, progress=progress)
    verb = "would go" if dry_run else "went"
    for row in report.rows():
        what = {"messages": "message contents", "inbound_events": "raw events",
                "pending_statuses": "pending statuses"}[row["table"]]
        n = row["due"] if dry_run else row["done"]
        click.echo(f"{names.get(uuid.UUID(row['account_id']), row['account_id'])}  {what}: {n:,} {verb}")
    click.echo(json.dumps({"dry_run": dry_run, "results": report.rows()}))


@main.group()
def campaigns():
    """Campaigns: watch one's progress live."""


def _campaign_line(c: dict, counts: dict) -> str:
    failed = ", ".join(f"{code}: {n}" for code, n in sorted(counts["failed"].items())) or "0"
    skipped = ", ".join(f"{why}: {n}" for why, n in sorted(counts["skipped"].items())) or "0"
    line = (f"{c['state']}  sent {counts['sent']:,} (delivered {counts['delivered']:,}, read {counts['read']:,}, "
            f"replied {counts['replied']:,})  queued {counts['queued']:,}  pending {counts['pending']:,}  "
            f"failed {failed}  skipped {skipped}")
    why = c["state_reason"] if c["state"] == "paused" else c["waiting"]
    return line + (f"\n  {why}" if why else "")


@campaigns.command("watch")
@click.argument("campaign_id")
@click.option("--interval", type=float, default=1.0, show_default=True, help="seconds between updates")
@click.option("--once", is_flag=True, help="print the progress once and exit")
def campaigns_watch(campaign_id, interval, once):
    """Show a campaign's progress live (a bar of recipients done) until it completes or is cancelled; exit
    status 0 when it completed, 1 when it was cancelled or is paused with --once."""
    _init()
    from gateway import db
    from gateway.campaigns import store
    cid = _uuid(campaign_id, "campaign id")

    def read():
        with db.connection() as conn:
            found = conn.execute("SELECT account_id FROM campaigns WHERE id = %s", (cid,)).fetchone()
            if found is None:
                raise click.ClickException(f"no campaign with id {campaign_id}; see GET /v1/campaigns")
            c = store.get(conn, account_id=found["account_id"], campaign_id=cid)
            return c, store.counts(conn, account_id=found["account_id"], campaign_id=cid)

    c, counts = read()
    if once:
        click.echo(f"{c['name']}: " + _campaign_line(c, counts))
        sys.exit(0 if c["state"] not in ("cancelled", "paused") else 1)
    total = max(counts["recipients"], 1)
    done = lambda n: n["sent"] + n["failed_total"] + n["skipped_total"]  # noqa: E731
    with click.progressbar(length=total, label=c["name"], file=sys.stderr, show_percent=True, show_pos=True) as bar:
        shown = 0
        while True:
            if counts["recipients"] > bar.length:
                bar.length = counts["recipients"]
            bar.update(max(0, done(counts) - shown))
            shown = max(shown, done(counts))
            finished = c["state"] in ("completed", "cancelled") and counts["queued"] == 0
            if finished:
                break
            time.sleep(interval)
            c, counts = read()
    click.echo(_campaign_line(c, counts))
    sys.exit(0 if c["state"] == "completed" else 1)


@main.group()
def reports():
    """Contact-center reports: the figures of GET /v1/reports/summary, as a table or CSV."""


@reports.command("summary")
@click.option("--account", "account", required=True, help="Account id or name.")
@click.option("--from", "start", required=True, help="First day, YYYY-MM-DD, in the account's time zone.")
@click.option("--to", "end", required=True, help="Last day (inclusive), YYYY-MM-DD.")
@click.option("--group-by", default="day", show_default=True, help="day, week, channel, team or agent.")
@click.option("--fcr-days", default=None, help="First-contact-resolution window (default: the account's, else 7).")
@click.option("--sla-seconds", default=None, help="Service-level target (default: the account's, else 60).")
@click.option("--csv", "as_csv", is_flag=True, help="Print CSV (as the API's format=csv) instead of a table.")
def reports_summary(account, start, end, group_by, fcr_days, sla_seconds, as_csv):
    """Inbound volume, first response, service level, resolution, FCR (across channels), reopen rate,
    containment, CSAT / NPS / CES and the out-of-hours shares, per group and in total (see README, Reports).
    Exit status 2 on a bad parameter, each named with its fix."""
    from gateway import db, reports as rep
    raw = {"from": start, "to": end, "group_by": group_by, "fcr_days": fcr_days, "sla_seconds": sla_seconds}
    _init()
    try:
        params = rep.parse({k: v for k, v in raw.items() if v is not None}, prefix="--")
        with db.connection() as conn:
            report = rep.summary(conn, account_id=_account_id(conn, account), params=params, parallel=True)
    except rep.ParamsError as exc:
        for e in exc.errors:
            click.echo(f"{e['parameter']}: {e['detail']}", err=True)
        sys.exit(2)
    click.echo(rep.to_csv(report) if as_csv else rep.to_table(report), nl=False)


@main.group()
def automations():
    """Automation rules kept as files (YAML or JSON; one rule, or a list of rules, per file)."""


def _rule_files(directory: Path):
    """(path, rule) for every rule in DIRECTORY's .yaml/.yml/.json files, and the files that cannot be read."""
    import yaml
    found, unreadable = [], []
    for path in sorted(p for p in directory.rglob("*") if p.suffix in (".yaml", ".yml", ".json") and p.is_file()):
        try:
            text = path.read_text(encoding="utf-8")
            doc = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
            # YAML reads 2026-12-25 as a date: rules are stored as JSON, so dates become their ISO strings.
            doc = json.loads(json.dumps(doc, default=str))
        except (OSError, ValueError, yaml.YAMLError) as exc:
            unreadable.append(f"{path}: cannot be read: {str(exc).splitlines()[0]}")
            continue
        docs = doc if isinstance(doc, list) else [doc]
        found += [(path, n, d) for n, d in enumerate(docs)]
    return found, unreadable


def _flow_names(found) -> set[str]:
    """The flows among the files: a rule may start a flow defined in another file of the same directory."""
    return {d["name"].strip() for _, _, d in found
            if isinstance(d, dict) and d.get("kind") == "flow" and isinstance(d.get("name"), str)}


def _rule_report(found, check) -> tuple[list[str], int]:
    report, broken = [], 0
    for path, n, doc in found:
        issues = check(doc)
        if issues:
            broken += 1
            name = doc.get("name") if isinstance(doc, dict) else None
            report.append(f"{path}#{n}: {name or '(no name)'}: {len(issues)} problem(s)")
            report.extend(f"  {i['pointer'] or '/'}: {i['detail']}" for i in issues)
    names = [d.get("name") for _, _, d in found if isinstance(d, dict) and d.get("name")]
    for dup in sorted({x for x in names if names.count(x) > 1}):
        broken += 1
        report.append(f"rule name {dup!r} is used more than once; names are unique in an account")
    return report, broken


@automations.command("validate")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
def automations_validate(directory):
    """Check every rule in DIRECTORY (offline: templates are checked against the catalog by `load`); exit
    status 1 when any rule has a problem or a file cannot be read."""
    from gateway.automation import rules
    found, unreadable = _rule_files(directory)
    flows = _flow_names(found)
    report, broken = _rule_report(found, lambda d: rules.problems(d, flow_names=flows))
    for line in unreadable + report:
        click.echo(line)
    click.echo(f"{len(found)} rule(s): {'all valid' if not (broken or unreadable) else f'{broken + len(unreadable)} with problems'}")
    sys.exit(1 if broken or unreadable else 0)


@automations.command("load")
@click.argument("directory", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--account", required=True, help="account id or name")
def automations_load(directory, account):
    """Create or replace (by name) every rule in DIRECTORY in the account, all or none: nothing is loaded
    when any rule has a problem (templates are checked against the account's catalog)."""
    _init()
    from gateway import db
    from gateway.automation import rules
    found, unreadable = _rule_files(directory)
    with db.connection() as conn:
        account_id = _account_id(conn, account)
        tz = conn.execute("SELECT timezone FROM accounts WHERE id = %s", (account_id,)).fetchone()["timezone"]
        flows = _flow_names(found)
        report, broken = _rule_report(found, lambda d: rules.problems(d, conn=conn, account_id=account_id,
                                                                      default_tz=tz, flow_names=flows))
        if broken or unreadable:
            for line in unreadable + report:
                click.echo(line)
            click.echo(f"{len(found)} rule(s): {broken + len(unreadable)} with problems; nothing loaded")
            conn.rollback()
            sys.exit(1)
        created = replaced = 0
        for _, _, doc in found:
            _, made = rules.upsert_by_name(conn, account_id=account_id, doc=doc)
            created, replaced = created + made, replaced + (not made)
        conn.commit()
    click.echo(f"{created} rule(s) created, {replaced} replaced")


@contacts_group.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--account", required=True, help="Account id or name.")
@click.option("--region", default=None, help="Country of numbers written without +, e.g. ES (default: none; "
              "such numbers are then reported).")
def contacts_import(file, account, region):
    """Import contacts from a CSV FILE (UTF-8, comma or semicolon; columns phone, name, language, tags,
    consent_marketing and its proof, any others become attributes): what POST /v1/contacts/import does.

    Progress on standard error; then the summary, each bad line with its number and reason, and the import's
    id (a campaign's audience). Exit status 1 when any line was bad (the good ones are imported), 0 otherwise."""
    from gateway import contact_import, db
    try:
        region = contact_import.valid_region(region)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--region") from None
    if file.stat().st_size > contact_import.MAX_BYTES:
        raise click.ClickException(f"{file} is larger than {contact_import.MAX_BYTES // 1_048_576} MB; split it")
    _init()
    data = file.read_bytes()
    tty = sys.stderr.isatty()
    shown = {"at": 0, "bar": None}

    def progress(done, total):
        if tty:
            if shown["bar"] is None:
                shown["bar"] = click.progressbar(length=total, label="importing", file=sys.stderr, show_pos=True)
            shown["bar"].length = total
            shown["bar"].update(done - shown["at"])
        elif done == total or done - shown["at"] >= max(total // 10, 1):
            click.echo(f"imported {done:,} of {total:,} rows", err=True)
        else:
            return
        shown["at"] = done

    with db.connection() as conn:
        account_id = _account_id(conn, account)
        try:
            summary = contact_import.run(conn, account_id=account_id, data=data, default_region=region,
                                         filename=file.name, actor="cli", progress=progress)
        except contact_import.ImportRejected as exc:
            for e in exc.errors:
                click.echo(f"line {e['line']}: {e['reason']}")
            raise click.ClickException(f"nothing imported: {exc.detail}") from None
        finally:
            if shown["bar"] is not None:
                shown["bar"].render_finish()
    for e in summary["errors"]:
        click.echo(f"line {e['line']}: {e['reason']}")
    if summary["errors_truncated"]:
        click.echo(f"... {summary['skipped'] - len(summary['errors']):,} more bad line(s) not listed")
    click.echo(f"{summary['rows']:,} row(s): {summary['created']:,} contact(s) created, "
               f"{summary['updated']:,} updated, {summary['duplicates']:,} duplicate(s) folded into an earlier line, "
               f"{summary['skipped']:,} bad line(s) skipped")
    click.echo(f"import {summary['import_id']}")
    sys.exit(1 if summary["skipped"] else 0)


@main.group()
def sandbox():
    """The sandbox provider: a local stand-in for the Cloud API, Messenger and Twilio (no real credentials)."""


def _sandbox_state(data_dir: str | None) -> tuple[Path, dict]:
    path = Path(data_dir or os.environ.get("GATEWAY_DATA_DIR") or "data") / "sandbox.json"
    return path, (json.loads(path.read_text()) if path.exists() else {})


@sandbox.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, default=8100, show_default=True)
@click.option("--gateway-url", default=None, help="Where to send status webhooks (default: from data/sandbox.json).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def sandbox_serve(host, port, gateway_url, data_dir):
    """Run the sandbox provider in the foreground (`gateway up` starts one for you)."""
    from gateway.sandbox import serve
    _, state = _sandbox_state(data_dir)
    secret = os.environ.get("GATEWAY_SANDBOX_APP_SECRET") or state.get("app_secret")
    serve(host, port, gateway_url=gateway_url or state.get("gateway_url"), app_secret=secret,
          ready=lambda url: click.echo(f"sandbox provider listening on {url}", err=True))


@sandbox.command("say")
@click.argument("text")
@click.option("--from", "from_number", required=True, help="The customer's phone number, e.g. +34600000001.")
@click.option("--name", default=None, help="The customer's WhatsApp profile name.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def sandbox_say(text, from_number, name, data_dir):
    """Play a customer: post a signed inbound WhatsApp message to the gateway started by `gateway up`."""
    from gateway.sandbox import say
    path, state = _sandbox_state(data_dir)
    if not state.get("gateway_url"):
        raise click.ClickException(f"no sandbox state at {path}; start the gateway with ./scripts/up first")
    status = say(state["gateway_url"], phone_number_id=state["phone_number_id"], from_number=from_number, text=text,
                 app_secret=state["app_secret"], name=name)
    if status != 200:
        raise click.ClickException(f"the gateway answered {status}; is ./scripts/up still running?")
    click.echo(f"delivered to the gateway as a WhatsApp message from {from_number}")


@main.group()
def keys():
    """Master keys: create a keyring, rotate without downtime."""


@keys.command("init")
@click.option("--file", "path", required=True, type=click.Path(dir_okay=False))
def keys_init(path):
    """Create a new keyring file (refuses to overwrite one)."""
    from gateway.crypto import Keyring
    if Path(path).exists():
        raise click.ClickException(f"{path} exists; it may protect data, so it is never overwritten")
    ring = Keyring.generate().save(path)
    click.echo(f"keyring written to {ring}: BACK IT UP. Losing it makes every encrypted field unreadable.")


@keys.command("rotate")
@click.option("--batch", default=500, show_default=True, help="Data keys re-wrapped per transaction.")
def keys_rotate(batch):
    """Re-wrap every data key under a new master key while the gateway keeps serving.

    With a keyring file, a new master key is generated and made current first;
    running processes pick it up from the file. With GATEWAY_MASTER_KEYS, add the
    new key to every process's environment and make it GATEWAY_MASTER_KEY_ID first.
    """
    from gateway import audit as audit_log, db, keystore, runtime
    from gateway.accounts import audit
    settings = _init()
    ring = runtime.keyring()
    if settings.keyring_file:
        ring = ring.with_new_current()
        ring.save(settings.keyring_file)
        runtime.init(settings)
        click.echo(f"new master key {ring.current_kid} written to {settings.keyring_file}; back it up", err=True)
    with db.connection() as conn:
        total = keystore.pending_rewrap(conn)
        started = audit_log.database_now(conn)
    done = 0
    try:
        with click.progressbar(length=total, label=f"re-wrapping under {runtime.keyring().current_kid}",
                               file=sys.stderr) as bar:
            while True:
                with db.connection() as conn:
                    n = keystore.rewrap_batch(conn, batch)
                if n == 0:
                    break
                done += n
                bar.update(n)
    finally:
        # Recorded even when interrupted: the batches committed so far did re-wrap keys.
        with db.connection() as conn:
            audit(conn, account_id=None, actor="cli", action="keys.rotated",
                  detail={"master_kid": runtime.keyring().current_kid, "rewrapped": done})
            audit_log.record_rotation(conn, since=started, master_kid=runtime.keyring().current_kid)
    with db.connection() as conn:
        left = keystore.pending_rewrap(conn)
    click.echo(f"re-wrapped {done} data key(s) under {runtime.keyring().current_kid}; {left} left "
               f"(held by a concurrent writer; run again to finish)" if left else
               f"re-wrapped {done} data key(s) under {runtime.keyring().current_kid}")


@main.command()
@click.argument("queues", nargs=-1)
@click.option("--burst", is_flag=True, help="Exit when the queues are empty.")
@click.option("--fork", is_flag=True, help="Run each job in a forked child (slower, isolates crashes).")
def worker(queues, burst, fork):
    """Run an RQ worker on the inbound, send and default queues (or those named, e.g. webhooks)."""
    _metrics_dir()   # before the imports below make the metrics, and with them their files
    from gateway import jobs
    from gateway import worker as w
    for q in queues:
        if q not in jobs.QUEUES:
            raise click.BadParameter(f"unknown queue {q!r}; choose from {', '.join(jobs.QUEUES)}")
    _init()
    w.run(list(queues) or None, burst=burst, fork=fork)


@main.command()
@click.option("--once", is_flag=True, help="Sweep once and exit.")
def sweeper(once):
    """Re-enqueue work PostgreSQL says is pending but Redis does not hold."""
    _metrics_dir()
    from gateway import sweeper as s
    settings = _init()
    if once:
        click.echo(json.dumps(s.sweep_once(grace_s=0)))
    else:
        s.run_forever(settings.sweep_interval_s)


@main.command()
@click.option("--port", type=int, default=lambda: int(os.environ.get("PORT", 8000)))
@click.option("--host", default=lambda: os.environ.get("GATEWAY_BIND", "127.0.0.1"))
@click.option("--workers", type=int, default=2, show_default=True)
def web(port, host, workers):
    """Run the web app under gunicorn (what the Procfile's web process runs)."""
    _settings()
    _metrics_dir()
    os.execv(sys.executable, [sys.executable, "-m", "gunicorn", *gunicorn_args(host, port, workers)])


def _metrics_dir() -> None:
    """With PROMETHEUS_MULTIPROC_DIR set (the Procfile, `gateway up`), make sure the folder exists and drop
    what processes gone since left in it."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from gateway.multiproc import prepare_dir
        prepare_dir(os.environ["PROMETHEUS_MULTIPROC_DIR"], wipe=False)


def gunicorn_args(host: str, port: int, workers: int = 2) -> list[str]:
    # Webhook requests mostly wait for their group commit, so each process keeps many in flight.
    threads = os.environ.get("GATEWAY_WEB_THREADS", "16")
    return ["gateway.wsgi:app", "--bind", f"{host}:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", threads, "--graceful-timeout", "10",
            "--log-level", "warning", "--config", "python:gateway.multiproc"]


if __name__ == "__main__":
    main()
