"""Who governs a ModelServing, and what it may make servingopt do (pure).

ModelServing authors are tenants; cluster admins own ServingPolicies. A tenant can
only get from servingopt what a policy selecting its namespace allows:

- :func:`select_policy` — the policy that governs a namespace's ModelServing: the
  highest-priority one selecting the namespace, or the one ``spec.policyRef`` names if
  that one selects the namespace too. None selects it: servingopt does nothing there.
- :func:`workload_problems` — variant images, args and the env names servingopt would
  write, checked against the policy's ``workload`` rules.
- :func:`prometheus_url` / :func:`metric_labels` — which Prometheus may be queried,
  and the namespace matcher every query carries.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from servingopt.api.modelserving import ModelServingSpec
from servingopt.api.servingpolicy import ServingPolicySpec, WorkloadRules

# Variables that change how a process loads code, whom it trusts or where its traffic
# goes: never written on a tenant's behalf, whatever a policy's globs allow.
DENIED_ENV = (
    "LD_*",
    "DYLD_*",
    "PATH",
    "PYTHONPATH",
    "PYTHONHOME",
    "PYTHONSTARTUP",
    "PYTHONUSERBASE",
    "NODE_OPTIONS",
    "NODE_PATH",
    "JAVA_TOOL_OPTIONS",
    "JDK_JAVA_OPTIONS",
    "_JAVA_OPTIONS",
    "CLASSPATH",
    "PERL5OPT",
    "PERL5LIB",
    "RUBYOPT",
    "RUBYLIB",
    "BASH_ENV",
    "ENV",
    "GCONV_PATH",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "no_proxy",
)
NAMESPACE_LABEL = "kubernetes.io/metadata.name"


@dataclass(frozen=True)
class Governance:
    """The policy governing a ModelServing, or why there is none (``reason``)."""

    name: str | None = None
    policy: ServingPolicySpec | None = None
    reason: str = ""
    message: str = ""


def select_policy(
    policies: Mapping[str, ServingPolicySpec],
    namespace: str,
    namespace_labels: Mapping[str, str],
    requested: str | None,
) -> Governance:
    """The governing policy of a ModelServing in ``namespace`` (see the module doc)."""
    labels = {**namespace_labels, NAMESPACE_LABEL: namespace}
    selecting = {
        name: spec
        for name, spec in policies.items()
        if spec.namespace_selector is not None and spec.namespace_selector.matches(labels)
    }
    if requested is not None:
        if requested in selecting:
            return Governance(requested, selecting[requested])
        if requested in policies:
            return Governance(
                reason="PolicyNotAllowed",
                message=f"spec.policyRef.name: ServingPolicy {requested!r} does not select "
                f"namespace {namespace!r}; choose one that does: {_names(selecting)}",
            )
        return Governance(
            reason="PolicyNotFound",
            message=f"spec.policyRef.name: ServingPolicy {requested!r} not found",
        )
    if not selecting:
        return Governance(
            reason="NoPolicy",
            message=f"no ServingPolicy selects namespace {namespace!r}: servingopt acts only "
            "where an admin's policy (spec.namespaceSelector) allows it",
        )
    top = max(spec.priority for spec in selecting.values())
    best = sorted(name for name, spec in selecting.items() if spec.priority == top)
    if len(best) > 1:
        return Governance(
            reason="AmbiguousPolicy",
            message=f"ServingPolicies {', '.join(best)} all select namespace {namespace!r} "
            f"with priority {top}: set spec.policyRef to one of them",
        )
    return Governance(best[0], selecting[best[0]])


def _names(policies: Mapping[str, object]) -> str:
    return ", ".join(sorted(policies)) or "(none)"


def env_names(spec: ModelServingSpec) -> list[tuple[str, str]]:
    """(field path, env name) of every variable servingopt may write for ``spec``."""
    out: list[tuple[str, str]] = []
    for vi, variant in enumerate(spec.variants or []):
        out += [(f"spec.variants[{vi}].env[{ei}].name", e.name) for ei, e in enumerate(variant.env)]
    if spec.batching.enabled:
        env = spec.batching.env
        out.append(("spec.batching.env.maxBatchSize", env.max_batch_size))
        out.append(
            ("spec.batching.env.maxQueueDelayMicroseconds", env.max_queue_delay_microseconds)
        )
    if spec.caching.mode != "Off":
        out.append(("spec.caching.env.enabled", spec.caching.env.enabled))
        out.append(("spec.caching.env.sizeMiB", spec.caching.env.size_mi_b))
    return out


def _matches(value: str, patterns: tuple[str, ...] | list[str]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def workload_problems(spec: ModelServingSpec, rules: WorkloadRules, policy_name: str) -> list[str]:
    """What ``spec`` asks servingopt to write that the governing policy does not allow."""
    where = f"ServingPolicy {policy_name!r}"
    problems = []
    for vi, variant in enumerate(spec.variants or []):
        if variant.image and not _matches(variant.image, rules.allowed_images):
            allowed = ", ".join(rules.allowed_images) or "no image changes"
            problems.append(
                f"spec.variants[{vi}].image: {variant.image!r} is not allowed by {where} "
                f"(workload.allowedImages: {allowed})"
            )
        if variant.args and not rules.allow_args:
            problems.append(f"spec.variants[{vi}].args: {where} does not allow setting args")
    for path, name in env_names(spec):
        if _matches(name, DENIED_ENV):
            problems.append(f"{path}: servingopt never sets {name!r} (it changes how code loads)")
        elif not _matches(name, rules.allowed_env_names):
            problems.append(
                f"{path}: env name {name!r} is not allowed by {where} "
                f"(workload.allowedEnvNames: {', '.join(rules.allowed_env_names) or 'none'})"
            )
    return problems


def _same_url(a: str, b: str) -> bool:
    return a.rstrip("/") == b.rstrip("/")


def prometheus_url(
    spec: ModelServingSpec, policy: ServingPolicySpec, operator_default: str | None
) -> tuple[str | None, str]:
    """(URL to query, problem): a URL the spec names must be one the admins allow."""
    allowed = [u for u in (policy.prometheus_url, operator_default) if u]
    allowed += policy.allowed_prometheus_urls
    wanted = spec.metrics.prometheus_url
    if wanted is None:
        return policy.prometheus_url or operator_default, ""
    if any(_same_url(wanted, url) for url in allowed):
        return wanted, ""
    return None, (
        "spec.metrics.prometheusUrl: this Prometheus is not allowed by the governing "
        "ServingPolicy (its prometheusUrl, allowedPrometheusUrls or the operator's "
        "--prometheus-url); leave it unset to use the policy's"
    )


def metric_labels(
    spec: ModelServingSpec, namespace: str, policy: ServingPolicySpec
) -> tuple[dict[str, str], str]:
    """(label matchers, problem): every query is pinned to the ModelServing's namespace."""
    key = policy.metrics_namespace_label
    labels = dict(spec.metrics.label_matchers or {"deployment": spec.target_ref.name})
    if labels.get(key, namespace) != namespace:
        return {}, (
            f"spec.metrics.labelMatchers.{key}: must be the ModelServing's own namespace "
            f"{namespace!r} (or left out)"
        )
    labels[key] = namespace
    return labels, ""
