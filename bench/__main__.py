"""python -m bench all | converge1 | converge3 | heal | nodeloss | scheduler | control | mesh | overlay | failover
    [--runs N] [--small]

Sets up what it needs (a lab named `bench`, a swarmpy cluster on it, Docker Swarm
on the same engines), runs each figure several times alternating swarmpy and its
reference, prints the table, writes it to bench/RESULTS.md (for `all`), and takes
everything down again. `--small` runs each figure once at a tiny size (the test
suite's smoke test)."""

from __future__ import annotations

import argparse
import sys
import time

from bench import control, converge, failover, heal, mesh, overlay, scheduler
from bench.common import BenchError, Figure, table, write_results
from bench.env import environment

FIGURES = ["converge1", "converge3", "heal", "nodeloss", "scheduler", "control", "mesh", "overlay", "failover"]


def run(names: list[str], runs: int, small: bool) -> list[Figure]:
    if "mesh" in names or "overlay" in names:
        mesh.prepare()
    if "overlay" in names:
        overlay.prepare()
    figures: list[Figure] = []
    images = ((mesh.NGINX,) if "mesh" in names or "overlay" in names else ()) + (
        (overlay.WRK,) if "overlay" in names else ())
    with environment(images=images) as env:
        for name in names:
            started = time.perf_counter()
            print(f"bench: {name} ...", file=sys.stderr, flush=True)
            if name == "converge1":
                figures += converge.one_node(env, runs, replicas=5 if small else 50)
            elif name == "converge3":
                figures += converge.three_nodes(env, runs, replicas=6 if small else 60)
            elif name == "heal":
                figures += heal.self_heal(env, runs, replicas=3 if small else 6)
            elif name == "nodeloss":
                figures += heal.node_loss(env, runs, replicas=6 if small else 30)
            elif name == "scheduler":
                figures += scheduler.figures(runs, sizes=(100, 1000) if small else (100, 1000, 5000),
                                             tasks=1000 if small else 10000)
            elif name == "control":
                figures += control.figures(env, calls=10 if small else 200, services=20 if small else 1000,
                                           deploy_calls=10 if small else 1000)
            elif name == "mesh":
                figures += mesh.run(env, runs, duration=2 if small else 8,
                                    concurrency=(8,) if small else mesh.CONCURRENCY)
            elif name == "overlay":
                figures += overlay.run(env, runs, duration=2 if small else 8)
            elif name == "failover":
                figures += failover.run(env, runs)
            print(f"bench: {name} done in {time.perf_counter() - started:.0f} s", file=sys.stderr, flush=True)
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("figures", nargs="+", choices=["all"] + FIGURES)
    parser.add_argument("--runs", type=int, default=3, help="runs of each figure (default 3)")
    parser.add_argument("--small", action="store_true", help="each figure once, at a tiny size")
    parser.add_argument("--no-write", action="store_true", help="do not write bench/RESULTS.md")
    args = parser.parse_args(argv)
    names = FIGURES if "all" in args.figures else args.figures
    runs = 1 if args.small else args.runs
    started = time.perf_counter()
    try:
        figures = run(names, runs, args.small)
    except BenchError as e:
        print(f"bench: stopped: {e}", file=sys.stderr)
        return 1
    print(table(figures))
    for f in figures:  # what RESULTS.md would say under the table
        if f.note:
            print(f"- **{f.name}**: {f.note}")
    took = time.perf_counter() - started
    print(f"\n{len(figures)} figures in {took / 60:.1f} minutes", file=sys.stderr)
    if "all" in args.figures and not args.small and not args.no_write:
        write_results(figures, [f"The whole run took {took / 60:.1f} minutes."])
    return 0


if __name__ == "__main__":
    sys.exit(main())
