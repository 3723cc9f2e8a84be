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
from domain.customers import (
    CUSTOMER_EVENT_SIGNAL,
    CUSTOMER_STATE_QUERY,
    CUSTOMER_WORKFLOW_TYPE,
    CustomerEvent,
    CustomerInput,
    CustomerState,
    customer_workflow_id,
)
from domain.handoff import (
    ACCEPT_UPDATE,
    HANDOFF_STATE_QUERY,
    HANDOFF_WORKFLOW_TYPE,
    AcceptRequest,
    AcceptResult,
    HandoffInput,
    HandoffState,
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
from domain.qualify import (
    CHANGE_STAGE_UPDATE,
    ENROLL_SIGNAL,
    EnrollRequest,
    StageChangeRequest,
    StageChangeResult,
)
from domain.reports import REPORTS_WORKFLOW_TYPE, ReportsInput

# journeys new: imports


@dataclass(frozen=True)
class JourneySpec:
    workflow_type: str
    input_model: type[BaseModel]
    workflow_id: Callable[[BaseModel], str]
    signals: dict[str, type[BaseModel]] = field(default_factory=dict)
    state_query: str | None = None
    state_model: type[BaseModel] | None = None
    # Update name -> (request model, result model): validated here, then by the workflow's validator.
    updates: dict[str, tuple[type[BaseModel], type[BaseModel]]] = field(default_factory=dict)
    # False: the engine starts these itself (a hand-off's number is the lead's count); the API only
    # reads, signals and updates them.
    startable: bool = True


def _lead_id(data: BaseModel) -> str:
    assert isinstance(data, LeadWorkflowInput)
    return lead_workflow_id(data.lead_id)


def _customer_id(data: BaseModel) -> str:
    assert isinstance(data, CustomerInput)
    return customer_workflow_id(data.account_id)


def _not_started_here(data: BaseModel) -> str:
    raise AssertionError("not startable through the API")


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
        updates={CHANGE_STAGE_UPDATE: (StageChangeRequest, StageChangeResult)},
    ),
    "handoff": JourneySpec(
        workflow_type=HANDOFF_WORKFLOW_TYPE,
        input_model=HandoffInput,
        workflow_id=_not_started_here,
        state_query=HANDOFF_STATE_QUERY,
        state_model=HandoffState,
        updates={ACCEPT_UPDATE: (AcceptRequest, AcceptResult)},
        startable=False,
    ),
    "reports": JourneySpec(
        workflow_type=REPORTS_WORKFLOW_TYPE,
        input_model=ReportsInput,
        workflow_id=_not_started_here,
        startable=False,  # POST /v1/reports/runs starts these
    ),
    "customer": JourneySpec(
        workflow_type=CUSTOMER_WORKFLOW_TYPE,
        input_model=CustomerInput,
        workflow_id=_customer_id,
        signals={CUSTOMER_EVENT_SIGNAL: CustomerEvent},
        state_query=CUSTOMER_STATE_QUERY,
        state_model=CustomerState,
    ),
    "connector_steps": JourneySpec(
        workflow_type=CONNECTOR_STEPS_WORKFLOW_TYPE,
        input_model=ConnectorStepsInput,
        workflow_id=_connector_steps_id,
    ),
    # journeys new: journeys
}
BY_WORKFLOW_TYPE = {spec.workflow_type: spec for spec in JOURNEYS.values()}
