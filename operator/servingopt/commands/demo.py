"""``servingopt demo``: the closed loop on an embedded local cluster, narrated.

What it does and what it checks is :mod:`servingopt.demo` (its docstring is the
command's description); this module runs its steps in order and turns how they end
into an exit code: 0 the loop closed, 1 it did not (or a step failed), 2 the
repository's samples are not found, 130 interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    from servingopt import demo

    p = sub.add_parser(
        "demo",
        **examples("servingopt demo", "servingopt demo --keep --demand 2000", raw=True),
        help=help,
        description=demo.__doc__,
    )
    p.add_argument("--keep", action="store_true", help="leave the cluster running at the end")
    p.add_argument("--name", default="demo", help="dev cluster name (default: demo)")
    p.add_argument("--timeout", type=float, default=240.0, help="seconds for the loop to close")
    p.add_argument("--demand", default="steady:mean=800,noise=0.05", help="twin demand curve")
    p.add_argument("--speedup", type=float, default=1.0, help="demand-curve seconds per second")
    p.add_argument(
        "--truth", default="gpu-t4=1.15", help="ground-truth slowdown per pool or instance type"
    )
    p.add_argument("--replan-seconds", type=int, default=30, help="the demo policy's re-plan")
    p.add_argument("--bin-dir", type=Path, help="control-plane binaries (default: build/cache)")
    p.add_argument("--root", type=Path, help="repository root (samples/, crds/, deploy/)")
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    from servingopt.demo import Demo, DemoError, Narrator, find_root
    from servingopt.devcluster import ClusterError, KubectlError

    say = Narrator()
    try:
        demo = Demo(args, say, find_root(args.root))
    except DemoError as error:
        print(f"demo: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    ok = False
    try:
        demo.start_cluster()
        demo.install()
        demo.deploy_workload()
        demo.start_twin()
        demo.start_operator()
        demo.wait_for_traffic()
        demo.apply_modelserving()
        say(f"waiting (at most {args.timeout:.0f} s) for the operator to close the loop")
        state, p99 = demo.wait_for_the_loop()
        ok = demo.report(state, p99)
        if not ok:
            print(f"--- operator log (tail) ---\n{demo.operator_tail()}", file=sys.stderr)
    except KeyboardInterrupt:
        say("interrupted")
        return EXIT_INTERRUPTED
    except (DemoError, ClusterError, KubectlError, TimeoutError) as error:
        say(f"demo failed: {error}")
        tail = demo.operator_tail()
        if tail:
            print(f"--- operator log (tail) ---\n{tail}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        demo.stop()
    say(f"done in {say.elapsed:.0f} s")
    return EXIT_OK if ok else EXIT_FAILED
