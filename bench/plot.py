#!/usr/bin/env python3
"""Draws the guide's benchmark plots from the tables the bench programs print.

The bench binaries print Markdown tables; save their output under
bench/results/ and run this script (it needs matplotlib):

    cargo run --release -p crucial-bench --bin bench -- --sweep 1,2,4,8,16,32,64 > bench/results/bench.txt
    cargo run --release -p crucial-bench --bin bench-barrier > bench/results/barrier.txt
    cargo run --release -p crucial-bench --bin bench-apps > bench/results/apps.txt
    cargo run --release -p crucial-bench --features lambda --bin bench-spawn > bench/results/spawn.txt
    cargo run --release -p crucial-bench --bin bench-load -- -c 1,8,64,512 -P 1,16 --busy --validate > bench/results/load.txt
    cargo run --release -p crucial-bench --bin bench-cluster > bench/results/cluster.txt
    cargo run --release -p crucial-bench --bin bench-replication > bench/results/replication.txt
    python3 bench/plot.py            # writes guide/src/img/*.svg

Nothing is typed in by hand: every point comes from a saved run.
"""

import pathlib
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
OUT = ROOT / "guide" / "src" / "img"
OURS, PEER, THIRD = "#1f6fb4", "#c0392b", "#27ae60"


def tables(path):
    """Every Markdown table of a saved run: (heading above it, rows as dicts)."""
    found, heading, block = [], "", []
    for line in path.read_text().splitlines() + [""]:
        if line.startswith("|"):
            block.append([c.strip() for c in line.strip().strip("|").split("|")])
            continue
        if block:
            header, rows = block[0], block[2:]
            found.append((heading, [dict(zip(header, r)) for r in rows]))
            block = []
        if line.startswith("#"):
            heading = line.lstrip("# ").strip()
    return found


def table(path, heading_part):
    for heading, rows in tables(path):
        if heading_part in heading:
            return rows
    sys.exit(f"{path}: no table under a heading containing {heading_part!r}")


def number(cell):
    return float(cell.rstrip("x").replace(",", "")) if cell not in ("", "-") else None


def save(fig, name):
    OUT.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(OUT / name, format="svg", metadata={"Date": None})
    plt.close(fig)
    print(f"wrote {OUT / name}")


def latency():
    rows = table(RESULTS / "bench.txt", "Sequential latency")
    ops = [r["operation"].split(" (")[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.4))
    width = 0.2
    for i, (system, color) in enumerate([("crucial", OURS), ("redis", PEER)]):
        for j, (stat, hatch) in enumerate([("p50", None), ("p99", "//")]):
            xs = [k + (2 * i + j - 1.5) * width for k in range(len(ops))]
            ax.bar(xs, [number(r[f"{system} {stat}"]) for r in rows], width,
                   color=color, alpha=1.0 if stat == "p50" else 0.55, hatch=hatch,
                   label=f"{system} {stat}")
    ax.set_xticks(range(len(ops)), ops)
    ax.set_ylabel("latency (µs)")
    ax.set_title("One caller, sequential calls (lower is better)")
    ax.legend(ncol=2, fontsize=8)
    save(fig, "latency.svg")


def sweep():
    rows = table(RESULTS / "bench.txt", "against callers")
    callers = [int(r["callers"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for column, color, style in [("crucial async", OURS, "-o"), ("crucial threads", THIRD, "-s"),
                                 ("redis threads", PEER, "-^")]:
        ax.plot(callers, [number(r[column]) / 1000 for r in rows], style, color=color, label=column)
    ax.set_xscale("log", base=2)
    ax.set_xticks(callers, [str(c) for c in callers])
    ax.set_xlabel("concurrent callers")
    ax.set_ylabel("incr throughput (k ops/s)")
    ax.set_title("Throughput against callers (higher is better)")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8)
    save(fig, "throughput.svg")


def barrier():
    rows = table(RESULTS / "barrier.txt", "barrier round time")
    parties = [int(r["parties"]) for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    ax.plot(parties, [number(r["crucial Barrier (us/round)"]) for r in rows], "-o", color=OURS,
            label="Crucial Barrier (parked on the node)")
    ax.plot(parties, [number(r["redis polling (us/round)"]) for r in rows], "-^", color=PEER,
            label="Redis INCR + GET polling")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(parties, [str(p) for p in parties])
    ax.set_xlabel("parties (one thread each)")
    ax.set_ylabel("time per round (µs)")
    ax.set_title("Barrier round time (lower is better)")
    ax.legend(fontsize=8)
    save(fig, "barrier.svg")


def apps():
    path = RESULTS / "apps.txt"
    groups = []
    for app, heading in [("k-means", "k-means"), ("logreg", "logistic regression")]:
        for r in table(path, heading):
            groups.append((f"{app}\n{r['threads']} thr", number(r["crucial (ms/iteration)"]),
                           number(r["std threads (ms/iteration)"])))
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4))
    for ax, part in zip(axes, [groups[:2], groups[2:]]):
        xs = range(len(part))
        ax.bar([x - 0.2 for x in xs], [g[1] for g in part], 0.4, color=OURS, label="Crucial")
        ax.bar([x + 0.2 for x in xs], [g[2] for g in part], 0.4, color=PEER, label="std threads")
        ax.set_xticks(list(xs), [g[0] for g in part])
        ax.set_ylabel("ms per iteration")
    axes[0].legend(fontsize=8)
    fig.suptitle("Applications against plain threads (lower is better)")
    save(fig, "apps.svg")


def spawn():
    rows = table(RESULTS / "spawn.txt", "spawn + join")
    names = [r["executor"].split(" (")[0] for r in rows]
    fig, ax = plt.subplots(figsize=(6.4, 3.0))
    ys = range(len(rows))
    ax.barh([y - 0.2 for y in ys], [number(r["p50 (us)"]) for r in rows], 0.4, color=OURS, label="p50")
    ax.barh([y + 0.2 for y in ys], [number(r["p99 (us)"]) for r in rows], 0.4, color=OURS, alpha=0.5,
            label="p99")
    ax.set_yticks(list(ys), names)
    ax.invert_yaxis()
    ax.set_xlabel("spawn + join of an empty cloud thread (µs)")
    ax.set_title("Spawn overhead per executor (lower is better)")
    ax.legend(fontsize=8)
    save(fig, "spawn.svg")


def load():
    rows = table(RESULTS / "load.txt", "bench-load")
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4), sharey=True)
    for ax, condition in zip(axes, ["idle", "busy"]):
        for p, style in [("1", "-o"), ("16", "--s")]:
            sel = [r for r in rows if r["condition"] == condition and r["-P"] == p]
            if not sel:
                continue
            cs = [int(r["-c"]) for r in sel]
            ax.plot(cs, [number(r["crucial ops/s"]) / 1000 for r in sel], style, color=OURS,
                    label=f"Crucial -P {p}")
            ax.plot(cs, [number(r["redis ops/s"]) / 1000 for r in sel], style, color=PEER,
                    label=f"Redis -P {p}")
            ax.set_xscale("log", base=2)
            ax.set_xticks(cs, [str(c) for c in cs])
        ax.set_title(f"machine {condition}" if condition == "idle" else "one core busy")
        ax.set_xlabel("connections (-c)")
    axes[0].set_ylabel("incr (k ops/s)")
    axes[0].legend(fontsize=7)
    fig.suptitle("bench-load: the node against Redis, same generator (higher is better)")
    save(fig, "load.svg")


