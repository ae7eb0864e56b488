"""`gateway up` end to end on the embedded default: ready, usable, stops cleanly, keeps its data."""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import pytest


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False


class Up:
    def __init__(self, data_dir, port):
        env = {k: v for k, v in os.environ.items()
               if k not in ("DATABASE_URL", "REDIS_URL", "GATEWAY_KEYRING_FILE", "GATEWAY_MASTER_KEYS")}
        env.update(GATEWAY_DATA_DIR=str(data_dir), PORT=str(port), GATEWAY_LOG_LEVEL="INFO")
        self.log_path = data_dir.parent / f"up-{port}.log"
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "gateway.cli", "up"], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT)
        self.url = None
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and self.proc.poll() is None:
            m = re.search(r"ready in [\d.]+s at (http://[\d.:]+)", self.output())
            if m:
                self.url = m.group(1)
                break
            time.sleep(0.1)
        assert self.url, self.output()

    def output(self):
        return self.log_path.read_text()

    def request(self, method, path, key, body=None):
        req = urllib.request.Request(self.url + path, method=method,
                                     data=None if body is None else json.dumps(body).encode(),
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read() or b"null")

    def stop(self, sig=signal.SIGINT):
        self.proc.send_signal(sig)
        self.proc.wait(timeout=60)
        self.log.close()
        return self.output()


def test_up_runs_stops_cleanly_and_keeps_data(tmp_path):
    data = tmp_path / "data"
    up = Up(data, _free_port())
    try:
        out = up.output()
        assert "embedded PostgreSQL" in out and "embedded Valkey" in out and "BACK IT UP" in out
        key = re.search(r"demo account API key \(shown once\): (gwk_\S+)", out).group(1)
        assert up.request("GET", "/v1/account", key)["name"] == "demo"
        contact = up.request("POST", "/v1/contacts", key,
                             {"name": "Marta Secreta", "identities": [{"kind": "phone", "address": "+34699887766"}]})
        # The embedded servers are the ones in use, not the machine's services.
        pg_pid = int((data / "postgres" / "postmaster.pid").read_text().split()[0])
        valkey_pid = int((data / "valkey" / "valkey.pid").read_text())
        children = [int(p) for p in subprocess.run(["pgrep", "-P", str(up.proc.pid)], capture_output=True,
                                                   text=True).stdout.split()]
        assert len(children) >= 3
        assert str(data / "postgres") in open(f"/proc/{pg_pid}/cmdline").read().replace("\0", " ")
    finally:
        log = up.stop()
    assert up.proc.returncode == 0
    time.sleep(0.5)
    left = [p for p in [pg_pid, valkey_pid, *children] if _alive(p)]
    assert not left, f"left behind: {left}"
    # Logs carry ids, never the phone number or the name.
    assert "34699887766" not in log and "Marta" not in log

    again = Up(data, _free_port())
    try:
        out = again.output()
        assert "demo account 'demo' exists" in out and "BACK IT UP NOW" not in out
        got = again.request("GET", f"/v1/contacts/{contact['id']}", key)
        assert got["name"] == "Marta Secreta" and got["identities"][0]["address"] == "+34699887766"
    finally:
        again.stop(signal.SIGTERM)
    assert again.proc.returncode == 0


def test_a_new_user_plays_a_customer_and_answers_through_the_sandbox(tmp_path):
    """The README's walk-through: `sandbox say`, the thread over the API, one curl to answer, sent → read."""
    data = tmp_path / "data"
    up = Up(data, _free_port())
    try:
        key = re.search(r"demo account API key \(shown once\): (gwk_\S+)", up.output()).group(1)
        env = {**os.environ, "GATEWAY_DATA_DIR": str(data)}
        said = subprocess.run([sys.executable, "-m", "gateway.cli", "sandbox", "say", "--from", "+34600000001",
                               "--name", "Lucía", "Hola, ¿abrís el domingo?"], env=env, capture_output=True,
                              text=True, timeout=60)
        assert said.returncode == 0, said.stderr
        deadline = time.monotonic() + 30
        threads = []
        while not threads and time.monotonic() < deadline:
            threads = up.request("GET", "/v1/threads", key)["data"]
            time.sleep(0.2)
        [thread] = threads
        assert thread["window"]["open"] and thread["last_message"]["text"] == "Hola, ¿abrís el domingo?"
        reply = up.request("POST", "/v1/messages", key, {"channel_id": thread["channel_id"],
                                                         "contact_id": thread["contact_id"], "type": "text",
                                                         "text": {"body": "¡Sí, de 10 a 14!"}})
        status = None
        while status != "read" and time.monotonic() < deadline + 30:
            status = up.request("GET", f"/v1/messages/{reply['id']}", key)["status"]
            time.sleep(0.2)
        assert status == "read"
    finally:
        up.stop()
    assert up.proc.returncode == 0
