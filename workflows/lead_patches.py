"""The lead workflow's patches: each a behaviour that runs recorded before it replay without.

A run decides every patch once, at its start (`LeadPatches.decide_at_start`), so a patch is never
first met inside an update handler or halfway through a settlement, where its marker would land
at a different place on replay. Runs recorded before `EFFECTS_PATCH` decided the later patches
where the code first needed them; they still do, on their old path, until those patches are
deprecated (see docs/writing-a-journey.md).
"""

from __future__ import annotations

from temporalio import workflow

# Memos on the run's page in the Temporal UI.
MEMO_PATCH = "memo-v1"
# Scoring, the MQL rule, pushes and nurture enrollments.
QUALIFY_PATCH = "qualify-v1"
# The MQL -> sales hand-off.
HANDOFF_PATCH = "handoff-v1"
# A booked meeting logged on the CRM record.
MEETING_PATCH = "meeting-log-v1"
# The accepted lead enrolled in the sales outreach sequence.
SALES_PATCH = "sales-outreach-v1"
# The account's journey hears its contacts' intent.
ABM_PATCH = "abm-v1"
# A CRM acceptance told to the hand-off in flight.
CRM_ACCEPT_PATCH = "crm-accept-v1"
# The account's customer journey hears its people.
CUSTOMER_PATCH = "customer-v1"
# A meeting invite where no scheduler sent one.
MEETING_CALENDAR_PATCH = "meeting-calendar-v1"
# A page's "Experiment Viewed" recorded as an exposure.
EXPOSURE_PATCH = "experiment-viewed-v1"
# Decisions as effects: every patch decided at the run's start, a person's stage change carried out
# by the main loop (so settling never runs twice at once).
EFFECTS_PATCH = "lead-effects-v1"

# A deal lost in the CRM sends the lead back to marketing (recycled).
RECYCLE_PATCH = "deal-lost-recycle-v1"

# Decided at the start of every run, in this order (the order their markers are recorded in).
AT_START = (MEMO_PATCH, QUALIFY_PATCH, CUSTOMER_PATCH, MEETING_CALENDAR_PATCH, EXPOSURE_PATCH)
# Decided at the start since EFFECTS_PATCH; before it, where first needed.
ONCE_LAZY = (HANDOFF_PATCH, SALES_PATCH, MEETING_PATCH, CRM_ACCEPT_PATCH, ABM_PATCH)
# Decided at the start since they were added (every one after EFFECTS_PATCH), after ONCE_LAZY.
SINCE_EFFECTS = (RECYCLE_PATCH,)
# Patches whose old path no run can take any more: the marker is still recorded, the new path is
# the only one (docs/writing-a-journey.md, "A patch's life"). An id moves here only when the
# checks there say so; none has yet.
DEPRECATED: tuple[str, ...] = ()


class LeadPatches:
    """Which behaviours this run has (`domain.reactions.LeadFeatures`), each decided once."""

    def __init__(self) -> None:
        self._decided: dict[str, bool] = {}

    def _patched(self, patch: str) -> bool:
        if patch not in self._decided:
            self._decided[patch] = self._decide(patch)
        return self._decided[patch]

    @staticmethod
    def _decide(patch: str) -> bool:
        if patch in DEPRECATED:
            workflow.deprecate_patch(patch)
            return True
        return workflow.patched(patch)

    @property
    def effects(self) -> bool:
        """Asked first by the run's start, or by an update handler that runs before it."""
        return self._patched(EFFECTS_PATCH)

    def decide_first(self) -> None:
        """The patches decided before the run's first command (its search attributes)."""
        self._patched(EFFECTS_PATCH)
        self._patched(MEMO_PATCH)

    def decide_at_start(self) -> None:
        """The rest, right after the first search attributes; every one since EFFECTS_PATCH."""
        for patch in AT_START[1:]:
            self._patched(patch)
        if self.effects:
            for patch in (*ONCE_LAZY, *SINCE_EFFECTS):
                self._patched(patch)

    @property
    def memos(self) -> bool:
        return self._patched(MEMO_PATCH)

    @property
    def qualify(self) -> bool:
        return self._patched(QUALIFY_PATCH)

    @property
    def customers(self) -> bool:
        return self._patched(CUSTOMER_PATCH)

    @property
    def calendar_invites(self) -> bool:
        return self._patched(MEETING_CALENDAR_PATCH)

    @property
    def page_experiments(self) -> bool:
        return self._patched(EXPOSURE_PATCH)

    @property
    def handoff(self) -> bool:
        return self._patched(HANDOFF_PATCH)

    @property
    def sales_outreach(self) -> bool:
        return self._patched(SALES_PATCH)

    @property
    def meeting_log(self) -> bool:
        return self._patched(MEETING_PATCH)

    @property
    def crm_accept(self) -> bool:
        return self._patched(CRM_ACCEPT_PATCH)

    @property
    def abm(self) -> bool:
        return self._patched(ABM_PATCH)

    @property
    def deal_lost_recycles(self) -> bool:
        # A run from before EFFECTS_PATCH decided nothing at its start: it does not recycle.
        return self.effects and self._patched(RECYCLE_PATCH)
