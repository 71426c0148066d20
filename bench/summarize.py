#!/usr/bin/env python3
"""Summarises a bench/run.sh result folder as Markdown tables."""
import json
import statistics
import sys
from collections import defaultdict
from pathlib import Path

LOSS_MAX = 0.5      # percent
P99_MAX_US = 10_000  # added latency


def load(folder):
    runs = defaultdict(list)
    for f in sorted(Path(folder).glob("*.json")):
        r = json.loads(f.read_text())
        runs[(r["scenario"], r["participants"], r["target"])].append(r)
    return runs


def med(rs, key, sub=None):
    vals = [r[key][sub] if sub else r[key] for r in rs if not r.get("failed") and r.get(key) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, nd=1):
    return "–" if v is None else f"{v:.{nd}f}"


def main(folder):
    runs = load(folder)
    print("| scenario | N | server | rounds ok | fwd pkt/s | loss % | latency p50 / p99 / p99.9 ms | join p50 / p95 ms | join after both p50 / p95 ms | server CPU % | CPU µs/pkt | RSS MiB | KiB/subscriber |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (sc, n, t), rs in sorted(runs.items()):
        ok = [r for r in rs if not r.get("failed")]
        fwd = med(ok, "forwarded_packets")
        win = med(ok, "window_s")
        lat = [med(ok, "latency_us", k) for k in ("p50", "p99", "p999")]
        join = [med(ok, "join_ms", k) for k in ("p50", "p95")]
        # From the later of the receiver's and the publisher's opening
        # (results from before that figure existed have none).
        both = [med(ok, "join_after_both_ms", k) for k in ("p50", "p95")]
        rss = med(ok, "rss_kib")
        print(f"| {sc} | {n} | {t} | {len(ok)}/{len(rs)} | {fmt(fwd / win if fwd and win else None, 0)} | "
              f"{fmt(med(ok, 'loss_percent'), 2)} | {' / '.join(fmt(x / 1000 if x else None, 2) for x in lat)} | "
              f"{' / '.join(fmt(x, 0) for x in join)} | {' / '.join(fmt(x, 0) for x in both)} | "
              f"{fmt(med(ok, 'cpu_percent'))} | "
              f"{fmt(med(ok, 'cpu_us_per_packet'), 2)} | {fmt(rss / 1024 if rss else None)} | "
              f"{fmt(med(ok, 'rss_kib_per_subscriber'), 0)} |")

    print()
    print("CPU per forwarded packet, A-Confi / Janus at the same load:")
    print()
    for (sc, n, t), rs in sorted(runs.items()):
        if t != "aconfi":
            continue
        a = med(rs, "cpu_us_per_packet")
        j = med(runs.get((sc, n, "janus"), []), "cpu_us_per_packet")
        if a and j:
            print(f"- {sc} N={n}: {a:.2f} µs vs {j:.2f} µs → {a / j:.2f}×")

    layers = [(k, rs) for k, rs in sorted(runs.items()) if any(r.get("video_layer_frames") for r in rs)]
    if layers:
        print()
        print("Simulcast layer of the video frames received in the window, all rounds (q / h / f):")
        print()
        for (sc, n, t), rs in layers:
            sums = [sum(r["video_layer_frames"][i] for r in rs if r.get("video_layer_frames")) for i in range(3)]
            top = f"{sums[2] * 100 / sum(sums):.1f} % top" if sum(sums) else "no frames"
            print(f"- {sc} N={n} {t}: {sums[0]} / {sums[1]} / {sums[2]} ({top})")

    print()
    print(f"Largest fan-out with every round under {LOSS_MAX}% loss and p99 latency under {P99_MAX_US / 1000:.0f} ms:")
    print()
    for t in ("aconfi", "janus"):
        best = None
        for (sc, n, tt), rs in sorted(runs.items()):
            if sc != "fanout" or tt != t:
                continue
            good = all(not r.get("failed") and r["loss_percent"] < LOSS_MAX and r["latency_us"]["p99"] < P99_MAX_US for r in rs)
            if good:
                best = n
        print(f"- {t}: {best if best else 'none of the sizes tried'}")


if __name__ == "__main__":
    main(sys.argv[1])
