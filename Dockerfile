# crmsync: the daemon (`crmsync run`) on a slim Python base, as a non-root user.
# Configuration comes from the environment (CRMSYNC_*; see docs/settings.md and .env.example).
# Port 8080 serves /healthz, /metrics and POST /webhooks/hubspot (uvicorn, with a connection cap,
# timeouts and a body cap). It listens on all of the container's interfaces so a reverse proxy can
# reach it: publish it to the proxy only, with TLS in front and only the webhook path public; set
# CRMSYNC_HTTP__METRICS_TOKEN if /metrics leaves a trusted network (docs/operations.md).

FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY crmsync ./crmsync
RUN pip install --no-cache-dir --upgrade pip==24.3.1 \
 && pip wheel --no-cache-dir --wheel-dir /wheels ".[postgres]"

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    CRMSYNC_DEFINITIONS=/app/config/definitions.yaml \
    CRMSYNC_DATABASE_URL=sqlite:////data/crmsync.db \
    CRMSYNC_HTTP__HOST=0.0.0.0 \
    CRMSYNC_HTTP__PORT=8080 \
    CRMSYNC_LOG_FORMAT=json
RUN groupadd --system --gid 10001 crmsync \
 && useradd --system --uid 10001 --gid crmsync --home-dir /app --shell /usr/sbin/nologin crmsync \
 && mkdir -p /data /app/config \
 && chown crmsync:crmsync /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
COPY config/definitions.yaml /app/config/definitions.yaml
WORKDIR /app
USER 10001:10001
VOLUME ["/data"]
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('CRMSYNC_HTTP__PORT', '8080'), timeout=4)"]
ENTRYPOINT ["crmsync"]
CMD ["run"]
