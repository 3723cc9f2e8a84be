"""The search attributes ops find runs by in the Temporal UI. Never clear-text PII."""

from temporalio.common import SearchAttributeKey

LEAD_ID = SearchAttributeKey.for_keyword("LeadId")
EMAIL_HASH = SearchAttributeKey.for_keyword("EmailHash")
LIFECYCLE_STAGE = SearchAttributeKey.for_keyword("LifecycleStage")
LEAD_SCORE = SearchAttributeKey.for_int("LeadScore")
JOURNEY = SearchAttributeKey.for_keyword("Journey")
OWNER = SearchAttributeKey.for_keyword("Owner")
ACCOUNT_ID = SearchAttributeKey.for_keyword("AccountId")

ALL: list[SearchAttributeKey] = [LEAD_ID, EMAIL_HASH, LIFECYCLE_STAGE, LEAD_SCORE, JOURNEY, OWNER, ACCOUNT_ID]
