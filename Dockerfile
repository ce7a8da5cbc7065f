# netpol-audit image: slim Python, WeasyPrint's libraries, the package, a non-root numeric user.
# Build: docker build -t netpol-audit:0.1.0 .
# Every step mirrors something CI runs: apt-packages.txt is what .ci/run installs, and the
# package is installed from a wheel with the pinned versions of requirements.lock.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY audit ./audit
COPY templates ./templates
RUN pip install --no-cache-dir --disable-pip-version-check build==1.2.2.post1 \
 && python -m build --wheel --outdir /dist . \
 && pip download --no-cache-dir --disable-pip-version-check --only-binary=:all: -d /dist -r requirements.lock

FROM ${PYTHON_IMAGE}
COPY apt-packages.txt /tmp/apt-packages.txt
RUN apt-get update \
 && xargs -a /tmp/apt-packages.txt apt-get install -y --no-install-recommends \
 && rm -rf /var/lib/apt/lists/* /tmp/apt-packages.txt
COPY --from=build /dist /dist
RUN pip install --no-cache-dir --disable-pip-version-check --no-index --find-links=/dist netpol-audit \
 && rm -rf /dist
# readOnlyRootFilesystem: caches and temp files go to the emptyDir mounted at /tmp.
ENV HOME=/tmp XDG_CACHE_HOME=/tmp/.cache PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["netpol-audit"]
CMD ["scan", "--help"]
