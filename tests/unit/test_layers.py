"""The package's dependency direction, read from the source with ``ast``.

controller -> kube, metrics, loop -> guard, optimize -> model -> values/api. Value types
every layer passes sit on the ground floor (``values/``) next to ``api/``, so ``kube/``
never imports ``guard/`` and ``metrics/`` never imports ``optimize/``; the pure layers
import no Kubernetes client, no kopf and no HTTP.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "servingopt"

# What each layer may import of servingopt (besides itself). Layers not named here
# (commands/, devcluster/, demo, cli) sit on top and may import anything.
ALLOWED: dict[str, set[str]] = {
    "api": set(),
    "values": {"api"},
    "model": {"values", "api"},
    "optimize": {"model", "values", "api"},
    "guard": {"values", "api"},
    "loop": {"guard", "optimize", "model", "values", "api"},
    "simulate": {"loop", "guard", "optimize", "model", "values", "api"},
    "kube": {"values", "api"},
    "metrics": {"values", "api"},
    "controller": {"kube", "metrics", "loop", "guard", "optimize", "model", "values", "api"},
}
PURE = ("api", "values", "model", "optimize", "guard", "loop", "simulate")
NOT_IN_PURE = ("kopf", "kubernetes", "aiohttp", "servingopt.kube", "servingopt.metrics")


def imports(path: Path) -> list[tuple[int, str]]:
    """Absolute module names ``path`` imports (relative ones resolved), with line numbers."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    if path.name == "__init__.py":
        module = package
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                name = ".".join([*base, node.module] if node.module else base)
            else:
                name = node.module or ""
            found.append((node.lineno, name))
    return found


def layer_files(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(ALLOWED))
def test_each_layer_imports_only_the_layers_below_it(layer: str) -> None:
    wrong = []
    for path in layer_files(layer):
        for line, name in imports(path):
            parts = name.split(".")
            if parts[0] != "servingopt" or len(parts) < 2 or parts[1] == layer:
                continue
            if parts[1] not in ALLOWED[layer]:
                wrong.append(f"{path.relative_to(PACKAGE)}:{line} imports {name}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("layer", PURE)
def test_pure_layers_import_no_kubernetes_kopf_or_http(layer: str) -> None:
    wrong = [
        f"{path.relative_to(PACKAGE)}:{line} imports {name}"
        for path in layer_files(layer)
        for line, name in imports(path)
        if any(name == banned or name.startswith(banned + ".") for banned in NOT_IN_PURE)
    ]
    assert not wrong, "\n".join(wrong)


def test_the_checker_sees_relative_and_absolute_imports() -> None:
    """The checker itself: it must notice what it is meant to forbid."""
    found = {name for _, name in imports(PACKAGE / "guard" / "core.py")}
    assert "servingopt.guard.types" in found  # from .types import ...
    assert "servingopt.values" in found
    kube = {name for _, name in imports(PACKAGE / "kube" / "manifests.py")}
    assert "kubernetes.utils.quantity" in kube
