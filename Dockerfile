# chatapp: one process, SQLite in /data by default (set CHATAPP_DATABASE_URL for PostgreSQL).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    LITELLM_LOCAL_MODEL_COST_MAP=True \
    CHATAPP_DATA_DIR=/data \
    CHATAPP_HOST=0.0.0.0 \
    CHATAPP_PORT=8080

RUN groupadd --system chatapp && useradd --system --gid chatapp --home-dir /app --shell /usr/sbin/nologin chatapp

WORKDIR /app
COPY pyproject.toml README.md ./
COPY chatapp ./chatapp
RUN pip install --no-compile . && mkdir -p /data && chown chatapp:chatapp /data

USER chatapp
VOLUME ["/data"]
EXPOSE 8080

HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD python -c "import os, urllib.request; urllib.request.urlopen(f'http://127.0.0.1:{os.environ.get(\"CHATAPP_PORT\", \"8080\")}/healthz', timeout=4)" || exit 1

CMD ["python", "-m", "chatapp", "--host", "0.0.0.0"]
