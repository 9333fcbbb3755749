"""scripts/provision.sh, which `make test` runs first: it installs Debian's
chromium and prometheus (for promtool) as root or through passwordless sudo,
in one apt-get call and only what is missing, and otherwise fails at once
with one line. Run against fake `id`, `sudo`, `apt-get` and `systemctl` on a
PATH of their own, so no test here installs anything or depends on this
machine."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BASH = shutil.which("bash")
INSTALL = "apt-get install -y --no-install-recommends"
BOTH = f"{INSTALL} chromium prometheus"

# Each records its call in $CALLS; the fake apt-get "installs" $CHROMIUM
# and $PROMTOOL for the packages named.
FAKE_APT_GET = f"""#!{sys.executable}
import os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(f"apt-get {{' '.join(sys.argv[1:])}} DEBIAN_FRONTEND={{os.environ.get('DEBIAN_FRONTEND')}}\\n")
if sys.argv[1] == "install":
    if os.environ.get("APT_FAILS"):
        sys.exit(100)
    for package, path in (("chromium", os.environ["CHROMIUM"]), ("prometheus", os.environ["PROMTOOL"])):
        if package in sys.argv:
            open(path, "w").close()
            os.chmod(path, 0o755)
"""
FAKE_SYSTEMCTL = f"""#!{sys.executable}
import os, sys
with open(os.environ["CALLS"], "a") as calls:
    calls.write(f"systemctl {{' '.join(sys.argv[1:])}}\\n")
sys.exit(1 if os.environ.get("SYSTEMCTL_FAILS") else 0)
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
    returns (CompletedProcess, calls made, chromium path). promtool is at
    tmp_path/promtool, systemd's runtime directory at tmp_path/systemd."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("env", "true"):
        (bin_dir / tool).symlink_to(shutil.which(tool))
    (bin_dir / "apt-get").write_text(FAKE_APT_GET)
    (bin_dir / "systemctl").write_text(FAKE_SYSTEMCTL)
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
                                                 "PROMTOOL": str(tmp_path / "promtool"),
                                                 "SYSTEMD_RUNTIME_DIR": str(tmp_path / "systemd"),
                                                 "CALLS": str(calls), **env})
        return result, calls.read_text().splitlines() if calls.exists() else [], chromium

    return run


def _present(path):
    path.write_text("")
    path.chmod(0o755)


def test_present_tools_need_nothing(provision, tmp_path):
    _present(tmp_path / "chromium")
    _present(tmp_path / "promtool")
    result, calls, _ = provision(uid=1000)
    assert (result.returncode, result.stdout, result.stderr, calls) == (0, "", "", [])


@pytest.mark.parametrize("sudo_env", [{}, {"SUDO_NEEDS_PASSWORD": "1"}], ids=["no sudo", "sudo asks a password"])
def test_user_who_cannot_install_gets_one_line_naming_the_tools_and_the_command(provision, tmp_path, sudo_env):
    result, calls, chromium = provision(uid=1000, sudo=bool(sudo_env), **sudo_env)
    assert result.returncode != 0
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert f"{chromium} (Debian's chromium" in lines[0]
    assert f"{tmp_path / 'promtool'} (Debian's prometheus" in lines[0]
    assert "are missing" in lines[0]
    assert f"sudo apt-get update && sudo {BOTH}'" in lines[0]
    assert not any(call.startswith("apt-get") for call in calls)
    assert not chromium.exists()


@pytest.mark.parametrize(("present", "package", "path"), [("chromium", "prometheus", "promtool"),
                                                          ("promtool", "chromium", "chromium")])
def test_only_the_missing_tool_is_named_and_installed(provision, tmp_path, present, package, path):
    _present(tmp_path / present)
    refused, _, _ = provision(uid=1000)
    assert f"{tmp_path / path} (Debian's {package}" in refused.stderr and "is missing" in refused.stderr
    assert f"sudo {INSTALL} {package}'" in refused.stderr
    assert f"Debian's {'chromium' if package == 'prometheus' else 'prometheus'}" not in refused.stderr

    result, calls, _ = provision(uid=0)
    assert result.returncode == 0, result.stderr
    assert calls == ["apt-get update DEBIAN_FRONTEND=noninteractive",
                     f"{INSTALL} {package} DEBIAN_FRONTEND=noninteractive"]
    assert os.access(tmp_path / path, os.X_OK)


def test_root_installs_both_in_one_apt_get_call(provision, tmp_path):
    result, calls, chromium = provision(uid=0)
    assert result.returncode == 0, result.stderr
    assert calls == ["apt-get update DEBIAN_FRONTEND=noninteractive",
                     f"{BOTH} DEBIAN_FRONTEND=noninteractive"]
    assert os.access(chromium, os.X_OK) and os.access(tmp_path / "promtool", os.X_OK)


def test_user_with_passwordless_sudo_installs_through_sudo(provision, tmp_path):
    result, calls, chromium = provision(uid=1000, sudo=True)
    assert result.returncode == 0, result.stderr
    assert calls == ["sudo -n true",
                     "sudo -n env DEBIAN_FRONTEND=noninteractive apt-get update",
                     "apt-get update DEBIAN_FRONTEND=noninteractive",
                     f"sudo -n env DEBIAN_FRONTEND=noninteractive {BOTH}",
                     f"{BOTH} DEBIAN_FRONTEND=noninteractive"]
    assert os.access(chromium, os.X_OK) and os.access(tmp_path / "promtool", os.X_OK)


def test_failed_install_fails_make_test_with_the_command_to_run(provision, tmp_path):
    result, _, chromium = provision(uid=0, APT_FAILS="1")
    assert result.returncode != 0
    last = result.stderr.splitlines()[-1]
    assert "apt-get could not install them" in last and f"sudo {BOTH}'" in last
    assert not chromium.exists() and not (tmp_path / "promtool").exists()


# Under systemd the package's postinst enables and starts a Prometheus
# server; the tests want only promtool, so the script stops it again.
def test_under_systemd_the_prometheus_service_it_installed_is_disabled(provision, tmp_path):
    (tmp_path / "systemd").mkdir()
    result, calls, _ = provision(uid=1000, sudo=True)
    assert result.returncode == 0, result.stderr
    assert calls[-2:] == ["sudo -n systemctl disable --now prometheus.service",
                          "systemctl disable --now prometheus.service"]


def test_under_systemd_a_prometheus_already_there_is_left_alone(provision, tmp_path):
    (tmp_path / "systemd").mkdir()
    _present(tmp_path / "promtool")
    result, calls, _ = provision(uid=0)
    assert result.returncode == 0, result.stderr
    assert not any(call.startswith("systemctl") for call in calls)


def test_a_service_that_cannot_be_disabled_fails_with_what_to_run(provision, tmp_path):
    (tmp_path / "systemd").mkdir()
    result, _, _ = provision(uid=0, SYSTEMCTL_FAILS="1")
    assert result.returncode != 0
    assert "'systemctl disable --now prometheus.service' failed" in result.stderr.splitlines()[-1]
