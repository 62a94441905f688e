# The fastrollout operator image (also carries the reference worker, `python -m fastrollout.worker`).
#
#   docker build -t fastrollout:0.1.0 .
#   kind load docker-image fastrollout:0.1.0 --name fastrollout    # or push it to your registry
#
# The tag is the chart's appVersion, which the chart uses when image.tag is empty.
FROM python:3.11-slim

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
# 8080: Prometheus metrics (/metrics); 8081: kopf liveness (/healthz).
EXPOSE 8080 8081
ENTRYPOINT ["fastrollout", "run"]
