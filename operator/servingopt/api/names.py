"""Kubernetes name formats, checked wherever a name can reach an API path or a label.

The same patterns serve three layers: the CRD schema (``pattern``, RE2 syntax), the
pydantic models (``Annotated`` types below) and :mod:`servingopt.kube.paths`, which
refuses to build a request path from anything else. Python checks use
``re.fullmatch`` (``$`` would also accept a trailing newline).
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import Field

#: RFC 1123 label: namespaces, ModelServing names (they name the owned HPA and label it).
DNS_LABEL = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_LABEL_MAX = 63
#: RFC 1123 subdomain: Deployment, ServingPolicy, InstanceCatalog, Node names.
DNS_SUBDOMAIN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX = 253
#: A label value (instance type names become nodeSelector values).
LABEL_VALUE = r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$"
#: A qualified name (label and taint keys): optional DNS-subdomain prefix, then a name.
QUALIFIED_NAME = (
    r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
    r"[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
)
#: An image reference: [registry[:port]/]path[:tag][@sha256:digest], lower-case path.
IMAGE_REFERENCE = (
    r"^([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*"
    r"(:[0-9]{1,5})?/)?[a-z0-9]+([._-][a-z0-9]+|__[a-z0-9]+)*"
    r"(/[a-z0-9]+([._-][a-z0-9]+|__[a-z0-9]+)*)*"
    r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?$"
)

DnsLabel = Annotated[str, Field(min_length=1, max_length=DNS_LABEL_MAX, pattern=DNS_LABEL)]
DnsSubdomain = Annotated[
    str, Field(min_length=1, max_length=DNS_SUBDOMAIN_MAX, pattern=DNS_SUBDOMAIN)
]
LabelValue = Annotated[str, Field(max_length=63, pattern=LABEL_VALUE)]
QualifiedName = Annotated[str, Field(min_length=1, max_length=316, pattern=QUALIFIED_NAME)]
ImageReference = Annotated[str, Field(min_length=1, max_length=512, pattern=IMAGE_REFERENCE)]

_LABEL = re.compile(DNS_LABEL.strip("^$"))
_SUBDOMAIN = re.compile(DNS_SUBDOMAIN.strip("^$"))


class InvalidName(ValueError):
    """A name that is not a Kubernetes name of the kind asked for."""


def is_dns_label(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= DNS_LABEL_MAX
        and _LABEL.fullmatch(value) is not None
    )


def is_dns_subdomain(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) <= DNS_SUBDOMAIN_MAX
        and _SUBDOMAIN.fullmatch(value) is not None
    )


def dns_label(value: object, what: str) -> str:
    """``value`` when it is an RFC 1123 label, else InvalidName naming ``what``."""
    if not is_dns_label(value):
        raise InvalidName(f"{what} {value!r} is not a valid name (RFC 1123 label)")
    assert isinstance(value, str)
    return value


def dns_subdomain(value: object, what: str) -> str:
    """``value`` when it is an RFC 1123 subdomain, else InvalidName naming ``what``."""
    if not is_dns_subdomain(value):
        raise InvalidName(f"{what} {value!r} is not a valid name (RFC 1123 subdomain)")
    assert isinstance(value, str)
    return value


#: What each pattern means, for error messages (a regex is no explanation).
PATTERN_HELP: dict[str, str] = {
    DNS_LABEL: "must be an RFC 1123 label: at most 63 characters of a-z, 0-9 and '-', "
    "starting and ending with a letter or digit",
    DNS_SUBDOMAIN: "must be an RFC 1123 subdomain: at most 253 characters of a-z, 0-9, '-' "
    "and '.', each dot-separated part starting and ending with a letter or digit",
    LABEL_VALUE: "must be a label value: at most 63 characters of A-Z, a-z, 0-9, '-', '_' "
    "and '.', starting and ending with a letter or digit",
    QUALIFIED_NAME: "must be a qualified name such as 'example.com/key' or 'key'",
    IMAGE_REFERENCE: "must be an image reference such as 'registry.example.com/team/model:tag'",
}
