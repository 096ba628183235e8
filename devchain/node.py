"""Start and stop a local anvil node (the real EVM from npm `@foundry-rs/anvil`)."""

from __future__ import annotations

import ipaddress
import os
import signal
import socket
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import requests

from postmortem import jsonrpc
from postmortem.errors import PostmortemError
from postmortem.paths import SETUP_COMMAND, anvil_binary_path, anvil_package

# Anvil's well-known test mnemonic; its first accounts are pre-funded with 10,000 ETH.
DEFAULT_ACCOUNTS = 60
DEFAULT_BALANCE_ETH = 1_000_000


def anvil_binary() -> Path:
    """anvil from npm `@foundry-rs/anvil`, the build for this platform."""
    path = anvil_binary_path()
    if path is None:
        import platform

        raise PostmortemError(
            f"npm @foundry-rs/anvil has no build for {platform.system()} {platform.machine()}; "
            "the local chain runs on Linux and macOS (x64, arm64) and Windows x64"
        )
    if not path.exists():
        raise PostmortemError(
            f"anvil ({anvil_package()}) is not installed at {path}; run `{SETUP_COMMAND}` first "
            "(it needs Node.js 20+ and npm)"
        )
    return path


def port_in_use(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0


def is_loopback_host(host: str | None) -> bool:
    """True for ``localhost`` and loopback IPs: the only hosts the dev tools write to or forward to."""
    if not host:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rpc_ready(url: str, timeout: float = 0.5) -> bool:
    """True when ``url`` answers ``eth_chainId`` with a result within ``timeout`` seconds."""
    try:
        return jsonrpc.call(url, "eth_chainId", [], timeout=timeout) is not None
    except (requests.RequestException, PostmortemError, OSError):
        return False


@dataclass
class AnvilNode:
    """A running anvil process. ``url`` is its JSON-RPC endpoint."""

    port: int
    process: subprocess.Popen | None
    pid: int
    # anvil spills old block states to $HOME/.foundry/anvil/tmp and never deletes them (about 5 GB
    # for the mainnet twin): each node gets a HOME of its own, removed when the node stops.
    state_home: Path | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.process is None:
            stop_pid(self.pid)
        else:
            # Our own child: terminate and reap it (polling the pid would see an unreaped zombie).
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)
        remove_state_home(self.state_home)


def remove_state_home(state_home: Path | None) -> None:
    """Delete the block states a stopped anvil left on disk."""
    if state_home is not None:
        shutil.rmtree(state_home, ignore_errors=True)


def start_anvil(
    port: int | None = None,
    *,
    timestamp: int | None = None,
    accounts: int = DEFAULT_ACCOUNTS,
    detach: bool = False,
    log_path: Path | None = None,
    extra_args: list[str] | None = None,
    state_home: Path | None = None,
) -> AnvilNode:
    """Start anvil on ``port`` (a free one when None) and wait until it answers JSON-RPC.

    ``timestamp`` sets the genesis block time (scenarios replay real dates).
    Transactions are ordered first-in first-out so scenarios control intra-block order.
    ``detach`` starts it in its own session so it outlives the calling process.
    ``state_home`` is where anvil keeps block states it spills to disk (a new temporary folder when
    None); ``AnvilNode.stop`` removes it.
    """
    binary = anvil_binary()
    if port is None:
        port = free_port()
    elif port_in_use(port):
        raise PostmortemError(
            f"port {port} is already in use; pass --port with a free port, or stop what listens there "
            f"(`postmortem devchain stop --port {port}` if it is an earlier devchain)"
        )
    args = [
        str(binary),
        "--port", str(port),
        "--host", "127.0.0.1",
        "--accounts", str(accounts),
        "--balance", str(DEFAULT_BALANCE_ETH),
        "--order", "fifo",
        "--code-size-limit", "100000",
        "--disable-block-gas-limit",
        "--silent",
    ]
    if timestamp is not None:
        args += ["--timestamp", str(timestamp)]
    args += extra_args or []
    out = open(log_path, "ab") if log_path else subprocess.DEVNULL
    state_home = Path(state_home) if state_home else Path(tempfile.mkdtemp(prefix="postmortem-anvil-"))
    state_home.mkdir(parents=True, exist_ok=True)
    proc = subprocess.Popen(
        args, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=detach,
        env={**os.environ, "HOME": str(state_home)},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            remove_state_home(state_home)
            raise PostmortemError(
                f"anvil exited at start with code {proc.returncode}; check that port {port} is free "
                "and that `node_modules` is installed (`make setup`)"
            )
        if rpc_ready(url):
            return AnvilNode(port=port, process=proc, pid=proc.pid, state_home=state_home)
        time.sleep(0.05)
    proc.kill()
    remove_state_home(state_home)
    raise PostmortemError(f"anvil did not answer on {url} within 20 s; try another --port")


def stop_pid(pid: int) -> bool:
    """Terminate a process (anvil) by pid; returns False when it was not running."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return False
    for _ in range(100):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.02)
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return True
