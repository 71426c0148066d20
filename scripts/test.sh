#!/usr/bin/env bash
# Runs every A-Confi test on a fresh Debian machine with Rust and Node:
# installs what the tests need (Debian's Chromium, Firefox ESR, Xvfb,
# PulseAudio with a null sink for Firefox's Web Audio, Redis for the
# cluster directory, GStreamer, nginx with RTMP, ffmpeg, pebble, bubblewrap,
# mold; cargo-deb and cargo-nextest; npm packages), builds once, then runs
# three lanes at once:
#   - Rust: every Rust test (cargo nextest, test binaries in parallel),
#     the lint (fmt, and the build's clippy warnings), a 30 s churn soak
#     (at a lower priority), the Debian package, the web client's unit
#     tests and type check;
#   - browsers, meetings: the signaling and UI files, in two lanes;
# and then one alone:
#   - browsers, media: the files that measure media quality (loss,
#     bandwidth, layers, TCP, streaming …), one at a time.
# Prints each step's and each browser file's time, checks that the run left
# the git tree as it found it, and ends with one summary line:
# "summary: N passed, M failed". docs/testing.md describes every test.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
log_dir="$root/test-artifacts"
mkdir -p "$log_dir"
start=$SECONDS

# Each step says when it starts (seconds into the run); the end lists how
# long each took.
times="$log_dir/step-times.txt"
: >"$times"
step() { printf '\n==> %s (at %ds)\n' "$*" "$((SECONDS - start))"; }
die() { printf '\nsummary: 0 passed, 1 failed (%s)\n' "$*"; exit 1; }
# timed NAME CMD...: runs CMD, appends "NAME seconds exit" to $times.
timed() {
  local name=$1 t0=$SECONDS rc
  shift
  "$@"
  rc=$?
  printf '%s\t%d\t%d\n' "$name" "$((SECONDS - t0))" "$rc" >>"$times"
  return "$rc"
}

step "system packages"
# Browsers and a display for them; GStreamer for the live-streaming worker
# (its build: pkg-config and the -dev packages; its run: the plugins, -x for
# the name overlays, glib-networking for RTMPS; its tests send with
# gst-launch-1.0 from -tools); a real RTMP ingest (nginx with the rtmp and
# stream modules) and ffmpeg to read what it receives; tc (iproute2) and
# nft (nftables) for the weak and lossy links of the network tests; dpkg-dev
# (the package's library dependencies), systemd (systemd-analyze), curl,
# util-linux (setpriv) and bubblewrap (the unit's sandbox where systemd does
# not run) for the package test; pebble, a real ACME CA (with its test DNS
# server), for the certificate tests, and certutil (libnss3-tools) to make
# Chromium trust only its root; mold, a faster linker for the test build.
packages=(chromium chromium-driver firefox-esr xvfb iproute2 nftables fonts-dejavu-core
  pkg-config libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-plugins-base
  gstreamer1.0-plugins-good gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly gstreamer1.0-libav
  gstreamer1.0-x gstreamer1.0-tools glib-networking nginx-light libnginx-mod-rtmp libnginx-mod-stream ffmpeg openssl
  pulseaudio pulseaudio-utils redis-server dpkg-dev systemd curl util-linux bubblewrap pebble libnss3-tools mold)
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

step "cargo-deb and cargo-nextest"
command -v cargo-deb >/dev/null || cargo install --locked cargo-deb@3.8.0 || die "cargo install cargo-deb"
command -v cargo-nextest >/dev/null || cargo install --locked cargo-nextest || die "cargo install cargo-nextest"

step "npm packages (playwright-core, puppeteer-core, ws, typescript, axe-core)"
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error) || die "npm ci"

