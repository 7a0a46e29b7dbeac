# The one image for every role: `payments serve` by default; the same image runs
# `gateway`, `worker` and `migrate` (docker run IMAGE migrate). See docs/operations.md.

# The base: any image with Python 3.11 and `python -m venv` (scripts/image.sh builds
# one from Debian with debootstrap where no registry is reachable).
ARG BASE_IMAGE=python:3.11-slim

# Builder: a wheel of the project, installed with its runtime dependencies only
# (no dev extras), at the releases of constraints.txt, into a virtual environment
# that the runtime stage copies whole.
FROM ${BASE_IMAGE} AS builder
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY constraints.txt ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt pip
COPY pyproject.toml ./
COPY server ./server
COPY gateway ./gateway
COPY generated ./generated
RUN /opt/venv/bin/pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
    && /opt/venv/bin/pip install --no-cache-dir -c constraints.txt /wheels/payments-*.whl

# Runtime: the same base, the venv, the migrations, a non-root user; no compiler, no sources.
FROM ${BASE_IMAGE}
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin payments \
    && mkdir -p /app/data \
    && chown 10001 /app/data
COPY --from=builder /opt/venv /opt/venv
WORKDIR /app
# `payments migrate` (and `serve` on SQLite) read these from the working directory.
COPY alembic.ini ./
COPY migrations ./migrations
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PAYMENTS_DATABASE_URL=sqlite+aiosqlite:////app/data/payments.db \
    PAYMENTS_GRPC_ADDRESS=[::]:50051 \
    PAYMENTS_GATEWAY_ADDRESS=0.0.0.0:8080
USER 10001
# gRPC, the webhook sidecar, the Prometheus endpoint (when PAYMENTS_METRICS_ADDRESS is set).
EXPOSE 50051 8080 9464
ENTRYPOINT ["payments"]
CMD ["serve"]