def cluster():
    rows = table(RESULTS / "cluster.txt", "bank mix")
    nodes = [int(r["nodes"]) for r in rows]
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.2, 3.0))
    left.bar(nodes, [number(r["transfers/s"]) / 1e3 for r in rows], color=OURS)
    left.set_xticks(nodes)
    left.set_xlabel("nodes (one 2-core machine)")
    left.set_ylabel("k transfers/s")
    left.set_title("Bank mix throughput", fontsize=9)
    width = 0.38
    right.bar([n - width / 2 for n in nodes], [number(r["node CPU us/call"]) for r in rows],
              width, color=OURS, label="nodes")
    right.bar([n + width / 2 for n in nodes], [number(r["client CPU us/call"]) for r in rows],
              width, color=PEER, alpha=0.7, label="clients")
    right.set_xticks(nodes)
    right.set_xlabel("nodes")
    right.set_ylabel("CPU µs per call")
    right.set_title("CPU per call (what scales on real machines)", fontsize=9)
    right.legend(fontsize=7)
    fig.suptitle("bench-cluster run 1: nodes share the machine's two cores")
    save(fig, "cluster.svg")


def replication():
    rows = table(RESULTS / "replication.txt", "replication: 3 nodes")
    short = {
        "crucial, 3 nodes, --replicas 1 (memory)": "rf 1",
        "crucial, 3 nodes, --replicas 2 (memory)": "rf 2",
        "crucial, 3 nodes, --replicas 3 (memory)": "rf 3",
        "crucial, 3 nodes, --replicas 2, --durability sync": "rf 2\n+ fsync",
        "redis + 1 replica, WAIT 1 0": "redis\nWAIT 1",
        "redis + 1 replica, no WAIT": "redis\nno WAIT",
    }
    names = [short.get(r["system"], r["system"]) for r in rows]
    colors = [PEER if r["system"].startswith("redis") else OURS for r in rows]
    xs = range(len(rows))
    fig, (left, right) = plt.subplots(1, 2, figsize=(7.6, 3.2))
    width = 0.4
    left.bar([x - width / 2 for x in xs], [number(r["incr p50 us"]) for r in rows], width,
             color=colors, label="p50")
    left.bar([x + width / 2 for x in xs], [number(r["incr p99 us"]) for r in rows], width,
             color=colors, alpha=0.5, hatch="//", label="p99")
    left.set_xticks(list(xs), names, fontsize=7)
    left.set_ylabel("µs")
    left.set_title("incr, one caller (lower is better)", fontsize=9)
    left.legend(fontsize=7)
    right.bar(list(xs), [number(r["incr ops/s, 64 callers"]) / 1e3 for r in rows], color=colors)
    right.set_xticks(list(xs), names, fontsize=7)
    right.set_ylabel("k ops/s")
    right.set_title("incr, 64 callers (higher is better)", fontsize=9)
    fig.suptitle("bench-replication: 3 nodes and Redis + replica on one 2-core machine")
    save(fig, "replication.svg")


if __name__ == "__main__":
    plt.rcParams.update({"svg.hashsalt": "crucial", "font.size": 9})
    plots = (latency, sweep, barrier, apps, spawn, load, cluster, replication)
    only = sys.argv[1:]
    for plot in plots:
        if not only or plot.__name__ in only:
            plot()