step "build (every target, once: every later step uses it)"
# mold links the ~40 test binaries several times faster than ld; where it
# is missing the default linker does the same job.
if command -v mold >/dev/null; then export RUSTFLAGS="${RUSTFLAGS:-} -C link-arg=-fuse-ld=mold"; fi
# Clippy lints our crates as they compile: clippy-driver is rustc with the
# lints added, so as the workspace's wrapper it builds every target and
# reports every clippy and rustc warning on the way. A separate
# `cargo clippy` checked every dependency a second time (136 CPU-seconds
# here, on a machine whose two cores the tests keep busy). A warning fails
# the lint check, not the build: the tests still run. Every later cargo
# call inherits the same wrapper and builds nothing (nextest, cargo-deb and
# the soak checked: no unit compiled).
clippy_driver=$(rustup which clippy-driver 2>/dev/null || command -v clippy-driver) \
  || die "clippy-driver is missing (rustup component add clippy)"
export RUSTC_WORKSPACE_WRAPPER=$clippy_driver
timed build cargo build --locked --workspace --all-targets 2>&1 | tee "$log_dir/build.log"
[ "${PIPESTATUS[0]}" -eq 0 ] || die "cargo build"
export SOAK_NO_BUILD=1
# nextest's filter for the streaming worker's integration tests (the
# `encoders` group of .config/nextest.toml).
export ENCODER_TESTS='package(aconfi-stream) & kind(test)'

# nextest_result NAME LOG RC: prints "NAME passed failed" from nextest's
# summary line ("Summary [ 60.1s] 312 tests run: 311 passed, 1 failed, 0
# skipped"); a failing run with no such line, or no test run, counts as a
# failure. The names of failing tests and the end of their output go to
# stderr, so that a CI log shows them.
nextest_result() {
  local name=$1 log=$2 rc=$3 line p f
  line=$(grep -E 'tests? run:' "$log" | tail -1)
  p=$(grep -Eo '[0-9]+ passed' <<<"$line" | grep -Eo '[0-9]+' || echo 0)
  f=$(grep -Eo '[0-9]+ failed' <<<"$line" | grep -Eo '[0-9]+' || echo 0)
  [ "$rc" -ne 0 ] && [ "${f:-0}" -eq 0 ] && f=1
  [ "${p:-0}" -gt 0 ] || f=$((${f:-0} + 1))
  echo "$name ${p:-0} ${f:-0}"
  if [ "${f:-0}" -gt 0 ]; then
    {
      echo "  $name failed:"
      grep -E '^\s+(FAIL|TIMEOUT|SIG[A-Z]+|LEAK)\b' "$log" | sort -u | sed 's/^/  /'
      echo "  (the end of $log:)"
      tail -n 60 "$log" | sed 's/^/  | /'
    } >&2
  fi
}

# ---- the lanes ----

# The Rust lane: one result line per check in $1 ("name passed failed").
rust_lane() {
  local out=$1
  : >"$out"
  # The Rust tests mostly wait (on servers and timeouts: about 60
  # CPU-seconds in 150 s) but judge time, so they run at the browsers'
  # priority. The lint is the build's warnings (clippy ran in it, above)
  # and `cargo fmt --check`.
  # (The streaming worker's encoder tests judge real time, like the media
  # lane, and run with it, alone: $ENCODER_TESTS.)
  timed rust-tests cargo nextest run --locked --workspace --all-targets --no-fail-fast --failure-output final \
    -E "not ($ENCODER_TESTS)" \
    >"$log_dir/rust-test.log" 2>&1 &
  local tests_pid=$! rp rf
  if timed lint bash -c '! grep -E "^(warning|error)(\[|:)" "$0" && cargo fmt --all --check' "$log_dir/build.log" \
      >"$log_dir/lint.log" 2>&1; then
    echo "lint 1 0" >>"$out"
  else
    echo "lint 0 1" >>"$out"
    sed 's/^/  lint: /' "$log_dir/lint.log" | head -40 >&2
  fi
  wait "$tests_pid"
  local rc=$?
  nextest_result rust-tests "$log_dir/rust-test.log" "$rc" >>"$out"
  if timed soak nice -n 10 bash scripts/soak.sh 30 20 >"$log_dir/soak.log" 2>&1 && grep -q '^soak: ok' "$log_dir/soak.log"; then
    echo "soak 1 0" >>"$out"
  else
    echo "soak 0 1" >>"$out"
  fi
  if timed deb bash tests/package/deb.sh >"$log_dir/deb.log" 2>&1 && grep -q '^deb: ok' "$log_dir/deb.log"; then
    echo "deb 1 0" >>"$out"
  else
    echo "deb 0 1" >>"$out"
  fi
  timed js-tests node --test --test-reporter=tap tests/js/ >"$log_dir/js-test.log" 2>&1
  rc=$?
  rp=$(grep -E '^# pass ' "$log_dir/js-test.log" | awk '{print $3}')
  rf=$(grep -E '^# fail ' "$log_dir/js-test.log" | awk '{print $3}')
  [ "$rc" -ne 0 ] && [ "${rf:-0}" -eq 0 ] && rf=1
  echo "js-tests ${rp:-0} ${rf:-0}" >>"$out"
  if timed typecheck bash -c 'cd tests/browser && npx tsc -p ../../web/jsconfig.json' >"$log_dir/tsc.log" 2>&1; then
    echo "typecheck 1 0" >>"$out"
  else
    echo "typecheck 0 1" >>"$out"
  fi
}

