#!/usr/bin/env bash
# A long fuzzing pass over the three places a stranger's bytes enter the
# core (crates/aconfi-core/tests/fuzz.rs): the signaling parser and room
# logic, the SDP offer path, and the UDP demux during a meeting. Runs on
# the stable toolchain (proptest; cargo-fuzz needs nightly). A finding is
# shrunk, printed, and kept in crates/aconfi-core/tests/proptest-regressions/
# so every later run (the test command's short pass too) replays it.
#
# usage: scripts/fuzz.sh [CASES] [UDP_CASES]
#   defaults: 20000 cases for signaling and SDP, 1000 meetings for UDP
set -euo pipefail
cd "$(dirname "$0")/.."
cases=${1:-20000}
udp=${2:-1000}
run() { # test-name cases
  local start=$SECONDS
  local out
  if ! out=$(ACONFI_FUZZ_CASES=$2 cargo test --release -q -p aconfi-core --test fuzz -- --exact "$1" 2>&1); then
    printf '%s\n' "$out"
    echo "$1: FINDING (shrunk input above; kept in crates/aconfi-core/tests/proptest-regressions/)"
    exit 1
  fi
  echo "$1: $2 cases, no finding, $((SECONDS - start)) s"
}
cargo test --release -q -p aconfi-core --test fuzz --no-run
run signaling "$cases"
run sdp_offers "$cases"
run udp_demux "$udp"
