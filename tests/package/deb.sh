#!/usr/bin/env bash
# The Debian package, end to end: build it with cargo-deb from the binaries
# already built (target/debug: the test's build; a release is built by
# `cargo deb -p aconfi-server`), install it with dpkg, have systemd check its
# unit, and run the service as the unit would — under systemd where it runs,
# else the unit's ExecStart as an unprivileged user with its settings file —
# and fetch the landing page. Removes the package at the end.
#
#   tests/package/deb.sh          (as root; needs cargo-deb, dpkg, systemd)
#
# Prints `deb: ok` last when everything held, and the unit's
# `systemd-analyze security` exposure score.
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
out=$(mktemp -d)
pid=""
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  dpkg --purge aconfi >/dev/null 2>&1 || true
  rm -rf "$out"
}
trap cleanup EXIT
fail() { echo "deb: FAIL: $*" >&2; exit 1; }

command -v cargo-deb >/dev/null || fail "cargo-deb is missing (cargo install --locked cargo-deb)"
# The dev profile: the binaries the test run built (cargo-deb warns that it
# is meant for releases; the package's contents are the same but for speed).
# Its warnings about that are dropped from the output; its exit status is kept.
cargo deb -p aconfi-server --no-build --profile dev --fast -o "$out" >"$out/cargo-deb.log" 2>&1 \
  || { cat "$out/cargo-deb.log"; fail "cargo deb failed"; }
grep -v 'dev profile\|debug symbols set\|^ *To enable' "$out/cargo-deb.log" || true
deb=$(ls "$out"/aconfi_*.deb 2>/dev/null | head -1)
[ -n "$deb" ] || fail "no package was made"
echo "built $(basename "$deb") ($(du -h "$deb" | cut -f1))"
dpkg-deb -f "$deb" Depends | grep -q libgstreamer1.0-0 || fail "the worker's libraries are not in Depends"
dpkg-deb -f "$deb" Recommends | grep -q gstreamer1.0-plugins-ugly || fail "the worker's plugins are not recommended"

dpkg -i "$deb" >/dev/null || fail "dpkg -i"
unit=$(dpkg -L aconfi | grep -E '/systemd/system/aconfi\.service$' | head -1)
[ -n "$unit" ] || fail "the package installs no aconfi.service"
[ -x /usr/bin/aconfi ] && [ -x /usr/bin/aconfi-stream ] || fail "binaries missing"
dpkg -L aconfi | grep -qx /etc/default/aconfi || fail "no settings file"
grep -qx /etc/default/aconfi /var/lib/dpkg/info/aconfi.conffiles || fail "the settings file is not a conffile"

# systemd reads the unit without complaint.
systemd-analyze verify "$unit" || fail "systemd-analyze verify"
score=$(systemd-analyze security --offline=true "$unit" 2>/dev/null | grep -Eo 'Overall exposure level for [^:]*: [0-9.]+ [A-Z]+' || true)
echo "security: ${score:-unknown}"
# Exposure 2.0 or less, rated OK (systemd's scale: 0 safe … 10 unsafe).
read -r exposure rating <<<"$(sed -E 's/.*: ([0-9.]+) ([A-Z]+)$/\1 \2/' <<<"$score")"
[ -n "${exposure:-}" ] || fail "systemd-analyze security gave no score"
awk -v e="$exposure" 'BEGIN { exit !(e <= 2.0) }' || fail "the unit's exposure is $exposure, above 2.0"
[ "$rating" = OK ] || fail "the unit is rated $rating, not OK"
for setting in LimitNOFILE=65536 DynamicUser=yes ProtectSystem=strict ProtectHome=yes PrivateTmp=yes NoNewPrivileges=yes \
  CapabilityBoundingSet=CAP_NET_BIND_SERVICE EnvironmentFile=-/etc/default/aconfi; do
  grep -qx "$setting" "$unit" || fail "the unit lacks $setting"
done

