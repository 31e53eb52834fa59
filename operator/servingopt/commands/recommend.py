"""``servingopt recommend``: the patch servingopt recommends for a ModelServing in mode
Recommend (``status.recommendedPatch``), as YAML or as a kustomize component to commit."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from .exits import EXIT_INVALID_INPUT, EXIT_OK
from .helptext import examples

EXAMPLES = (
    "kubectl get modelserving resnet50-classifier -o yaml \\",
    "  | servingopt recommend -f - -o kustomize --dir overlays/prod/servingopt",
    "# then in overlays/prod/kustomization.yaml:  components: [servingopt]",
    "kubectl get ms resnet50-classifier -o yaml | servingopt recommend -f -   # YAML",
)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser], help: str) -> None:
    p = sub.add_parser(
        "recommend",
        help=help,
        description="Write out what servingopt would apply to a ModelServing's workload "
        "in mode Auto, from the status it wrote in mode Recommend: the Deployment's "
        "servingopt fields as a patch and the autoscaler (for a spot mix also the "
        "CapacityMix and the spot copy).",
        **examples(*EXAMPLES),
    )
    p.add_argument(
        "-f", "--file", type=Path, required=True, help="the ModelServing as the API serves it"
    )
    p.add_argument(
        "-o",
        "--output",
        choices=("yaml", "kustomize"),
        default="yaml",
        help="yaml: the documents on stdout; kustomize: a kustomize Component in --dir",
    )
    p.add_argument("--dir", type=Path, help="directory the kustomize component is written to")
    p.set_defaults(func=cmd_recommend)


def cmd_recommend(args: argparse.Namespace) -> int:
    import yaml

    from servingopt.api.yamlio import InputError, load_documents

    try:
        if args.output == "kustomize" and args.dir is None:
            raise ValueError("-o kustomize needs --dir DIRECTORY")
        docs = [d for d in load_documents(args.file) if isinstance(d, dict)]
        ms = next((d for d in docs if d.get("kind") == "ModelServing"), None)
        if ms is None:
            raise ValueError(f"{args.file}: no ModelServing in it")
        objects = recommended(ms)
    except (InputError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return EXIT_INVALID_INPUT
    if args.output == "yaml":
        sys.stdout.write(yaml.safe_dump_all(objects, sort_keys=False))
        return EXIT_OK
    for name, content in kustomize_component(objects).items():
        path = args.dir / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(content, sort_keys=False))
        print(f"wrote {path}")
    return EXIT_OK


def recommended(ms: dict[str, Any]) -> list[dict[str, Any]]:
    """The objects of a ModelServing's ``status.recommendedPatch``."""
    import yaml

    name = (ms.get("metadata") or {}).get("name", "?")
    status = ms.get("status") or {}
    text = status.get("recommendedPatch")
    if not text:
        mode = status.get("mode") or "not reported yet"
        raise ValueError(
            f"ModelServing {name} has no status.recommendedPatch (mode: {mode}); servingopt "
            "writes one in mode Recommend once it has planned"
        )
    objects = [d for d in yaml.safe_load_all(text) if isinstance(d, dict)]
    if not objects or objects[0].get("kind") != "Deployment":
        raise ValueError(f"ModelServing {name}: status.recommendedPatch holds no Deployment patch")
    return objects


def kustomize_component(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """File name -> content of a kustomize Component: the Deployment patch (matched by
    name, so it applies whatever namespace the overlay sets) and the other objects as
    resources."""
    patch, *resources = objects
    patch = {**patch, "metadata": {"name": patch["metadata"]["name"]}}
    files: dict[str, Any] = {"deployment-patch.yaml": patch}
    for obj in resources:
        kind = str(obj["kind"]).lower()
        files[f"{kind}-{obj['metadata']['name']}.yaml"] = obj
    files["kustomization.yaml"] = {
        "apiVersion": "kustomize.config.k8s.io/v1alpha1",
        "kind": "Component",
        "resources": [f for f in files if f != "deployment-patch.yaml"],
        "patches": [{"path": "deployment-patch.yaml"}],
    }
    return files
