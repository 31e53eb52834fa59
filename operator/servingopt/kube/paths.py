"""API paths of the objects servingopt reads and writes.

Every name is checked as a Kubernetes name before it becomes a path segment, and then
percent-escaped: a name that could add, remove or climb a segment (``/``, ``..``,
``%2F``) raises :class:`~servingopt.api.names.InvalidName` here, whatever validation
it slipped past before (the client checks the finished path once more).
"""

from __future__ import annotations

from urllib.parse import quote

from servingopt.api.base import GROUP, VERSION
from servingopt.api.names import InvalidName, dns_label, dns_subdomain

__all__ = ["InvalidName"]


def _ns(namespace: str) -> str:
    return quote(dns_label(namespace, "namespace"), safe="")


def _name(name: str, what: str) -> str:
    return quote(dns_subdomain(name, what), safe="")


def deployment(namespace: str, name: str) -> str:
    return f"{deployments(namespace)}/{_name(name, 'Deployment')}"


def hpas(namespace: str) -> str:
    return f"/apis/autoscaling/v2/namespaces/{_ns(namespace)}/horizontalpodautoscalers"


def hpa(namespace: str, name: str) -> str:
    return f"{hpas(namespace)}/{_name(name, 'HorizontalPodAutoscaler')}"


def pods(namespace: str) -> str:
    return f"/api/v1/namespaces/{_ns(namespace)}/pods"


def nodes() -> str:
    return "/api/v1/nodes"


def node(name: str) -> str:
    return f"/api/v1/nodes/{_name(name, 'Node')}"


def namespace(name: str) -> str:
    return f"/api/v1/namespaces/{_ns(name)}"


def events(namespace: str) -> str:
    return f"/api/v1/namespaces/{_ns(namespace)}/events"


def modelservings(namespace: str | None = None) -> str:
    if namespace is None:
        return f"/apis/{GROUP}/{VERSION}/modelservings"
    return f"/apis/{GROUP}/{VERSION}/namespaces/{_ns(namespace)}/modelservings"


def modelserving(namespace: str, name: str) -> str:
    return f"{modelservings(namespace)}/{_name(name, 'ModelServing')}"


def modelserving_status(namespace: str, name: str) -> str:
    return f"{modelserving(namespace, name)}/status"


def servingpolicies() -> str:
    return f"/apis/{GROUP}/{VERSION}/servingpolicies"


def servingpolicy(name: str) -> str:
    return f"{servingpolicies()}/{_name(name, 'ServingPolicy')}"


def instancecatalog(name: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/instancecatalogs/{_name(name, 'InstanceCatalog')}"


def scaledobjects(namespace: str) -> str:
    return f"/apis/keda.sh/v1alpha1/namespaces/{_ns(namespace)}/scaledobjects"


def scaledobject(namespace: str, name: str) -> str:
    return f"{scaledobjects(namespace)}/{_name(name, 'ScaledObject')}"


def deployments(namespace: str) -> str:
    return f"/apis/apps/v1/namespaces/{_ns(namespace)}/deployments"


def capacitymixes(namespace: str) -> str:
    return f"/apis/{GROUP}/{VERSION}/namespaces/{_ns(namespace)}/capacitymixes"


def capacitymix(namespace: str, name: str) -> str:
    return f"{capacitymixes(namespace)}/{_name(name, 'CapacityMix')}"


def capacitymix_status(namespace: str, name: str) -> str:
    return f"{capacitymix(namespace, name)}/status"
