"""Least privilege, proven: every Role and ClusterRole servingopt ships grants exactly
what the operator's code uses, and no wildcard.

What the code uses is derived from the code, not listed by hand:

- servingopt's own requests: every call of its Kubernetes client (``get``, ``list``,
  ``apply``, ``merge_patch``, ``create``, ``delete``) in the package, with the path it
  is given traced back through local variables, loops, parameters (to the callers'
  arguments) and properties to a builder of :mod:`servingopt.kube.paths` or an f-string,
  which is then built with placeholder names and parsed into (group, resource) — the
  way the API server's authorizer sees the request;
- kopf's requests: the handlers servingopt registers with kopf (its registry lists the
  resources each one watches or changes), and kopf's own observers (custom resource
  definitions, and namespaces for ``-n`` globs, from kopf's source).

A grant nothing uses fails the test, as does a use nothing grants.
"""

from __future__ import annotations

import ast
import inspect
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

import servingopt.controller.handlers  # noqa: F401  (registers the kopf handlers)
from servingopt.kube import paths

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "operator/servingopt"
# The dev cluster and the demo run with the developer's own kubeconfig, not the operator's.
NOT_THE_OPERATOR = ("devcluster", "demo.py", "commands")
# Client method -> the verbs the authorizer checks. Server-side apply is a PATCH that
# creates the object when it does not exist, which the API server authorizes as
# `create` too.
CLIENT_VERBS = {
    "get": ("get",),
    "list": ("list",),
    "apply": ("patch", "create"),
    "merge_patch": ("patch",),
    "create": ("create",),
    "delete": ("delete",),
}
HTTP_VERBS = {
    "GET": ("get",),
    "PUT": ("update",),
    "POST": ("create",),
    "PATCH": ("patch",),
    "DELETE": ("delete",),
}
Use = tuple[str, str, str]  # (apiGroup, resource[/subresource], verb)
Function = ast.FunctionDef | ast.AsyncFunctionDef


def own_nodes(func: ast.AST) -> Iterator[ast.AST]:
    """The nodes of a function, not those of the functions defined inside it."""
    stack = list(ast.iter_child_nodes(func))
    while stack:
        node = stack.pop()
        yield node
        if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            stack.extend(ast.iter_child_nodes(node))


def functions(module: ast.AST) -> Iterator[Function]:
    for node in ast.walk(module):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


# Where the operator's client is called, and with which path.