version=$(/usr/bin/aconfi --version)
echo "installed: $version"
[[ "$version" == "aconfi $(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -1) (commit "* ]] || fail "--version: $version"

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
if [ -d /run/systemd/system ]; then
  # Under systemd: the unit itself, on a port of the test's choosing.
  mkdir -p /run/systemd/system/aconfi.service.d
  printf '[Service]\nEnvironment=ACONFI_LISTEN=127.0.0.1:%s ACONFI_MEDIA_PORT=0\n' "$port" \
    > /run/systemd/system/aconfi.service.d/test.conf
  systemctl daemon-reload
  systemctl restart aconfi
  how="systemd"
else
  # No systemd here: ExecStart as the unit would run it — an unprivileged
  # user with the settings file, no capabilities, no supplementary groups,
  # no new privileges — inside the unit's sandbox as bubblewrap can apply
  # it: the system read-only (ProtectSystem=strict), empty /home and /root
  # (ProtectHome), a /tmp of its own (PrivateTmp), a minimal /dev
  # (PrivateDevices). A server that tried to write anything would fail.
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  (
    set -a
    # shellcheck disable=SC1091
    . /etc/default/aconfi
    set +a
    cd /
    # The unit's LimitNOFILE as the hard limit where this machine lets us
    # raise it (a container may not: its own hard limit then); the soft one
    # as most systems start a process: the server must raise it itself.
    ulimit -Hn "$(sed -n 's/^LimitNOFILE=//p' "$unit")" 2>/dev/null || true
    ulimit -Sn 1024
    exec bwrap --ro-bind / / --tmpfs /tmp --tmpfs /home --tmpfs /root --dev /dev --proc /proc \
      --unshare-ipc --new-session --die-with-parent -- \
      setpriv --reuid=65534 --regid=65534 --clear-groups --inh-caps=-all --no-new-privs \
      env ACONFI_LISTEN="127.0.0.1:$port" ACONFI_MEDIA_PORT=0 $exec_start
  ) > "$out/service.log" 2>&1 &
  pid=$!
  how="as nobody in bubblewrap's sandbox"
fi
page=""
for _ in $(seq 100); do
  page=$(curl -sk --max-time 2 "https://localhost:$port/" || true)
  [ -n "$page" ] && break
  sleep 0.2
done
grep -q '<title>A-Confi' <<<"$page" || { cat "$out/service.log" 2>/dev/null; fail "no landing page on port $port ($how)"; }
echo "served the landing page ($how)"
# Enough file descriptors for the connection caps: the server raised its
# soft limit (to the unit's LimitNOFILE under systemd, else to the hard
# limit it was started with). The caps' sum is fd_limit::needed's.
if [ -d /run/systemd/system ]; then
  spid=$(systemctl show -p MainPID --value aconfi)
else
  spid=$(pgrep -P "$pid" -x aconfi || echo "$pid")
  # And inside the sandbox it could write nowhere.
  [ "$(stat -c %u "/proc/$spid")" = 65534 ] || fail "the server does not run as nobody"
  grep -q '^NoNewPrivs:[[:space:]]*1' "/proc/$spid/status" || fail "the server may gain privileges"
  grep -q '^CapEff:[[:space:]]*0*$' "/proc/$spid/status" || fail "the server has capabilities"
  awk '$2 == "/" { print $4 }' "/proc/$spid/mounts" | grep -q '^ro' || fail "the server's / is writable"
fi
need=$((10000 + 1024 + 4096 + 512))
soft=$(awk '/^Max open files/ {print $4}' "/proc/$spid/limits")
echo "open files: soft $soft (the caps need $need; hard $(awk '/^Max open files/ {print $5}' "/proc/$spid/limits"))"
[ "$soft" -ge "$need" ] || fail "the running server may open only $soft files, its caps need $need"
if [ -d /run/systemd/system ]; then
  systemctl stop aconfi
  result=$(systemctl show -p Result --value aconfi)
  [ "$result" = success ] || fail "the service did not stop cleanly: $result"
  rm -rf /run/systemd/system/aconfi.service.d
  systemctl daemon-reload
else
  # The server itself (bubblewrap passes no signal on), as systemd would
  # signal it; bubblewrap exits with its status.
  kill -TERM "$spid"
  wait "$pid" || fail "the service did not stop cleanly on SIGTERM"
  pid=""
fi
echo "deb: ok"
