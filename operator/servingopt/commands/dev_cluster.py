"""``servingopt dev-cluster up|down|env|status``: the local real control plane.

The cluster itself is :class:`servingopt.devcluster.cluster.DevCluster`; this module
reads the flags, keeps a foreground cluster up until a signal and prints its
exports and status.  ``python -m servingopt.devcluster`` is the same command.
"""

from __future__ import annotations

import argparse
import json
import shlex
import signal
import sys
import threading
from pathlib import Path

from servingopt.devcluster.cluster import ClusterError, DevCluster, state_root

from .exits import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK
from .helptext import examples


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    parser = sub.add_parser(
        "dev-cluster",
        **examples(
            "servingopt dev-cluster up -d --prometheus --adapter",
            'eval "$(servingopt dev-cluster env)"; kubectl get nodes',
            "servingopt dev-cluster status",
            "servingopt dev-cluster down",
        ),
        help=help,
        description="Start, inspect and stop the local dev cluster (no Docker needed).",
    )
    sub = parser.add_subparsers(dest="dev_cluster_command", required=True)
    up = sub.add_parser("up", help="start a cluster (foreground unless --detach)")
    up.add_argument("--detach", "-d", action="store_true", help="start and return")
    up.add_argument("--prometheus", action="store_true", help="also start Prometheus")
    up.add_argument(
        "--adapter",
        action="store_true",
        help="also start prometheus-adapter as the custom metrics API (implies --prometheus), "
        "with `servingopt adapter-config`'s rules",
    )
    up.add_argument(
        "--keda",
        action="store_true",
        help="also start KEDA (its operator and metrics API server, built from its Go module) "
        "as the external metrics API",
    )
    up.add_argument(
        "--twin",
        type=Path,
        metavar="MODELSERVING",
        help="also start the traffic twin (implies --prometheus): it plays the data plane of "
        "the Deployment this ModelServing file targets, with its declared profiles, so kwok "
        "pods have live metrics",
    )
    up.add_argument("--twin-namespace", default="default", help="namespace of that Deployment")
    up.add_argument(
        "--twin-demand", default="", help="demand, a trace generator (default: steady:mean=800)"
    )
    up.add_argument("--pools", type=Path, help="node pools YAML (default: the shipped one)")
    up.add_argument("--nodes-per-pool", type=int, help="nodes per pool and capacity type")
    up.add_argument("--bin-dir", type=Path, help="control-plane binaries (default: build)")
    down = sub.add_parser("down", help="stop a cluster and delete its state")
    down.add_argument("--keep", action="store_true", help="keep the state dir (logs)")
    env = sub.add_parser("env", help="print shell exports for a running cluster")
    status = sub.add_parser("status", help="components, pids, memory")
    status.add_argument("-o", "--output", choices=["json", "table"], default="table")
    for p in (up, down, env, status):
        p.add_argument("--name", default="default", help="cluster name (default: default)")
        p.add_argument(
            "--state-root",
            type=Path,
            default=None,
            help=f"where cluster state dirs live (default: {state_root()})",
        )
    parser.set_defaults(func=cmd_dev_cluster)


def cmd_dev_cluster(args: argparse.Namespace) -> int:
    handlers = {"up": _up, "down": _down, "env": _env, "status": _status}
    try:
        return handlers[args.dev_cluster_command](args)
    except (ClusterError, FileNotFoundError, TimeoutError) as e:
        print(f"dev-cluster: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED


def _root(args: argparse.Namespace) -> Path:
    return args.state_root or state_root()


def _up(args: argparse.Namespace) -> int:
    cluster = DevCluster(
        name=args.name,
        root=_root(args),
        bin_dir=args.bin_dir,
        pools_file=args.pools,
        nodes_per_pool=args.nodes_per_pool,
        detach=args.detach,
    )
    cluster.up(with_prometheus=args.prometheus or args.adapter or bool(args.twin))
    if args.adapter:
        cluster.start_adapter()
    if args.twin:
        cluster.start_twin(args.twin, args.twin_namespace, args.twin_demand)
    if args.keda:
        cluster.start_keda()
    if args.detach:
        _print_env(cluster)
        print(f"# stop with: servingopt dev-cluster down --name {args.name}", file=sys.stderr)
        return EXIT_OK
    try:
        _print_env(cluster)
        print("# running in the foreground; Ctrl-C stops it", file=sys.stderr, flush=True)
        _wait_for_signal()
    except KeyboardInterrupt:
        pass  # Ctrl-C is the normal way to stop a foreground cluster
    finally:
        cluster.down()
    return EXIT_OK


def _wait_for_signal() -> None:
    stopped = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, lambda *_: stopped.set())
    while not stopped.wait(1.0):
        pass


def _down(args: argparse.Namespace) -> int:
    cluster = DevCluster.load(args.name, _root(args))
    cluster.down(remove=not args.keep)
    print(f"cluster {args.name!r} stopped", file=sys.stderr)
    return EXIT_OK


def _env(args: argparse.Namespace) -> int:
    _print_env(DevCluster.load(args.name, _root(args)))
    return EXIT_OK


def _print_env(cluster: DevCluster) -> None:
    """KUBECONFIG (and the Prometheus URL), and PATH with the project's kubectl (the
    version the cluster runs) and this servingopt in front."""
    for key, value in cluster.env().items():
        print(f"export {key}={shlex.quote(value)}")
    dirs = [str(cluster.binaries.bin_dir)]
    here = Path(sys.executable).parent
    if (here / "servingopt").exists():
        dirs.append(str(here))
    print(f'export PATH={shlex.quote(":".join(dirs))}:"$PATH"')


def _status(args: argparse.Namespace) -> int:
    info = DevCluster.load(args.name, _root(args)).status()
    if args.output == "json":
        print(json.dumps(info, indent=2))
        return EXIT_OK
    print(f"cluster {info['name']}  server {info['server']}  started in {info['startupSeconds']} s")
    print(f"kubeconfig {info['kubeconfig']}")
    if info["prometheus"]:
        print(f"prometheus {info['prometheus']}")
    print(f"{'COMPONENT':<26}{'PID':>8}  {'ALIVE':<6}{'RSS MiB':>9}{'PEAK MiB':>10}")
    for name, c in info["components"].items():
        print(
            f"{name:<26}{c['pid']:>8}  {'yes' if c['alive'] else 'NO':<6}"
            f"{c['rssMiB']:>9}{c['peakRssMiB']:>10}"
        )
    print(f"{'total':<42}{info['totalRssMiB']:>9}{info['totalPeakRssMiB']:>10}")
    components = info["components"].values()
    return EXIT_OK if components and all(c["alive"] for c in components) else EXIT_FAILED