class Package:
    """Every module of the operator, parsed, with its functions and properties by name."""

    def __init__(self) -> None:
        self.modules: dict[Path, ast.Module] = {}
        for path in sorted(PACKAGE.rglob("*.py")):
            rel = path.relative_to(PACKAGE).as_posix()
            if not rel.startswith(NOT_THE_OPERATOR):
                self.modules[path] = ast.parse(path.read_text())
        self.functions: dict[str, list[ast.FunctionDef | ast.AsyncFunctionDef]] = {}
        self.properties: dict[str, ast.FunctionDef] = {}
        self.constants: dict[str, str] = {}
        for module in self.modules.values():
            for node in ast.walk(module):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    self.functions.setdefault(node.name, []).append(node)
                    decorators = {getattr(d, "id", "") for d in node.decorator_list}
                    if "property" in decorators and isinstance(node, ast.FunctionDef):
                        self.properties[node.name] = node
            for stmt in module.body:
                if (
                    isinstance(stmt, ast.Assign)
                    and len(stmt.targets) == 1
                    and isinstance(stmt.targets[0], ast.Name)
                    and isinstance(stmt.value, ast.Constant)
                    and isinstance(stmt.value.value, str)
                ):
                    self.constants[stmt.targets[0].id] = stmt.value.value

    def client_calls(self) -> Iterator[tuple[ast.AST, tuple[str, ...], ast.expr]]:
        """(enclosing function, verbs, path argument) of every client call."""
        for module in self.modules.values():
            for func in functions(module):
                for call in own_nodes(func):
                    if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute)):
                        continue
                    receiver = ast.unparse(call.func.value)
                    if receiver.split(".")[-1] != "kube":
                        continue
                    if call.func.attr in CLIENT_VERBS:
                        assert call.args, ast.unparse(call)
                        yield func, CLIENT_VERBS[call.func.attr], call.args[0]
                    elif call.func.attr == "request":  # kube.request("PUT", path, ...)
                        method = call.args[0]
                        assert isinstance(method, ast.Constant), ast.unparse(call)
                        yield func, HTTP_VERBS[method.value], call.args[1]

    def paths_of(self, func: ast.AST, expr: ast.expr, depth: int = 0) -> set[str]:
        """Every API path ``expr`` can be inside ``func``."""
        assert depth < 6, ast.unparse(expr)
        if isinstance(expr, ast.Call) and ast.unparse(expr.func).startswith("paths."):
            builder = getattr(paths, ast.unparse(expr.func).removeprefix("paths."))
            count = len(expr.args)
            if any(isinstance(a, ast.Starred) for a in expr.args):  # paths.x(*key)
                count = sum(
                    p.default is inspect.Parameter.empty
                    for p in inspect.signature(builder).parameters.values()
                )
            return {builder(*["placeholder-ns", "placeholder"][:count])}
        if isinstance(expr, ast.JoinedStr):
            return {self.render(expr)}
        if isinstance(expr, ast.Attribute) and expr.attr in self.properties:
            (ret,) = [n for n in ast.walk(self.properties[expr.attr]) if isinstance(n, ast.Return)]
            assert ret.value is not None
            return self.paths_of(self.properties[expr.attr], ret.value, depth + 1)
        if isinstance(expr, ast.Name):
            return self.name_paths(func, expr.id, depth)
        raise AssertionError(f"cannot trace the API path {ast.unparse(expr)!r}")

    def name_paths(self, func: ast.AST, name: str, depth: int) -> set[str]:
        found: set[str] = set()
        for node in own_nodes(func):
            if isinstance(node, ast.Assign):
                for target in node.targets:
                    if isinstance(target, ast.Name) and target.id == name:
                        found |= self.paths_of(func, node.value, depth + 1)
            if isinstance(node, ast.For) and isinstance(node.target, ast.Tuple):
                names = [getattr(e, "id", None) for e in node.target.elts]
                if name in names:  # for path, ... in [(od_path, ...), (spot_path, ...)]
                    found |= self.loop_paths(func, node.iter, names.index(name), depth)
            if isinstance(node, ast.For) and ast.unparse(node.target) == name:
                for item in self.elements(func, node.iter):  # for path in (paths.a(), ...)
                    found |= self.paths_of(func, item, depth + 1)
        if found:
            return found
        assert isinstance(func, ast.FunctionDef | ast.AsyncFunctionDef)
        params = [a.arg for a in func.args.args + func.args.kwonlyargs]
        assert name in params, f"{func.name}: cannot trace {name!r}"
        return self.argument_paths(func, params.index(name), name, depth)

    def elements(self, func: ast.AST, expr: ast.expr) -> list[ast.expr]:
        """What a list or tuple built in ``func`` can hold: its literal items, both
        branches of a conditional, and what is appended to it."""
        if isinstance(expr, ast.List | ast.Tuple):
            return list(expr.elts)
        if isinstance(expr, ast.IfExp):
            return self.elements(func, expr.body) + self.elements(func, expr.orelse)
        assert isinstance(expr, ast.Name), ast.unparse(expr)
        out: list[ast.expr] = []
        for node in own_nodes(func):
            if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == expr.id:
                out += self.elements(func, node.value)
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and ast.unparse(node.func.value) == expr.id
                and node.func.attr == "append"
            ):
                out.append(node.args[0])
        return out

    def loop_paths(self, func: ast.AST, iterable: ast.expr, index: int, depth: int) -> set[str]:
        if isinstance(iterable, ast.Name):
            named = iterable.id
            for node in own_nodes(func):
                if isinstance(node, ast.Assign) and ast.unparse(node.targets[0]) == named:
                    iterable = node.value
        assert isinstance(iterable, ast.List | ast.Tuple), ast.unparse(iterable)
        return {
            p
            for item in iterable.elts
            if isinstance(item, ast.Tuple)
            for p in self.paths_of(func, item.elts[index], depth + 1)
        }

    def argument_paths(self, func: Function, index: int, name: str, depth: int) -> set[str]:
        """A parameter's paths: what every caller in the package passes for it. A bare
        call counts in the function's own module; ``self.f()`` only for a method; other
        ``x.f()`` anywhere (a module's function, a function passed as a callback)."""
        home = next(m for m in self.modules.values() if func in functions(m))
        is_method = bool(func.args.args) and func.args.args[0].arg == "self"
        found: set[str] = set()
        for module in self.modules.values():
            for caller in functions(module):
                for call in own_nodes(caller):
                    if not isinstance(call, ast.Call):
                        continue
                    shift = 0
                    if isinstance(call.func, ast.Name):
                        if call.func.id != func.name or module is not home:
                            continue
                    elif isinstance(call.func, ast.Attribute) and call.func.attr == func.name:
                        on_self = ast.unparse(call.func.value) == "self"
                        if on_self != is_method:
                            continue
                        shift = 1 if is_method else 0
                    else:
                        continue
                    for kw in call.keywords:
                        if kw.arg == name:
                            found |= self.paths_of(caller, kw.value, depth + 1)
                    if 0 <= index - shift < len(call.args):
                        found |= self.paths_of(caller, call.args[index - shift], depth + 1)
        assert found, f"{func.name}: no caller passes {name!r}"
        return found

    def render(self, text: ast.JoinedStr) -> str:
        parts = []
        for value in text.values:
            if isinstance(value, ast.Constant):
                parts.append(str(value.value))
            else:
                assert isinstance(value, ast.FormattedValue)
                name = ast.unparse(value.value)
                parts.append(self.constants.get(name, "placeholder"))
        return "".join(parts)