# A browser lane: runs its files one after another, each its own
# `node --test` (its own browsers), and writes "file passed failed seconds"
# lines to $1.
browser_lane() {
  local out=$1 f base t0 rc bp bf
  shift
  : >"$out"
  for f in "$@"; do
    base=$(basename "$f" .test.mjs)
    t0=$SECONDS
    # The timeout bounds each test and the file as a whole (a hang ends in
    # 10 min; the slowest file takes about a minute here).
    (cd tests/browser && node --test --test-timeout=600000 --test-reporter=tap "$f") >"$log_dir/browser-$base.log" 2>&1
    rc=$?
    bp=$(grep -E '^# pass ' "$log_dir/browser-$base.log" | awk '{print $3}')
    bf=$(grep -E '^# fail ' "$log_dir/browser-$base.log" | awk '{print $3}')
    [ "$rc" -ne 0 ] && [ "${bf:-0}" -eq 0 ] && bf=1
    printf '%s %s %s %s\n' "$f" "${bp:-0}" "${bf:-0}" "$((SECONDS - t0))" >>"$out"
    [ "${bf:-0}" -eq 0 ] || grep -E '^not ok' "$log_dir/browser-$base.log" | sed "s/^/  $base: /"
  done
}

# What measures media quality (rates, layers, loss, timing of keyframes
# and back-offs) runs in its own lane, one file at a time, after the rest;
# the signaling and UI files share two lanes.
media_files=(loss.test.mjs bandwidth.test.mjs simulcast.test.mjs active-speaker.test.mjs ice-tcp.test.mjs
  streaming.test.mjs screen-share.test.mjs media-failure.test.mjs feedback.test.mjs)
meeting_files_a=(e2ee.test.mjs meeting-control.test.mjs cluster.test.mjs a11y.test.mjs layout.test.mjs
  embed.test.mjs acme.test.mjs keyboard.test.mjs)
meeting_files_b=(door.test.mjs meeting.test.mjs screenshots.test.mjs safety-code.test.mjs controls.test.mjs
  private-chat.test.mjs frame-transform.test.mjs autojoin.test.mjs forged-redirect.test.mjs landing.test.mjs)
