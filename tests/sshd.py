"""A real OpenSSH server on loopback for the fleet tests (issue 22): its own host key, config and
authorized key in a test folder, bound to 127.0.0.x on a free port, logging in as the user the tests
run as (CI: root). Where it cannot start (not root, no sshd, no ssh client) the tests skip and say why;
CI (.ci/run) installs openssh-server and sets EDGEBENCH_TEST_NEED_SSHD=1, and there a server that
cannot start fails the test instead, so the fleet's real SSH path never goes unrun unseen."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest
from waiting import wait_for

from orchestrator.engine.sse import free_port

NEED = "EDGEBENCH_TEST_NEED_SSHD"
SFTP_SERVERS = ("/usr/lib/openssh/sftp-server", "/usr/libexec/openssh/sftp-server", "/usr/libexec/sftp-server")


def cannot(reason: str) -> None:
    if os.environ.get(NEED) == "1":
        pytest.fail(f"{reason}, and {NEED}=1 says this run must test the fleet over SSH")
    pytest.skip(reason)


def _sshd() -> str | None:
    return shutil.which("sshd") or next((p for p in ("/usr/sbin/sshd",) if os.access(p, os.X_OK)), None)


def _accepts(address: str, port: int) -> bool:
    try:
        with socket.create_connection((address, port), timeout=1):
            return True
    except OSError:
        return False


class Sshd:
    """sshd -D on `addresses` (each a host of the inventory) at one port; close() stops it."""

    def __init__(self, folder: Path, addresses: tuple[str, ...] = ("127.0.0.1",)):
        if os.geteuid() != 0:
            cannot("sshd logs users in only when it runs as root (CI runs as root)")
        sshd = _sshd()
        if sshd is None or shutil.which("ssh") is None or shutil.which("ssh-keygen") is None:
            cannot("OpenSSH is not installed (apt-get install openssh-server)")
        sftp = next((p for p in SFTP_SERVERS if os.access(p, os.X_OK)), None)
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.addresses, self.port = addresses, free_port()
        self.key = self.folder / "client_key"
        host_key = self.folder / "host_key"
        for k in (self.key, host_key):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(k)], check=True)
        authorized = self.folder / "authorized_keys"
        shutil.copy(f"{self.key}.pub", authorized)
        config = self.folder / "sshd_config"
        config.write_text("\n".join([
            f"Port {self.port}", *(f"ListenAddress {a}" for a in addresses), f"HostKey {host_key}",
            f"PidFile {self.folder / 'sshd.pid'}", f"AuthorizedKeysFile {authorized}", "PubkeyAuthentication yes",
            "PasswordAuthentication no", "KbdInteractiveAuthentication no", "PermitRootLogin prohibit-password",
            "UsePAM no", "StrictModes no", "LogLevel VERBOSE",
            *([f"Subsystem sftp {sftp}"] if sftp else []), ""]))
        Path("/run/sshd").mkdir(parents=True, exist_ok=True)  # its privilege separation folder
        self.log = self.folder / "sshd.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stdout=log, stderr=subprocess.STDOUT)
        if not wait_for(lambda: self.proc.poll() is not None or all(_accepts(a, self.port) for a in addresses), 60):
            self.close()
            cannot(f"sshd did not listen on port {self.port}: {self.log.read_text()[-2000:]}")
        if self.proc.poll() is not None:
            cannot(f"sshd exited {self.proc.returncode}: {self.log.read_text()[-2000:]}")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
