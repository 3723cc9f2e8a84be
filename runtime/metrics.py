"""The product's own metrics, for Prometheus. The Temporal SDK's runtime metrics come from the
worker's own endpoint (`JOURNEYS_WORKER_METRICS_PORT`)."""

from prometheus_client import Counter, Gauge, Histogram

EVENTS_INGESTED = Counter(
    "journeys_events_ingested_total", "Events durably recorded, by source and type", ["source", "type"]
)
EVENTS_DUPLICATE = Counter(
    "journeys_events_duplicate_total", "Events answered but not recorded again (retries, replays)", ["source"]
)
INGEST_UNAVAILABLE = Counter(
    "journeys_ingest_unavailable_total", "Ingestion refused with 503, by the part that was down", ["part"]
)
API_REQUEST_SECONDS = Histogram(
    "journeys_api_request_seconds",
    "Time the API spent on a request, by route and status",
    ["method", "route", "status"],
    buckets=(0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5),
)

# Read from Temporal's visibility at each scrape (one count per stage): what is in the funnel now.
LEADS_BY_STAGE = Gauge("journeys_leads_by_stage", "Running lead journeys by lifecycle stage", ["stage"])
OPEN_HANDOFFS = Gauge("journeys_handoffs_open", "Hand-offs waiting for a rep")
CUSTOMER_JOURNEYS = Gauge("journeys_customer_journeys", "Running customer journeys")