def resource_of(path: str) -> tuple[str, str, bool]:
    """(group, resource[/subresource], names one object) of an API path."""
    match = re.fullmatch(r"/api/v1/(.*)|/apis/([^/]+)/[^/]+/(.*)", path.split("?")[0])
    assert match, path
    group, rest = ("", match.group(1)) if match.group(1) is not None else match.group(2, 3)
    parts = rest.split("/")
    if parts[0] == "namespaces" and len(parts) > 2:
        parts = parts[2:]
    resource = parts[0]
    if len(parts) > 2:
        resource += f"/{parts[2]}"
    return group, resource, len(parts) > 1


def code_uses() -> set[Use]:
    package = Package()
    uses: set[Use] = set()
    for func, verbs, arg in package.client_calls():
        for path in package.paths_of(func, arg):
            group, resource, named = resource_of(path)
            for verb in verbs:
                uses.add((group, resource, "list" if verb == "get" and not named else verb))
    # An owner reference with blockOwnerDeletion needs `update` on the owner's
    # finalizers subresource (the OwnerReferencesPermissionEnforcement admission plugin).
    for module in package.modules.values():
        for node in ast.walk(module):
            if isinstance(node, ast.Dict):
                keys = [getattr(k, "value", None) for k in node.keys]
                if "blockOwnerDeletion" in keys and "kind" in keys:
                    kind = node.values[keys.index("kind")]
                    assert ast.unparse(kind) == "'ModelServing'", ast.unparse(kind)
                    uses.add(("servingopt.io", "modelservings/finalizers", "update"))
    return uses


