# The API and the worker share one image: `journeys api` or `journeys worker`.
FROM python:3.12-slim AS base
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY domain domain
COPY workflows workflows
COPY activities activities
COPY platforms platforms
COPY sandbox sandbox
COPY store store
COPY workers workers
COPY api api
COPY runtime runtime
COPY devstack devstack
COPY cli cli
COPY routing routing
COPY config config
RUN pip install . && useradd --system --no-create-home journeys
USER journeys
ENV JOURNEYS_DATA_DIR=/tmp/journeys JOURNEYS_API_HOST=0.0.0.0 JOURNEYS_TEMPORAL_EMBEDDED=false \
    JOURNEYS_FORMS_FILE=/app/config/forms.toml
EXPOSE 8000
ENTRYPOINT ["journeys"]
CMD ["api"]
