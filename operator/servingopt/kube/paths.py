"""API paths of the objects servingopt reads and writes."""

from __future__ import annotations

from servingopt.api.base import GROUP, VERSION


def deployment(namespace: str, name: str) -> str:
    return f"/apis/apps/v1/namespaces/{namespace}/deployments/{name}"


def hpas(namespace: str) -> str:
    return f"/apis/autoscaling/v2/namespaces/{namespace}/horizontalpodautoscalers"


def hpa(namespace: str, name: str) -> str:
    return f"{hpas(namespace)}/{name}"


def pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/pods"


def nodes() -> str:
    return "/api/v1/nodes"


def node(name: str) -> str:
    return f"/api/v1/nodes/{name}"


def events(namespace: str) -> str:
    return f"/api/v1/namespaces/{namespace}/events"


def modelservings(namespace: str | None = None) -> str:
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/modelservings"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{namespace}/modelservings"


def modelserving(namespace: str, name: str) -> str:
    return f"{modelservings(namespace)}/{name}"


def modelserving_status(namespace: str, name: str) -> str:
    return f"{modelserving(namespace, name)}/status"


def servingpolicy(name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/servingpolicies/{name}"


def instancecatalog(name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/instancecatalogs/{name}"
