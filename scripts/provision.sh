#!/usr/bin/env bash
# `make test` runs this before anything else. The suite needs two tools from
# Debian and fails (never skips) without them: Chromium at /usr/bin/chromium
# for the browser tests, and promtool (Debian's prometheus package) for the
# alert rules' tests. A fresh machine has only Python 3.11 and make. So, the
# way `playwright install --with-deps` does it: install what is missing with
# one apt-get call as root, or through sudo when sudo needs no password;
# otherwise stop at once with one line that names what is missing and the
# command that installs it.
#
# The prometheus package also ships a Prometheus server and its service
# (about 330 MB installed, two thirds of it libjs-moment-timezone for its
# web UI; a 22 MB download). In a container its postinst does not start it
# (invoke-rc.d is denied by policy-rc.d, or finds no init); under systemd it
# enables and starts it, so when this script installed it there, it
# disables and stops it again: `make test` leaves no server running. (A
# sysvinit host would run it too: `service prometheus stop` there.)
#
# CHROMIUM, PROMTOOL and SYSTEMD_RUNTIME_DIR override the paths checked
# (tests point them at files of their own).
set -euo pipefail

chromium=${CHROMIUM:-/usr/bin/chromium}
promtool=${PROMTOOL:-/usr/bin/promtool}
systemd_runtime=${SYSTEMD_RUNTIME_DIR:-/run/systemd/system}

packages=() missing=()
if [ ! -x "$chromium" ]; then
  packages+=(chromium)
  missing+=("$chromium (Debian's chromium, for the browser tests)")
fi
if [ ! -x "$promtool" ]; then
  packages+=(prometheus)
  missing+=("$promtool (Debian's prometheus, for the alert rules' tests)")
fi
[ ${#packages[@]} = 0 ] && exit 0

install_cmd="apt-get install -y --no-install-recommends ${packages[*]}"
if [ ${#missing[@]} = 1 ]; then
  what="${missing[0]} is missing" it=it
else
  what="${missing[0]} and ${missing[1]} are missing" it=them
fi
fail() {
  echo "make test: $what and $1;" \
    "install with 'sudo apt-get update && sudo $install_cmd', then run make test again" >&2
  exit 1
}

command -v apt-get >/dev/null || fail "there is no apt-get here to install $it"
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  fail "this user cannot install $it (not root, and sudo asks for a password or is absent)"
fi

echo "make test: installing ${packages[*]} from Debian for the tests: ${as_root[*]:+${as_root[*]} }$install_cmd" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update || fail "apt-get update failed"
# shellcheck disable=SC2086 # install_cmd is split into words on purpose
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive $install_cmd || fail "apt-get could not install $it"
[ -x "$chromium" ] || fail "installing Debian's chromium did not create $chromium"
[ -x "$promtool" ] || fail "installing Debian's prometheus did not create $promtool"

if [[ " ${packages[*]} " == *" prometheus "* ]] && [ -d "$systemd_runtime" ]; then
  echo "make test: the tests need only promtool: stopping and disabling the prometheus service the package started" >&2
  "${as_root[@]}" systemctl disable --now prometheus.service || {
    echo "make test: installed prometheus, but 'systemctl disable --now prometheus.service' failed;" \
      "run it yourself, or a Prometheus server stays running on port 9090" >&2
    exit 1
  }
fi
