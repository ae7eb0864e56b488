"""`gateway templates sync|push|preview` as a business runs them, against the sandbox standing in for Meta."""
from __future__ import annotations

import copy
import json
import os
import secrets
import subprocess
import sys

from tests.gateway.test_send_end_to_end import control, gateway_url, sandbox  # noqa: F401  (fixtures)
from tests.gateway.test_templates_submit_and_channels import GOOD, _listed
from tests.webhooks.conftest import make_inbox


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gateway.cli", "templates", *map(str, args)], env=os.environ,
                          capture_output=True, text=True, timeout=120)


def _account(client, sandbox):
    inbox = make_inbox(client)
    waba = f"WABA{secrets.randbelow(10**9)}"
    ch = inbox.channel("whatsapp", group_id=waba, settings={"api_base_url": sandbox.url})
    return inbox, ch, waba


def test_push_creates_new_templates_edits_changed_ones_and_leaves_the_rest(client, sandbox, tmp_path):
    inbox, ch, waba = _account(client, sandbox)
    (tmp_path / "cita.json").write_text(json.dumps(GOOD))
    english = copy.deepcopy(GOOD)
    english.update(language="en_US")
    english["components"][0]["text"] = "Hi {{1}}, see you on {{2}}."
    (tmp_path / "cita_en.json").write_text(json.dumps(english))

    dry = _cli("push", tmp_path, "--account", inbox.account_id, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "2 created" in dry.stdout and _listed(sandbox, waba) == []

    first = _cli("push", tmp_path, "--account", inbox.account_id, "--channel", ch["id"])
    assert first.returncode == 0, first.stderr
    assert "2 created" in first.stdout
    assert sorted(t["language"] for t in _listed(sandbox, waba)) == ["en_US", "es"]

    again = _cli("push", tmp_path, "--account", inbox.account_id)
    assert again.returncode == 0 and "2 unchanged" in again.stdout, again.stdout + again.stderr

    english["components"][0]["text"] = "Hello {{1}}, we expect you on {{2}}."
    (tmp_path / "cita_en.json").write_text(json.dumps(english))
    edited = _cli("push", tmp_path, "--account", inbox.account_id)
    assert edited.returncode == 0, edited.stdout + edited.stderr
    assert "1 unchanged, 1 updated" in edited.stdout
    [en] = [t for t in _listed(sandbox, waba) if t["language"] == "en_US"]
    assert en["components"][0]["text"] == "Hello {{1}}, we expect you on {{2}}."
    got = inbox.api("GET", f"/v1/templates/cita_recordatorio?channel_id={ch['id']}&language=en_US").json
    assert got["status"] == "PENDING" and got["definition"]["components"][0]["text"].startswith("Hello")


def test_push_reports_invalid_templates_by_rule_and_fails(client, sandbox, tmp_path):
    inbox, ch, waba = _account(client, sandbox)
    bad = dict(GOOD, name="Mal Nombre")
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    (tmp_path / "good.json").write_text(json.dumps(GOOD))
    done = _cli("push", tmp_path, "--account", inbox.account_id)
    assert done.returncode == 1
    assert "1 created, 1 invalid" in done.stdout and "[name_invalid]" in done.stderr
    assert [t["name"] for t in _listed(sandbox, waba)] == ["cita_recordatorio"]
    sms_only = make_inbox(client)
    out = _cli("push", tmp_path, "--account", sms_only.account_id)
    assert out.returncode != 0 and "--channel" in out.stderr


def test_sync_and_preview_from_the_catalog_and_from_files(client, sandbox, tmp_path):
    inbox, ch, waba = _account(client, sandbox)
    assert _cli("push", tmp_path, "--account", inbox.account_id).returncode == 0   # an empty folder is fine
    (tmp_path / "cita.json").write_text(json.dumps(GOOD))
    assert _cli("push", tmp_path, "--account", inbox.account_id).returncode == 0
    synced = _cli("sync", "--account", inbox.account_id)
    assert synced.returncode == 0 and "1 template(s) synced" in synced.stdout, synced.stderr
    shown = _cli("preview", "cita_recordatorio", "--account", inbox.account_id, "--parameters", '["Ana", "lunes"]')
    assert shown.returncode == 0, shown.stderr
    assert "Hola Ana, te esperamos el lunes." in shown.stdout and "1. Confirmo" in shown.stdout
    assert '"name": "cita_recordatorio"' in shown.stdout
    offline = _cli("preview", "cita_recordatorio", "--dir", tmp_path, "--parameters", '["Ana"]')
    assert offline.returncode == 1 and "{{2}}" in offline.stderr
    unknown = _cli("preview", "cita_recordatorio", "--dir", tmp_path, "--language", "fr")
    assert unknown.returncode != 0 and "exists in es" in unknown.stderr
