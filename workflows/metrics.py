"""The product's own journey metrics, counted inside workflows: the SDK's workflow meter records
nothing while a history replays, so each counts what happened once, and the worker serves them on
its Prometheus endpoint beside the SDK's (`JOURNEYS_WORKER_METRICS_PORT`)."""

from __future__ import annotations

from temporalio import workflow


def stage_reached(stage: str) -> None:
    workflow.metric_meter().create_counter(
        "journeys_lead_stage_reached", "Leads that reached a lifecycle stage"
    ).add(1, {"stage": stage})


def handoff_notified(seconds: float) -> None:
    workflow.metric_meter().create_histogram_float(
        "journeys_handoff_mql_to_notified_seconds",
        "Seconds from MQL to the rep's (or the queue's) message",
        "s",
    ).record(seconds)


def handoff_escalated(step: str) -> None:
    workflow.metric_meter().create_counter(
        "journeys_handoff_sla_breaches", "Hand-offs not accepted within the SLA, by escalation step"
    ).add(1, {"step": step})


def handoff_accepted() -> None:
    workflow.metric_meter().create_counter("journeys_handoff_accepted", "Hand-offs accepted by a rep").add(1)


def customer_health_changed(band: str) -> None:
    workflow.metric_meter().create_counter(
        "journeys_customer_health_changes", "Customer accounts entering a health band"
    ).add(1, {"band": band})


def customer_churned() -> None:
    workflow.metric_meter().create_counter("journeys_customer_churned", "Customer accounts that churned").add(
        1
    )
