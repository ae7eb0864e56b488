"""DESIGN invariant 1: a web process killed right after its 200 loses nothing; the sweeper finishes the job."""
import os
import secrets
import signal
import subprocess
import sys
import time
import urllib.request

from gateway import jobs, sweeper
from tests.gateway.test_outages import _free_port
from tests.webhooks.conftest import make_inbox, meta_raw, meta_signature
from tests.webhooks.test_receiver import text, wa_body


def test_web_killed_after_the_ack_then_sweeper_and_worker_finish(client, redis):
    inbox = make_inbox(client)
    ch = inbox.channel("whatsapp")
    port = _free_port()
    web = subprocess.Popen([sys.executable, "-m", "gateway.cli", "web", "--port", str(port), "--workers", "1"],
                           env=os.environ, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1)
                break
            except OSError:
                assert time.monotonic() < deadline, "web did not start"
                time.sleep(0.1)
        raw = meta_raw(wa_body(ch["external_id"], messages=[text("34600000300", "¿llegó?")]))
        req = urllib.request.Request(f"http://127.0.0.1:{port}/webhooks/whatsapp", data=raw, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "X-Hub-Signature-256": meta_signature(raw)})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 200
    finally:
        os.killpg(web.pid, signal.SIGKILL)     # no graceful shutdown, no chance to finish anything
        web.wait(timeout=10)
    # No worker ran; and say the job pointer died with the process (or Redis restarted empty).
    jobs.queue("inbound").empty()
    redis.flushdb()
    assert inbox.threads() == []
    assert sweeper.sweep_once(grace_s=0)["inbound"] >= 1   # ours, and any other test's leftovers
    inbox.drain()
    [thread] = inbox.threads()
    assert [m["text"] for m in inbox.messages(thread["id"])] == ["¿llegó?"]
