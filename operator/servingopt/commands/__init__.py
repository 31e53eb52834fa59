"""Every ``servingopt`` subcommand: its flags, its input files, its output, its exit code.

A command module is the thin shell around the package that does the work
(``optimize``, ``simulate``, ``controller``, ``devcluster``, ``api``): it parses the
flags, reads the files they name (an error names the flag), calls that package,
prints the result and returns an exit code from :mod:`.exits`.  Each one has
``add_parser(subparsers, help)``, which registers the subcommand and sets ``func``.

:data:`COMMANDS` is the one list of them, in ``servingopt --help`` order.
:mod:`servingopt.cli` imports only the module of the command being run, so this
package imports nothing at all: ``servingopt --help`` and ``servingopt plan`` do not
pay for the Kubernetes client and kopf that ``servingopt run`` needs.
"""

from __future__ import annotations

from typing import NamedTuple


class Command(NamedTuple):
    name: str
    module: str  # provides add_parser(subparsers, help)
    help: str  # the line in `servingopt --help`


COMMANDS: tuple[Command, ...] = (
    Command(
        "run", "servingopt.commands.run", "run the operator (kopf) against the current cluster"
    ),
    Command("plan", "servingopt.commands.plan", "decide the cheapest configuration offline"),
    Command(
        "recommend",
        "servingopt.commands.recommend",
        "the patch a ModelServing in mode Recommend would get, to commit (GitOps)",
    ),
    Command("simulate", "servingopt.commands.simulate", "replay a traffic trace against policies"),
    Command("bench", "servingopt.commands.bench", "run the ServingBench suite"),
    Command("crds", "servingopt.commands.crds", "write (or --check) the generated CRDs"),
    Command(
        "validate",
        "servingopt.commands.validate",
        "check ModelServing/ServingPolicy/InstanceCatalog files",
    ),
    Command(
        "adapter-config",
        "servingopt.commands.adapter_config",
        "prometheus-adapter rules for the metrics servingopt's HPAs scale on",
    ),
    Command("demo", "servingopt.commands.demo", "closed-loop demo on an embedded local cluster"),
    Command(
        "dev-cluster",
        "servingopt.commands.dev_cluster",
        "a real local Kubernetes control plane with fake GPU/CPU node pools",
    ),
)
