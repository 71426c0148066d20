#!/usr/bin/env bash
# The churn soak: a real aconfi server, and aconfi-load's `churn` scenario
# against it — ROOMS rooms where every second someone joins, leaves, or
# vanishes without a word, plus garbage datagrams on the media port — for
# SECONDS. Then it checks what a soak is for:
#   - the server never panicked and is still running;
#   - every room, participant and connection is gone (read from /metrics);
#   - its memory came back near where it started.
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

if [ "$profile" = release ]; then
  cargo build -q --release --bin aconfi --bin aconfi-load
else
  cargo build -q --bin aconfi --bin aconfi-load
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

report=test-artifacts/soak-report.json
"$bin/aconfi-load" --scenario churn --rooms "$rooms" --seconds "$seconds" --video-kbps 200 \
  --url "wss://localhost:$https/ws" --server-pid "$server" --garbage-to "127.0.0.1:$media" >"$report"

fail() { echo "soak: FAILED, $*"; exit 1; }
kill -0 "$server" 2>/dev/null || fail "the server died (see $log)"
if grep -qi "panick" "$log"; then fail "the server panicked (see $log)"; fi

# Everyone has left or vanished: every room is freed. A vanished client's
# sockets close at once (its process is gone), so this is quick.
freed=
for _ in $(seq 1 300); do
  if [ "$(scrape aconfi_rooms)" = 0 ] && [ "$(scrape aconfi_participants)" = 0 ] && [ "$(scrape aconfi_connections)" = 0 ]; then
    freed=yes
    break
  fi
  sleep 0.1
done
[ -n "$freed" ] || fail "still in use after the churn: rooms $(scrape aconfi_rooms), participants $(scrape aconfi_participants), connections $(scrape aconfi_connections)"

rss_end=$(rss_kib)
peak=$(sed -n 's/.*"rss_kib_peak": \([0-9]*\).*/\1/p' "$report")
joins=$(sed -n 's/.*"joins": \([0-9]*\).*/\1/p' "$report")
leaves=$(sed -n 's/.*"leaves": \([0-9]*\).*/\1/p' "$report")
vanished=$(sed -n 's/.*"vanished": \([0-9]*\).*/\1/p' "$report")
errors=$(sed -n 's/.*"errors": \([0-9]*\).*/\1/p' "$report")
garbage=$(sed -n 's/.*"garbage_datagrams": \([0-9]*\).*/\1/p' "$report")
# "Back near the start": freed memory the allocator keeps for reuse is
# allowed; growth with the number of meetings held is not.
limit=$((rss_start * 3 / 2 + 16384))
summary="$seconds s, $rooms rooms: $joins joins, $leaves leaves, $vanished vanished, $errors ended by error, $garbage garbage datagrams; rooms all freed; RSS $((rss_start / 1024)) MiB at start, ${peak:+$((peak / 1024)) MiB peak, }$((rss_end / 1024)) MiB after"
[ "$rss_end" -le "$limit" ] || fail "memory did not come back: $summary"
[ "${errors:-0}" -eq 0 ] || fail "participants ended by error: $summary"
echo "soak: ok, $summary"
