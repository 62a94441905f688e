# The fastrollout images, for users with Docker. Two targets of one build:
#
#   docker build -t fastrollout/operator:0.1.0 .                    # the operator (default target)
#   docker build --target worker -t fastrollout/worker:0.1.0 .      # the reference worker
#   kind load docker-image fastrollout/operator:0.1.0 fastrollout/worker:0.1.0 --name fastrollout
#
# 0.1.0 is the chart's appVersion, the operator tag the chart uses when image.tag is empty. The names
# match the images the project's test bed builds without Docker (tests/cluster/images.sh).
FROM python:3.11-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ operator/
RUN pip install . && rm -rf /src
WORKDIR /
# A numeric uid (the "nonroot" uid of distroless images), so runAsNonRoot can verify it.
USER 65532:65532

# The reference single-request worker: :8080 requests, :9090 /readyz, /livez, /metrics.
FROM base AS worker
EXPOSE 8080 9090
ENTRYPOINT ["python3", "-m", "fastrollout.worker"]

# The operator. 8080: Prometheus metrics (/metrics); 8081: kopf liveness (/healthz).
FROM base AS operator
EXPOSE 8080 8081
ENTRYPOINT ["fastrollout", "run"]
