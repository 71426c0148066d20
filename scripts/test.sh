#!/usr/bin/env bash
# Runs every A-Confi test on a fresh Debian machine with Rust and Node:
# installs what the tests need (Debian's Chromium, Firefox ESR, Xvfb,
# PulseAudio with a null sink for Firefox's Web Audio, Redis for the
# cluster directory, GStreamer, nginx
# with RTMP, ffmpeg; npm packages), builds, runs the Rust
# tests (core simulation, server over loopback, the streaming worker against
# a real ingest, bad input and hostile clients, a short fuzzing pass,
# protocol spec), a 30 s churn soak, builds and installs the Debian package
# (cargo-deb, installed with cargo if missing), type-checks the web client,
# and drives real Chromium and Firefox in the same meetings.
# Ends with one summary line: "summary: N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log_dir="$root/test-artifacts"
mkdir -p "$log_dir"

# Each step says when it starts (seconds into the run): where a slow CI
# machine spends its time.
step() { printf '\n==> %s (at %ds)\n' "$*" "$SECONDS"; }
die() { printf '\nsummary: 0 passed, 1 failed (%s)\n' "$*"; exit 1; }

step "system packages"
# Browsers and a display for them; GStreamer for the live-streaming worker
# (its build: pkg-config and the -dev packages; its run: the plugins, -x for
# the name overlays, glib-networking for RTMPS; its tests send with
# gst-launch-1.0 from -tools); a real RTMP ingest (nginx with the rtmp and
# stream modules) and ffmpeg to read what it receives; tc (iproute2) and
# nft (nftables) for the weak and lossy links of the network tests; dpkg-dev
# (the package's library dependencies), systemd (systemd-analyze), curl and
# util-linux (setpriv) for the package test; pebble, a real ACME CA (with
# its test DNS server), for the certificate tests, and certutil
# (libnss3-tools) to make Chromium trust only its root.
packages=(chromium chromium-driver firefox-esr xvfb iproute2 nftables fonts-dejavu-core
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-x gstreamer1.0-tools glib-networking nginx-light libnginx-mod-rtmp libnginx-mod-stream ffmpeg openssl
  pulseaudio pulseaudio-utils redis-server dpkg-dev systemd curl util-linux pebble libnss3-tools)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || die "apt-get update"
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null \
    || die "installing ${missing[*]}"
fi
chromium --version || die "chromium does not run"
ffprobe -version | head -1 || die "ffprobe does not run"
firefox-esr --version || die "firefox-esr does not run"

step "a network route for Firefox"
# Firefox never uses loopback for WebRTC and gathers ICE candidates only on
# the interface of the default route: a meeting on this machine needs one,
# which every real machine has. A bare CI container may have only `lo`;
# give it a veth pair with an address and a default route then (left in
# place: the machine is the test's own). Without one, only the tests with
# Firefox users fail, saying ICE failed.
if ip -4 route show default | grep -q . && ip -4 -o addr show scope global | grep -q inet; then
  ip -4 route show default | awk '{print "default route via", $5; exit}'
elif ip link add aconfi-test0 type veth peer name aconfi-test1 2>/dev/null \
    && ip addr add 198.18.0.1/24 dev aconfi-test0 \
    && ip link set aconfi-test0 up && ip link set aconfi-test1 up \
    && { ip -4 route show default | grep -q . || ip route add default via 198.18.0.2 dev aconfi-test0; }; then
  echo "added veth aconfi-test0 (198.18.0.1/24) with a default route"
else
  echo "WARNING: no default route and none could be added (needs root and veth): Firefox cannot connect media here"
fi

step "cargo-deb (the Debian package's builder)"
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb@3.8.0 || die "cargo install cargo-deb"

step "npm packages (playwright-core, puppeteer-core, typescript)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci"

step "build"
cargo build --locked --workspace --all-targets || die "cargo build"

