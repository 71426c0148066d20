#!/usr/bin/env bash
# The churn soak: a real aconfi server, and aconfi-load's `churn` scenario
# against it — ROOMS rooms where every second someone joins, leaves, or
# vanishes without a word, plus garbage datagrams on the media port — for
# SECONDS. Then it checks what a soak is for:
#   - the server never panicked and is still running;
#   - media flowed: it forwarded well more datagrams than people joined;
#   - every room, participant and connection is gone (read from /metrics);
#   - its memory does not grow with the meetings held: the churn runs in
#     two equal rounds, and after the second (everything freed again) it
#     is within a little of where the first left it (what the allocator
#     keeps for reuse stays; a leak would have grown by as much again).
#
# usage: scripts/soak.sh [SECONDS] [ROOMS]     (defaults: 600 s, 20 rooms)
#   PROFILE=release uses release builds (default: debug, as the test
#   command builds). Prints one line "soak: ..." and exits non-zero on a
#   failed check. The server's log goes to test-artifacts/soak-server.log.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-600}
rooms=${2:-20}
profile=${PROFILE:-debug}
bin="${CARGO_TARGET_DIR:-target}/$profile"
mkdir -p test-artifacts
log=test-artifacts/soak-server.log

# The same targets as the test command's build (features unify alike, so
# after it this builds nothing); SOAK_NO_BUILD=1 skips it.
if [ "${SOAK_NO_BUILD:-}" != 1 ]; then
  if [ "$profile" = release ]; then
    cargo build -q --release --workspace --bins
  else
    cargo build -q --locked --workspace --all-targets
  fi
fi

free_port() { # a TCP port nobody listens on
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
https=$(free_port)
media=$(free_port)
metrics=$(free_port)

ACONFI_LOG=info "$bin/aconfi" --listen "127.0.0.1:$https" --media-port "$media" --media-bind 127.0.0.1 \
  --metrics-listen "127.0.0.1:$metrics" >"$log" 2>&1 &
server=$!
trap 'kill "$server" 2>/dev/null || true' EXIT

scrape() { # the value of one metric, or nothing
  { exec 3<>"/dev/tcp/127.0.0.1/$metrics" && printf 'GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3 && cat <&3; } 2>/dev/null \
    | awk -v m="$1" '$1 == m { print $2 }'
}
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$server/status"; }

for _ in $(seq 1 100); do
  [ -n "$(scrape aconfi_rooms)" ] && break
  kill -0 "$server" 2>/dev/null || { cat "$log"; echo "soak: FAILED, the server did not start"; exit 1; }
  sleep 0.1
done
rss_start=$(rss_kib)

fail() { echo "soak: FAILED, $*"; exit 1; }
# Every field the report must have, or the soak failed (not "0").
field() { # name file
  local v
  v=$(sed -n "s/.*\"$1\": \([0-9]*\).*/\1/p" "$2")
  [ -n "$v" ] || fail "the churn report $2 has no $1"
  echo "$v"
}

# Until every room, participant and connection is freed. A vanished
# client's sockets close at once (its process is gone), so this is quick.
wait_freed() {
  for _ in $(seq 1 300); do
    if [ "$(scrape aconfi_rooms)" = 0 ] && [ "$(scrape aconfi_participants)" = 0 ] && [ "$(scrape aconfi_connections)" = 0 ]; then
      return 0
    fi
    sleep 0.1
  done
  fail "still in use after the churn: rooms $(scrape aconfi_rooms), participants $(scrape aconfi_participants), connections $(scrape aconfi_connections)"
}

half=$(( (seconds + 1) / 2 ))
joins=0; leaves=0; vanished=0; errors=0; garbage=0; peak=0
for round in 1 2; do
  report=test-artifacts/soak-report-$round.json
  "$bin/aconfi-load" --scenario churn --rooms "$rooms" --seconds "$half" --video-kbps 200 \
    --url "wss://localhost:$https/ws" --server-pid "$server" --garbage-to "127.0.0.1:$media" >"$report" \
    || fail "the churn's load generator failed (round $round)"
  kill -0 "$server" 2>/dev/null || fail "the server died (see $log)"
  wait_freed
  joins=$((joins + $(field joins "$report")))
  leaves=$((leaves + $(field leaves "$report")))
  vanished=$((vanished + $(field vanished "$report")))
  errors=$((errors + $(field errors "$report")))
  garbage=$((garbage + $(field garbage_datagrams "$report")))
  p=$(field rss_kib_peak "$report"); [ "$p" -gt "$peak" ] && peak=$p
  [ "$round" = 1 ] && rss_round1=$(rss_kib)
done
rss_end=$(rss_kib)
if grep -qi "panick" "$log"; then fail "the server panicked (see $log)"; fi

sent=$(scrape aconfi_media_datagrams_sent_total)
[ -n "$sent" ] || fail "no aconfi_media_datagrams_sent_total in /metrics"
summary="$seconds s in two rounds, $rooms rooms: $joins joins, $leaves leaves, $vanished vanished, $errors ended by error, $garbage garbage datagrams, $sent datagrams forwarded; rooms all freed; RSS $((rss_start / 1024)) MiB at start, $((peak / 1024)) MiB peak, $((rss_round1 / 1024)) MiB after round 1, $((rss_end / 1024)) MiB after round 2"
[ "$joins" -gt 0 ] || fail "nobody joined: $summary"
[ "$sent" -ge $((joins * 20)) ] || fail "too little media was forwarded: $summary"
[ "$errors" -eq 0 ] || fail "participants ended by error: $summary"
# A second round of as many meetings costs no more than 10 % (at least
# 2 MiB) on top of the first.
limit=$((rss_round1 + (rss_round1 / 10 > 2048 ? rss_round1 / 10 : 2048)))
[ "$rss_end" -le "$limit" ] || fail "memory grew with the meetings held: $summary"
echo "soak: ok, $summary"
