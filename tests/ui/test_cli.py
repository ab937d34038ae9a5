"""`shopdesk ui` serves the app on 127.0.0.1 with settings from the environment."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx
from gradio_client import Client


def test_shopdesk_ui_serves_both_roles(sample_db_template, tmp_path, helpers):
    shutil.copyfile(sample_db_template, tmp_path / "shop.db")
    port = helpers.free_port()
    env = dict(os.environ, SHOPDESK_DATA_DIR=str(tmp_path / "data"),
               SHOPDESK_DATABASE_URL=f"sqlite:///{tmp_path / 'shop.db'}", SHOPDESK_LLM_BACKEND="fake",
               SHOPDESK_MARKETER_PASSWORD="cli-pw", SHOPDESK_DEMO="1")
    shopdesk = Path(sys.executable).with_name("shopdesk")
    proc = subprocess.Popen([str(shopdesk), "ui", "--port", str(port)], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.time() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.time() < deadline, "shopdesk ui did not start within 120 s"
            time.sleep(0.5)
        client = Client(url, verbose=False)
        chat, status, backend, _ = client.predict("c000001", api_name="/customer_sign_in")
        assert "c000001" in status and backend == ""  # model details are for staff, not customers
        chat, _ = client.predict("hello there", api_name="/customer_chat")
        assert "You said: hello there" in chat[-1]["content"][0]["text"]
        msg, _, _ = client.predict("cli-pw", api_name="/marketer_sign_in")
        assert msg == ""
    finally:
        proc.terminate()
        proc.wait(timeout=30)
