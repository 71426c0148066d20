#!/usr/bin/env bash
# CPU and memory of the streaming worker with 2 and 4 participants.
#
# usage: crates/aconfi-stream/bench.sh [SECONDS] [PARTICIPANTS...]
#   defaults: 20 seconds of measurement, 2 and 4 participants
#
# Builds the release worker, starts the local ingest (tests/ingest/nginx.sh),
# and for each participant count runs one worker publishing to it, fed by
# that many gst-launch-1.0 senders (640x480 30 fps VP8 + Opus each, like a
# browser's camera). After the worker is live and has settled, it reads the
# worker's utime+stime from /proc/<pid>/stat over SECONDS and prints the
# fraction of one core it used, and its RSS (now and peak). The senders and
# nginx are not counted. Needs what the ingest tests need (nginx-light,
# libnginx-mod-rtmp, libnginx-mod-stream, openssl, gstreamer1.0-tools).
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds=${1:-20}
shift || true
counts=("$@")
[ ${#counts[@]} -gt 0 ] || counts=(2 4)

cargo build --release -q -p aconfi-stream
bin="${CARGO_TARGET_DIR:-target}/release/aconfi-stream"

work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

# A port nobody listens on (TCP connect refused); good enough for UDP too.
free_port() {
  local p
  while :; do
    p=$((20000 + RANDOM % 40000))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
}
rtmp=$(free_port)
rtmps=$(free_port)
bash tests/ingest/nginx.sh "$work/ingest" "$rtmp" "$rtmps" >"$work/nginx.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$rtmp") 2>/dev/null && break; sleep 0.1; done

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf '%-13s %-10s %-9s %s\n' participants cpu_cores rss_MB peak_rss_MB
for n in "${counts[@]}"; do
  peer=$(free_port)
  key="bench$RANDOM$RANDOM"
  mkfifo "$work/in.$n"
  "$bin" <"$work/in.$n" >"$work/out.$n" 2>"$work/err.$n" &
  worker=$!
  pids+=($worker)
  exec 4>"$work/in.$n"
  printf '{"cmd":"start","url":"rtmp://127.0.0.1:%s/live/%s","connect":"127.0.0.1:%s","peer":"127.0.0.1:%s"}\n' "$rtmp" "$key" "$rtmp" "$peer" >&4
  for _ in $(seq 200); do grep -q '"ready"' "$work/out.$n" && break; sleep 0.1; done
  port=$(sed -n 's/.*"ready","port":\([0-9]*\).*/\1/p' "$work/out.$n")
  [ -n "$port" ] || { echo "worker did not get ready: $(cat "$work/err.$n")" >&2; exit 1; }

  list=""
  for i in $(seq "$n"); do
    v=$((i * 2 - 1)) a=$((i * 2))
    list+="${list:+,}{\"ssrc\":$v,\"person\":$i,\"name\":\"Person $i\",\"kind\":\"camera\",\"codec\":\"VP8\",\"pt\":96,\"clock_rate\":90000}"
    list+=",{\"ssrc\":$a,\"person\":$i,\"name\":\"Person $i\",\"kind\":\"audio\",\"codec\":\"opus\",\"pt\":111,\"clock_rate\":48000}"
  done
  printf '{"cmd":"sources","sources":[%s]}\n' "$list" >&4
  senders=()
  for i in $(seq "$n"); do
    v=$((i * 2 - 1)) a=$((i * 2))
    sink="udpsink host=127.0.0.1 port=$port bind-address=127.0.0.1 bind-port=$peer sync=false"
    # shellcheck disable=SC2086
    gst-launch-1.0 -q videotestsrc is-live=true pattern=ball ! video/x-raw,width=640,height=480,framerate=30/1 \
      ! vp8enc deadline=1 keyframe-max-dist=60 ! rtpvp8pay pt=96 ssrc=$v ! $sink \
      audiotestsrc is-live=true wave=sine ! opusenc ! rtpopuspay pt=111 ssrc=$a ! $sink >/dev/null 2>&1 &
    senders+=($!)
    pids+=($!)
  done
  for _ in $(seq 300); do grep -q '"live"' "$work/out.$n" && break; sleep 0.1; done
  grep -q '"live"' "$work/out.$n" || { echo "worker did not go live with $n participants" >&2; exit 1; }
  sleep 5 # settle: decoders and encoder at steady state

  t0=$(cpu_ticks "$worker")
  s0=$(date +%s.%N)
  sleep "$seconds"
  t1=$(cpu_ticks "$worker")
  s1=$(date +%s.%N)
  rss=$(awk '/VmRSS/ {print $2}' "/proc/$worker/status")
  hwm=$(awk '/VmHWM/ {print $2}' "/proc/$worker/status")
  awk -v n="$n" -v t="$((t1 - t0))" -v clk="$clk" -v s0="$s0" -v s1="$s1" -v rss="$rss" -v hwm="$hwm" \
    'BEGIN { printf "%-13d %-10.2f %-9.0f %.0f\n", n, t / clk / (s1 - s0), rss / 1024, hwm / 1024 }'

  echo '{"cmd":"stop"}' >&4
  exec 4>&-
  wait "$worker" || true
  for p in "${senders[@]}"; do kill "$p" 2>/dev/null || true; done
done
