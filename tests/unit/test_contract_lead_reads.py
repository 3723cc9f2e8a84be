"""The lead-ad readers (Meta Graph, LinkedIn Lead Sync) against the sandbox in process: a lead
that is gone is told apart from a read refused for a reason of ours, which the webhook must not
acknowledge."""

import pytest

from platforms.errors import NotFoundError, PermanentPlatformError
from platforms.facebook import FacebookGraphClient
from platforms.linkedin import LinkedInClient
from runtime.settings import Settings
from sandbox.app import create_app
from tests.helpers.platforms import in_process


@pytest.fixture
async def sandbox():
    async with in_process(create_app(seed=5)) as client:
        yield client


async def test_a_deleted_meta_lead_is_not_found_and_a_missing_token_is_ours(sandbox):
    graph = FacebookGraphClient(
        sandbox,
        base_url="http://sandbox/facebook",
        version=Settings().facebook_graph_version,
        access_token="t",
    )
    with pytest.raises(NotFoundError, match="does not exist"):
        await graph.get_lead("1234567890")
    tokenless = FacebookGraphClient(
        sandbox,
        base_url="http://sandbox/facebook",
        version=Settings().facebook_graph_version,
        access_token="",
    )
    with pytest.raises(PermanentPlatformError) as refused:
        await tokenless.get_lead("1234567890")
    assert not isinstance(refused.value, NotFoundError)


async def test_a_retired_linkedin_version_is_ours_and_a_missing_response_is_not_found(sandbox):
    current = LinkedInClient(
        sandbox, base_url="http://sandbox/linkedin", token="t", version=Settings().linkedin_version
    )
    with pytest.raises(NotFoundError):
        await current.form_response("3f1a9c2e")
    retired = LinkedInClient(sandbox, base_url="http://sandbox/linkedin", token="t", version="202411")
    with pytest.raises(PermanentPlatformError, match="426") as refused:
        await retired.form_response("3f1a9c2e")
    assert not isinstance(refused.value, NotFoundError)