passed=0
failed=0
# Adds a runner's counts; a runner that failed without reporting a failed
# test (a crash, a build error, a panicking benchmark) counts as one failure.
add_counts() { # passed failed exit-code
  passed=$((passed + $1)); failed=$((failed + $2))
  if [ "$3" -ne 0 ] && [ "$2" -eq 0 ]; then failed=$((failed + 1)); fi
}

step "lint (cargo fmt --check; cargo clippy, warnings are errors)"
if cargo fmt --all --check && cargo clippy --locked --workspace --all-targets -- -D warnings; then
  add_counts 1 0 0
else
  add_counts 0 1 1
fi

step "Rust tests"
cargo test --locked --workspace --all-targets 2>&1 | tee "$log_dir/cargo-test.log"
rust_rc=${PIPESTATUS[0]}
# "test result: ok. 3 passed; 0 failed; ..." per test binary
rp=$(grep -E '^test result:' "$log_dir/cargo-test.log" | grep -Eo '[0-9]+ passed' | awk '{s+=$1} END {print s+0}')
rf=$(grep -E '^test result:' "$log_dir/cargo-test.log" | grep -Eo '[0-9]+ failed' | awk '{s+=$1} END {print s+0}')
add_counts "$rp" "$rf" "$rust_rc"

step "churn soak, 30 s (scripts/soak.sh: joins, leaves, vanishing clients, garbage datagrams)"
if bash scripts/soak.sh 30 20 2>&1 | tee "$log_dir/soak.log" && grep -q '^soak: ok' "$log_dir/soak.log"; then
  add_counts 1 0 0
else
  add_counts 0 1 1
fi

step "Debian package (tests/package/deb.sh: build, dpkg -i, systemd-analyze, run as the unit would)"
if bash tests/package/deb.sh 2>&1 | tee "$log_dir/deb.log" && grep -q '^deb: ok' "$log_dir/deb.log"; then
  add_counts 1 0 0
else
  add_counts 0 1 1
fi

step "web client unit tests (node --test tests/js: SFrame vectors and interop, key exchange)"
node --test --test-reporter=tap tests/js/ 2>&1 | tee "$log_dir/js-test.log"
js_rc=${PIPESTATUS[0]}
jp=$(grep -E '^# pass ' "$log_dir/js-test.log" | awk '{print $3}')
jf=$(grep -E '^# fail ' "$log_dir/js-test.log" | awk '{print $3}')
add_counts "${jp:-0}" "${jf:-0}" "$js_rc"

step "web client type check (tsc --checkJs)"
if (cd tests/browser && npx tsc -p ../../web/jsconfig.json); then add_counts 1 0 0; else add_counts 0 1 1; fi

step "browser tests (Chromium via playwright-core, Firefox ESR via puppeteer-core)"
# A sound server with only a null sink, in a directory of its own:
# headless Firefox runs Web Audio (the page's "you are muted" meter) only
# when it can open an audio output.
pa_dir=$(mktemp -d)
chmod 700 "$pa_dir"
export XDG_RUNTIME_DIR="$pa_dir"
pulseaudio --daemonize=yes --exit-idle-time=-1 -n --load=module-native-protocol-unix \
  --load="module-null-sink sink_name=nowhere" 2>/dev/null \
  || echo "warning: no sound server: Firefox's Web Audio tests will fail"
# The timeout bounds each test and each file as a whole (a hang ends in
# 10 min); the slowest file takes ~3 min here and twice that on a slow CI.
(cd tests/browser && node --test --test-concurrency=1 --test-timeout=600000 --test-reporter=tap *.test.mjs) 2>&1 | tee "$log_dir/browser-test.log"
node_rc=${PIPESTATUS[0]}
pulseaudio --kill 2>/dev/null
rm -rf "$pa_dir"
np=$(grep -E '^# pass ' "$log_dir/browser-test.log" | awk '{print $3}')
nf=$(grep -E '^# fail ' "$log_dir/browser-test.log" | awk '{print $3}')
add_counts "${np:-0}" "${nf:-0}" "$node_rc"

printf '\nall steps took %d min %d s\n' $((SECONDS / 60)) $((SECONDS % 60))
printf 'summary: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
