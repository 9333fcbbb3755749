"""scripts/provision.sh, which `make test` runs first: it installs Debian's
chromium as root or through passwordless sudo, and otherwise fails at once
with one line. Run against fake `id`, `sudo` and `apt-get` on a PATH of
their own, so no test here installs anything or depends on this machine."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash")
INSTALL = "apt-get install -y --no-install-recommends chromium"

# Each records its call in $CALLS; the fake apt-get "installs" $CHROMIUM.
FAKE_APT_GET = f"""#!{sys.executable}
import os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(f"apt-get {{' '.join(sys.argv[1:])}} DEBIAN_FRONTEND={{os.environ.get('DEBIAN_FRONTEND')}}\\n")
if sys.argv[1] == "install":
    if os.environ.get("APT_FAILS"):
        sys.exit(100)
    open(os.environ["CHROMIUM"], "w").close()
    os.chmod(os.environ["CHROMIUM"], 0o755)
"""
FAKE_SUDO = f"""#!{sys.executable}
import os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(f"sudo {{' '.join(sys.argv[1:])}}\\n")
if os.environ.get("SUDO_NEEDS_PASSWORD"):
    sys.exit(1)
args = [a for a in sys.argv[1:] if a != "-n"]
os.execvp(args[0], args)
"""


@pytest.fixture
def provision(tmp_path):
    """Run the script as a user with ``uid``, with or without a fake sudo;
    returns (CompletedProcess, calls made, chromium path)."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("env", "true"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "apt-get").write_text(FAKE_APT_GET)
    calls = tmp_path / "calls"
    chromium = tmp_path / "chromium"

    def run(*, uid: int, sudo: bool = False, **env):
        (bin_dir / "id").write_text(f"#!/bin/sh\necho {uid}\n")
        if sudo:
            (bin_dir / "sudo").write_text(FAKE_SUDO)
        for fake in bin_dir.iterdir():
            if not fake.is_symlink():
                fake.chmod(0o755)
        result = subprocess.run([BASH, str(ROOT / "scripts" / "provision.sh")], capture_output=True, text=True,
                                timeout=30, env={"PATH": str(bin_dir), "CHROMIUM": str(chromium),
                                                 "CALLS": str(calls), **env})
        return result, calls.read_text().splitlines() if calls.exists() else [], chromium

    return run


def test_present_chromium_needs_nothing(provision, tmp_path):
    (tmp_path / "chromium").write_text("")
    (tmp_path / "chromium").chmod(0o755)
    result, calls, _ = provision(uid=1000)
    assert (result.returncode, result.stdout, result.stderr, calls) == (0, "", "", [])


@pytest.mark.parametrize("sudo_env", [{}, {"SUDO_NEEDS_PASSWORD": "1"}], ids=["no sudo", "sudo asks a password"])
def test_user_who_cannot_install_gets_one_line_naming_the_tool_and_the_command(provision, sudo_env):
    result, calls, chromium = provision(uid=1000, sudo=bool(sudo_env), **sudo_env)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert str(chromium) in lines[0] and "chromium" in lines[0]
    assert f"sudo {INSTALL}" in lines[0]
    assert not any(call.startswith("apt-get") for call in calls)
    assert not chromium.exists()


def test_root_installs_chromium_with_apt_get(provision):
    result, calls, chromium = provision(uid=0)
    assert result.returncode == 0, result.stderr
    assert calls == ["apt-get update DEBIAN_FRONTEND=noninteractive",
                     f"{INSTALL} DEBIAN_FRONTEND=noninteractive"]
    assert os.access(chromium, os.X_OK)


def test_user_with_passwordless_sudo_installs_through_sudo(provision):
    result, calls, chromium = provision(uid=1000, sudo=True)
    assert result.returncode == 0, result.stderr
    assert calls == ["sudo -n true",
                     "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update",
                     "apt-get update DEBIAN_FRONTEND=noninteractive",
                     f"sudo -n env DEBIAN_FRONTEND=noninteractive {INSTALL}",
                     f"{INSTALL} DEBIAN_FRONTEND=noninteractive"]
    assert os.access(chromium, os.X_OK)


def test_failed_install_fails_make_test_with_the_command_to_run(provision):
    result, _, chromium = provision(uid=0, APT_FAILS="1")
    assert result.returncode != 0
    assert "apt-get could not install it" in result.stderr.splitlines()[-1]
    assert not chromium.exists()