# Every browser test file is in a lane.
for f in tests/browser/*.test.mjs; do
  name=$(basename "$f")
  [[ " ${media_files[*]} ${meeting_files_a[*]} ${meeting_files_b[*]} " == *" $name "* ]] \
    || die "tests/browser/$name is in no lane of scripts/test.sh"
done

step "the lanes: Rust | browsers, meetings (x2); then browsers, media"
# A sound server with only a null sink, in a directory of its own:
# headless Firefox runs Web Audio (the page's "you are muted" meter) only
# when it can open an audio output.
pa_dir=$(mktemp -d)
chmod 700 "$pa_dir"
export XDG_RUNTIME_DIR="$pa_dir"
pulseaudio --daemonize=yes --exit-idle-time=-1 -n --load=module-native-protocol-unix \
  --load="module-null-sink sink_name=nowhere" 2>/dev/null \
  || echo "warning: no sound server: Firefox's Web Audio tests will fail"
lanes=$(mktemp -d)
lane_t0=$SECONDS
# First the Rust lane and the two meetings lanes at once, then the media
# lane alone, with the cores to itself: what it measures (layers, rates,
# back-offs) is what a starved browser gets wrong.
bash -c "$(declare -f timed nextest_result rust_lane); times=$times log_dir=$log_dir rust_lane $lanes/rust" &
rust_pid=$!
# The meetings lanes' servers ask browsers for a 640×360 camera
# (`--camera-height`, an operator's setting): what these files check —
# signaling, the UI, encryption — is the same at any size, and three lanes
# on two cores leave no CPU for 720p. The media lane keeps the default.
(export ACONFI_CAMERA_HEIGHT=360; browser_lane "$lanes/meetings-a" "${meeting_files_a[@]}") &
a_pid=$!
(export ACONFI_CAMERA_HEIGHT=360; browser_lane "$lanes/meetings-b" "${meeting_files_b[@]}") &
b_pid=$!
wait "$rust_pid" "$a_pid" "$b_pid"
printf 'rust+meetings\t%d\t0\n' "$((SECONDS - lane_t0))" >>"$times"
media_t0=$SECONDS
# The streaming worker's tests encode 720p30 with x264 in real time and
# check its frame rate and keyframe spacing: beside the browsers they
# measure the starving, so they open the media lane.
t0=$SECONDS
cargo nextest run --locked --workspace --all-targets --no-fail-fast --failure-output final -E "$ENCODER_TESTS" \
  >"$log_dir/rust-encoder-test.log" 2>&1
rc=$?
read -r _ ep ef < <(nextest_result rust:encoder-tests "$log_dir/rust-encoder-test.log" "$rc")
printf 'rust:encoder-tests %s %s %s\n' "$ep" "$ef" "$((SECONDS - t0))" >"$lanes/media"
browser_lane "$lanes/media.browsers" "${media_files[@]}"
cat "$lanes/media.browsers" >>"$lanes/media"
printf 'media\t%d\t0\n' "$((SECONDS - media_t0))" >>"$times"
pulseaudio --kill 2>/dev/null
rm -rf "$pa_dir"

passed=0
failed=0
while read -r _ p f; do
  passed=$((passed + p)); failed=$((failed + f))
done <"$lanes/rust"
for lane in media meetings-a meetings-b; do
  while read -r _ p f _; do
    passed=$((passed + p)); failed=$((failed + f))
  done <"$lanes/$lane"
done

step "the git tree as the run found it"
# No build output, no screenshot, no artifact in tracked files: a run
# changes nothing git sees (test-artifacts/ and target/ are ignored).
if [ -n "$(git status --porcelain 2>/dev/null)" ]; then
  git status --short
  echo "the test run left the tree changed"
  failed=$((failed + 1))
else
  echo "clean"
  passed=$((passed + 1))
fi

printf '\nstep times (s, exit):\n'
column -t <"$times"
printf '\nRust lane: passed failed\n'
column -t <"$lanes/rust"
for lane in media meetings-a meetings-b; do
  printf '\nbrowser lane %s: file passed failed seconds\n' "$lane"
  column -t <"$lanes/$lane"
done
rm -rf "$lanes"
printf '\nall steps took %d min %d s\n' $(((SECONDS - start) / 60)) $(((SECONDS - start) % 60))
printf 'summary: %d passed, %d failed\n' "$passed" "$failed"
[ "$failed" -eq 0 ]
