#!/usr/bin/env bash
# `make test` runs this before anything else. The browser tests drive
# Debian's Chromium at /usr/bin/chromium and fail (never skip) without it,
# and a fresh machine has only Python 3.11 and make. So, the way
# `playwright install --with-deps` does it: install Debian's chromium with
# apt-get as root, or through sudo when sudo needs no password; otherwise
# stop at once with one line that names what is missing and the command
# that installs it.
#
# CHROMIUM overrides the path checked (tests point it at a missing file).
set -euo pipefail

chromium=${CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] && exit 0

install_cmd="apt-get install -y --no-install-recommends chromium"
fail() {
  echo "make test: $chromium (Debian's chromium, for the browser tests) is missing and $1;" \
    "install it with 'sudo apt-get update && sudo $install_cmd', then run make test again" >&2
  exit 1
}

command -v apt-get >/dev/null || fail "there is no apt-get here to install it"
if [ "$(id -u)" = 0 ]; then
  as_root=()
elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
  as_root=(sudo -n)
else
  fail "this user cannot install it (not root, and sudo asks for a password or is absent)"
fi

echo "make test: installing Debian's chromium for the browser tests: ${as_root[*]:+${as_root[*]} }$install_cmd" >&2
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update || fail "apt-get update failed"
# shellcheck disable=SC2086 # install_cmd is split into words on purpose
"${as_root[@]}" env DEBIAN_FRONTEND=noninteractive $install_cmd || fail "apt-get could not install it"
[ -x "$chromium" ] || fail "installing Debian's chromium did not create it"
