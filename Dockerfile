# syntax=docker/dockerfile:1
#
# The ExposedApp operator. Two stages: the builder makes a virtualenv from the hash-pinned
# locks; the runtime copies only that virtualenv onto a slim Python, with no compiler, no
# pip cache and no source tree, and runs as a numeric non-root user.
#
# The base is pinned by tag. Pin it by digest too where the build can look one up
# (e.g. `docker buildx imagetools inspect python:3.11-slim-bookworm`), and pass it as
#   docker build --build-arg PYTHON_IMAGE=python:3.11-slim-bookworm@sha256:<digest> .
# Both stages must use the same image: the virtualenv links to its interpreter by path.
#
# The image is made for a read-only root filesystem: Python writes no bytecode at run time
# (it is compiled at build time), HOME is /tmp, and /tmp is an emptyDir in the manifests.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

WORKDIR /src

# Third-party dependencies first, so this layer is reused until a lock changes. Wheels
# only (no compiler in either stage), every file checked against the lock's hashes. The
# runtime virtualenv gets no pip of its own: the base image's pip installs into it.
COPY requirements.lock requirements-build.lock ./
RUN python -m venv --without-pip /opt/venv \
    && python -m pip --python /opt/venv/bin/python install \
        --require-hashes --only-binary=:all: --no-deps -r requirements.lock \
    && python -m venv /opt/build \
    && /opt/build/bin/pip install --require-hashes --only-binary=:all: -r requirements-build.lock

# The project itself: built with the pinned setuptools (no build isolation, so nothing
# unpinned is fetched), installed without dependencies (they came from the lock).
# devcluster, the development control plane, ships in the same distribution but never
# runs in the operator's image: it is removed with its console script.
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN /opt/build/bin/pip wheel --no-deps --no-build-isolation --wheel-dir /wheels . \
    && python -m pip --python /opt/venv/bin/python install --no-deps /wheels/*.whl \
    && rm -rf /opt/venv/lib/python3.11/site-packages/devcluster /opt/venv/bin/devcluster \
    && /opt/venv/bin/python -c "import exposedapp.handlers"


FROM ${PYTHON_IMAGE}

# A passwd entry for the numeric user: kopf names its peering identity after the user
# (getpass.getuser() fails for a UID without one, unless POD_ID is set, as the manifests do).
RUN groupadd --system --gid 65532 exposedapp \
    && useradd --system --uid 65532 --gid 65532 --no-create-home --home-dir /tmp \
        --shell /usr/sbin/nologin exposedapp

COPY --from=builder /opt/venv /opt/venv

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp

USER 65532:65532
WORKDIR /tmp

# kopf's liveness endpoint; the Deployment's livenessProbe asks it.
EXPOSE 8080
ENTRYPOINT ["exposedapp", "run", "--liveness=http://0.0.0.0:8080/healthz"]
