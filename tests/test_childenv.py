"""A process the daemon starts sees none of its secrets: the real daemon, with an API key and a
bot token in its environment, runs the daily sync, whose ``openclaw`` is a script that writes
down the environment it was given."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from daemon.sample.home import write_sample_home
from stores.backup.checks import probe_environ
from stores.childenv import child_environ
from tests.support import running_daemon

API_KEY = "sk-ant-api03-childenv-test-key-0123456789"
BOT_TOKEN = "123456789:AAHchildenvTestTokenPartThatIsLong01"
PASSPHRASE = "correct horse battery staple"
OWN_NAME_SECRET = "gh-token-value-from-elsewhere-9876"


def test_only_the_allowed_names_pass_and_no_secret_by_value() -> None:
    environ = {
        "PATH": "/usr/bin",
        "HOME": "/home/dana",
        "LANG": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "OPENCLAW_PROFILE": "work",
        "OPENCLAW_STATE_DIR": "/home/dana/.openclaw",
        "OPENCLAW_INFRA_ANTHROPIC_API_KEY": API_KEY,
        "OPENCLAW_INFRA_TELEGRAM__TOKEN": BOT_TOKEN,
        "OPENCLAW_INFRA_LOG_LEVEL": "debug",
        "OPENCLAW_GATEWAY_TOKEN": "gateway-secret",
        "ANTHROPIC_API_KEY": API_KEY,
        "AWS_SECRET_ACCESS_KEY": "aws",
        "SSH_AUTH_SOCK": "/tmp/ssh-agent",
        "LD_PRELOAD": "/tmp/evil.so",
        "PYTHONPATH": "/elsewhere",
        "XDG_CONFIG_HOME": OWN_NAME_SECRET,  # an allowed name that holds a secret's value
        "LC_ALL": f"x{BOT_TOKEN.split(':')[1]}y",  # a secret inside a longer value
    }
    child = child_environ(
        environ, secrets=[API_KEY, BOT_TOKEN, BOT_TOKEN.split(":")[1], OWN_NAME_SECRET]
    )
    assert child == {
        "PATH": "/usr/bin",
        "HOME": "/home/dana",
        "LANG": "C.UTF-8",
        "LC_TIME": "en_GB.UTF-8",
        "XDG_RUNTIME_DIR": "/run/user/1000",
        "OPENCLAW_PROFILE": "work",
        "OPENCLAW_STATE_DIR": "/home/dana/.openclaw",
    }
    assert child_environ({"PATH": "/bin"}, extra={"PYTHONPATH": "/src"}) == {
        "PATH": "/bin",
        "PYTHONPATH": "/src",
    }


def test_the_backup_probe_gets_a_scrubbed_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENCLAW_INFRA_BACKUP__PASSPHRASE", PASSPHRASE)
    monkeypatch.setenv("ANTHROPIC_API_KEY", API_KEY)
    env = probe_environ("/src/openclaw-infra")
    assert PASSPHRASE not in env.values()
    assert API_KEY not in env.values()
    assert env["PYTHONPATH"].split(os.pathsep)[0] == "/src/openclaw-infra"
    assert env["PATH"] == os.environ["PATH"]


def test_the_openclaw_command_the_daemon_starts_sees_none_of_its_secrets(root: Path) -> None:
    home = write_sample_home(root / "openclaw")
    dump = root / "child-env.json"
    script = root / "openclaw-cli"
    script.write_text(
        f"#!{sys.executable}\n"
        "import json, os, sys\n"
        f"open({str(dump)!r}, 'w').write(json.dumps(dict(os.environ)))\n"
    )
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    env = {
        "OPENCLAW_INFRA_ANTHROPIC_API_KEY": API_KEY,
        "OPENCLAW_INFRA_ANTHROPIC_BASE_URL": "http://127.0.0.1:9",
        "OPENCLAW_INFRA_TELEGRAM__TOKEN": BOT_TOKEN,
        "OPENCLAW_INFRA_TELEGRAM__BASE_URL": "http://127.0.0.1:9",
        "OPENCLAW_INFRA_BACKUP__PASSPHRASE": PASSPHRASE,
        "OPENCLAW_INFRA_SYNC__OPENCLAW_COMMAND": str(script),
        "OPENCLAW_INFRA_MEMORY__WATCH": "false",
        "ANTHROPIC_API_KEY": API_KEY,
        "TELEGRAM_BOT_TOKEN": BOT_TOKEN,
        "LC_ALL": "C.UTF-8",
    }
    with running_daemon(root, env) as daemon:
        run = daemon.call("trigger", {"job": "sync", "wait": True, "timeout": 120}, timeout=150)
        assert run["stats"]["announce"]["status"] == "sent", run
    seen: dict[str, str] = json.loads(dump.read_text())
    everything = json.dumps(seen)
    for secret in (API_KEY, BOT_TOKEN, BOT_TOKEN.split(":")[1], PASSPHRASE):
        assert secret not in everything
    assert not [name for name in seen if name.startswith("OPENCLAW_INFRA_")]
    assert seen["OPENCLAW_STATE_DIR"] == str(home)  # the home the daemon reads, said outright
    assert seen["LC_ALL"] == "C.UTF-8"
    assert seen["PATH"] == os.environ["PATH"]
