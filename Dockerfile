# servingopt's operator image: `servingopt run` (and every other subcommand).
#
#   make image            builds it with buildah (no Docker engine needed)
#   docker build -t servingopt:$(python3 -c 'import sys; sys.path[:0]=["operator"]; import servingopt; print(servingopt.__version__)') .
#
# Two stages from one base: the first installs the package into a virtual environment
# with pip; the second copies only that environment, so the final image has no pip, no
# setuptools and no compiler. It runs as a numeric non-root user and writes nothing to
# its root filesystem (the shipped Deployment mounts it read-only, /tmp an emptyDir).
ARG BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm

FROM ${BASE_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md LICENSE ./
COPY operator ./operator
# Behind a TLS-intercepting proxy, pass its CA bundle as a build secret (never stored in
# a layer): --secret id=ca-bundle,src=/etc/ssl/certs/ca-certificates.crt
RUN --mount=type=secret,id=ca-bundle \
    if [ -s /run/secrets/ca-bundle ]; then export PIP_CERT=/run/secrets/ca-bundle; fi \
 && python3 -m venv /opt/servingopt \
 && /opt/servingopt/bin/pip install --no-cache-dir --disable-pip-version-check /src \
 && /opt/servingopt/bin/pip uninstall --yes --disable-pip-version-check pip setuptools \
 && rm -f /opt/servingopt/bin/activate* /opt/servingopt/bin/Activate.ps1 \
 # What servingopt never imports: the dependencies' test suites and the asyncio copy of
 # the Kubernetes client (about 85 MB; servingopt has its own client on aiohttp).
 && cd /opt/servingopt/lib/python3*/site-packages \
 && rm -rf kubernetes/aio \
 && find . -depth -type d \( -name tests -o -name test -o -name e2e_test \) -exec rm -rf {} +

FROM ${BASE_IMAGE}
ARG VERSION=unknown
ARG REVISION=unknown
LABEL org.opencontainers.image.title="servingopt" \
      org.opencontainers.image.description="Kubernetes operator that makes ML model serving cheap without breaking its latency SLO" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/servingopt/servingopt" \
      org.opencontainers.image.licenses="Apache-2.0"
# The base's own pip (official Python images ship one) goes too: nothing installs here.
RUN rm -rf /usr/local/lib/python3*/site-packages/pip* /usr/local/bin/pip* \
           /usr/lib/python3/dist-packages/pip* /usr/bin/pip*
COPY --from=build /opt/servingopt /opt/servingopt
COPY LICENSE /licenses/LICENSE
ENV PATH=/opt/servingopt/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["servingopt"]
CMD ["run", "--help"]
