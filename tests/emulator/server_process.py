"""Start `entra-batch emulator --tls` as a real subprocess on a free loopback port, for the
tests that drive it with the official clients (msal, msgraph-sdk) over a socket.

`running_emulator(home)` yields an `Emulator` built from the `export` lines the command
prints, waits until the server answers, and always stops the process (SIGTERM, then
SIGKILL) when the block ends, whatever happened inside it.
"""

from __future__ import annotations

import os
import queue
import shlex
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAPH_SCOPE = "https://graph.microsoft.com/.default"


@dataclass(frozen=True)
class Emulator:
    exports: dict[str, str]
    process: subprocess.Popen[str]
    # The commented-out `# export NAME=VALUE` lines (the managed identity endpoint and its
    # header): printed for a user to uncomment, kept apart so they never reach an environment
    # built from `exports`.
    optional: dict[str, str] = field(default_factory=dict)
    # Every line printed up to the last export line, comments included.
    printed: tuple[str, ...] = ()

    @property
    def identity_endpoint(self) -> str:
        return self.optional["IDENTITY_ENDPOINT"]

    @property
    def identity_header(self) -> str:
        return self.optional["IDENTITY_HEADER"]

    @property
    def tenant_id(self) -> str:
        return self.exports["AZURE_TENANT_ID"]

    @property
    def client_id(self) -> str:
        return self.exports["AZURE_CLIENT_ID"]

    @property
    def client_secret(self) -> str:
        return self.exports["AZURE_CLIENT_SECRET"]

    @property
    def authority_host(self) -> str:
        return self.exports["AZURE_AUTHORITY_HOST"]

    @property
    def authority(self) -> str:
        return f"{self.authority_host}/{self.tenant_id}"

    @property
    def graph_url(self) -> str:
        return self.exports["ENTRA_BATCH_TARGET"]

    @property
    def ca_path(self) -> str:
        return self.exports["SSL_CERT_FILE"]

    def ssl_context(self) -> ssl.SSLContext:
        """For httpx (`verify=`), which no longer takes a CA file path."""
        return ssl.create_default_context(cafile=self.ca_path)


def parse_exports(lines: Sequence[str]) -> dict[str, str]:
    """`export NAME=VALUE` lines (VALUE possibly shell-quoted) → {NAME: VALUE}; comments skipped."""
    out: dict[str, str] = {}
    for line in lines:
        line = line.strip()
        if not line.startswith("export "):
            continue
        for word in shlex.split(line[len("export "):]):
            name, _, value = word.partition("=")
            out[name] = value
    return out


def _pump(stream, lines: queue.Queue[str | None]) -> None:  # type: ignore[no-untyped-def]
    for line in stream:
        lines.put(line)
    lines.put(None)


def stop(process: subprocess.Popen[str], timeout: float = 5.0) -> None:
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@contextmanager
def running_emulator(home: Path, db: Path | None = None, extra_args: Sequence[str] = (),
                     timeout: float = 30.0, tls: bool = True) -> Iterator[Emulator]:
    """Serve the emulator with `--tls --port 0` on 127.0.0.1 (plain http with `tls=False`);
    `home` is ENTRA_BATCH_HOME (the local CA lands in it), `db` the SQLite directory
    (default: `home/emulator.db`)."""
    home.mkdir(parents=True, exist_ok=True)
    db = db or home / "emulator.db"
    env = dict(os.environ, ENTRA_BATCH_HOME=str(home), PYTHONUNBUFFERED="1")
    for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        env.pop(name, None)
    stderr_path = home / f"emulator-{time.monotonic_ns()}.stderr"
    command = [sys.executable, "-m", "batch", "emulator", *(["--tls"] if tls else []), "--host", "127.0.0.1",
               "--port", "0", "--db", str(db), *extra_args]
    with open(stderr_path, "w") as stderr:
        process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=stderr,
                                   stdin=subprocess.DEVNULL, text=True)
    try:
        lines: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=_pump, args=(process.stdout, lines), daemon=True).start()
        deadline = time.monotonic() + timeout
        seen: list[str] = []

        def failure(reason: str) -> RuntimeError:
            return RuntimeError(f"emulator {reason}; stdout so far: {seen!r}; stderr: "
                                f"{stderr_path.read_text(errors='replace')[-2000:]!r}")

        while "ENTRA_BATCH_EXTENSIONS_APP_ID" not in parse_exports(seen):  # the last export line
            try:
                line = lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise failure("printed no export lines in time") from None
            if line is None:
                raise failure(f"exited early with status {process.wait()}")
            seen.append(line)
        optional = parse_exports([line.strip()[2:] for line in seen if line.strip().startswith("# export ")])
        emulator = Emulator(parse_exports(seen), process, optional, tuple(line.rstrip("\n") for line in seen))
        # The socket is bound before the export lines are printed; wait until it is served.
        while True:
            try:
                verify = emulator.ssl_context() if tls else True
                if httpx.get(f"{emulator.authority_host}/", verify=verify, timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None:
                raise failure(f"exited with status {process.returncode}")
            if time.monotonic() > deadline:
                raise failure("did not answer in time")
            time.sleep(0.05)
        yield emulator
    finally:
        stop(process)
        if process.stdout is not None:
            process.stdout.close()
