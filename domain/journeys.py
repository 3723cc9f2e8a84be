"""The journeys services may drive over the API: type, input, id, allowed signals, state query."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from domain.connectors import (
    CONNECTOR_STEPS_WORKFLOW_TYPE,
    ConnectorStepsInput,
    connector_steps_workflow_id,
)
from domain.ids import lead_workflow_id
from domain.lead import (
    EVENTS_SIGNAL,
    LEAD_STATE_QUERY,
    LEAD_WORKFLOW_TYPE,
    MERGED_SIGNAL,
    EventsRecorded,
    LeadMerged,
    LeadState,
    LeadWorkflowInput,
)
from domain.qualify import ENROLL_SIGNAL, EnrollRequest


@dataclass(frozen=True)
class JourneySpec:
    workflow_type: str
    input_model: type[BaseModel]
    workflow_id: Callable[[BaseModel], str]
    signals: dict[str, type[BaseModel]] = field(default_factory=dict)
    state_query: str | None = None
    state_model: type[BaseModel] | None = None


def _lead_id(data: BaseModel) -> str:
    assert isinstance(data, LeadWorkflowInput)
    return lead_workflow_id(data.lead_id)


def _connector_steps_id(data: BaseModel) -> str:
    assert isinstance(data, ConnectorStepsInput)
    return connector_steps_workflow_id(data.lead_id, data.request_id)


JOURNEYS: dict[str, JourneySpec] = {
    "lead": JourneySpec(
        workflow_type=LEAD_WORKFLOW_TYPE,
        input_model=LeadWorkflowInput,
        workflow_id=_lead_id,
        signals={EVENTS_SIGNAL: EventsRecorded, MERGED_SIGNAL: LeadMerged, ENROLL_SIGNAL: EnrollRequest},
        state_query=LEAD_STATE_QUERY,
        state_model=LeadState,
    ),
    "connector_steps": JourneySpec(
        workflow_type=CONNECTOR_STEPS_WORKFLOW_TYPE,
        input_model=ConnectorStepsInput,
        workflow_id=_connector_steps_id,
    ),
}
BY_WORKFLOW_TYPE = {spec.workflow_type: spec for spec in JOURNEYS.values()}