def kopf_uses() -> set[Use]:
    """What kopf does for servingopt's handlers, and for itself."""
    registry = kopf.get_default_registry()
    uses: set[Use] = set()

    def group_of(selector: Any) -> str:
        return (
            ""
            if selector.group in (None, "") and selector.version in (None, "v1")
            else (selector.group or "")
        )

    for kind in ("_watching", "_indexing", "_changing", "_spawning"):
        for handler in getattr(registry, kind).get_all_handlers():
            selector = handler.selector
            group, plural = group_of(selector), selector.any_name
            uses |= {(group, plural, "list"), (group, plural, "watch")}
            if kind in ("_changing", "_spawning"):  # progress and diff-base annotations
                uses.add((group, plural, "patch"))
                uses.add(("", "events", "create"))  # kopf posts an Event per handler outcome
    # kopf's observers (kopf/_core/reactor/observation.py): it watches CRDs for resources
    # appearing, and lists/watches namespaces to match -n globs.
    uses |= {("apiextensions.k8s.io", "customresourcedefinitions", v) for v in ("list", "watch")}
    uses |= {("", "namespaces", v) for v in ("list", "watch")}
    return uses


# What is shipped.


def shipped_roles() -> dict[str, dict[str, Any]]:
    """Every Role and ClusterRole in deploy/ (the Helm chart's are copies, checked equal
    by hack/chart-sync.py --check), by file and name."""
    roles = {}
    for path in sorted((ROOT / "deploy").rglob("*.yaml")):
        if "helm" in path.parts:
            continue
        for doc in yaml.safe_load_all(path.read_text()):
            if isinstance(doc, dict) and doc.get("kind") in ("Role", "ClusterRole"):
                roles[f"{path.relative_to(ROOT)}:{doc['metadata']['name']}"] = doc
    return roles


def grants(role: dict[str, Any]) -> set[Use]:
    return {
        (group, resource, verb)
        for rule in role.get("rules") or []
        for group in rule.get("apiGroups") or []
        for resource in rule.get("resources") or []
        for verb in rule.get("verbs") or []
    }


TENANT_ROLES = {"servingopt-edit", "servingopt-view"}  # for people, not the operator
LEADER = "servingopt-leader-election"


def test_no_shipped_role_has_a_wildcard() -> None:
    roles = shipped_roles()
    assert len(roles) >= 6, sorted(roles)
    for where, role in roles.items():
        for rule in role.get("rules") or []:
            for key in ("apiGroups", "resources", "verbs", "resourceNames"):
                assert "*" not in (rule.get(key) or []), f"{where}: wildcard in {key}"
            assert not rule.get("nonResourceURLs"), where


def test_the_operator_role_grants_exactly_what_the_code_uses() -> None:
    used = code_uses() | kopf_uses()
    leases = {u for u in used if u[1] == "leases"}
    operator = used - leases
    (role,) = [r for w, r in shipped_roles().items() if w == "deploy/operator/rbac.yaml:servingopt"]
    granted = grants(role)
    assert granted - operator == set(), f"granted, never used: {sorted(granted - operator)}"
    assert operator - granted == set(), f"used, not granted: {sorted(operator - granted)}"
    (election,) = [r for w, r in shipped_roles().items() if w.endswith(f":{LEADER}")]
    assert grants(election) == leases


def test_every_other_operator_role_grants_only_what_the_code_uses() -> None:
    """The overlays' roles: a subset of the uses (recommend-only drops the writes, the
    namespaced install splits them between a Role and a read-only ClusterRole)."""
    used = code_uses() | kopf_uses()
    checked = 0
    for where, role in shipped_roles().items():
        name = role["metadata"]["name"]
        if name in TENANT_ROLES or name == LEADER or where.startswith("deploy/operator/"):
            continue
        unused = grants(role) - used
        assert unused == set(), f"{where}: granted, never used: {sorted(unused)}"
        checked += 1
    assert checked >= 3


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (paths.deployment("ns", "d"), ("apps", "deployments", True)),
        (paths.hpas("ns"), ("autoscaling", "horizontalpodautoscalers", False)),
        (paths.modelserving_status("ns", "m"), ("servingopt.io", "modelservings/status", True)),
        (paths.node("n"), ("", "nodes", True)),
        (paths.namespace("ns"), ("", "namespaces", True)),
        (paths.events("ns"), ("", "events", False)),
    ],
)
def test_paths_read_as_the_authorizer_reads_them(
    path: str, expected: tuple[str, str, bool]
) -> None:
    assert resource_of(path) == expected
