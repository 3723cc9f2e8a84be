"""Salesforce: the exact requests the client sends and how it reads Salesforce's answers (respx),
then the client against the sandbox's emulation of the org, in process."""

import json
import urllib.parse
from datetime import UTC, date, datetime, timedelta

import httpx
import pytest
import respx

from platforms.errors import PermanentPlatformError, RateLimitedError, TransientPlatformError
from platforms.ports import Company, Deal, Meeting, Note, Person, Task
from platforms.salesforce import SalesforceClient, SalesforceFields, soql_quote
from sandbox.app import Faults, create_app
from sandbox.salesforce import SoqlError, parse_soql
from tests.helpers.platforms import in_process

LOGIN = "https://acme.my.salesforce.com"
INSTANCE = "https://acme-dev-ed.my.salesforce.com"
DATA = f"{INSTANCE}/services/data/v62.0"
TOKEN_URL = f"{LOGIN}/services/oauth2/token"
LIMITS = {"Sforce-Limit-Info": "api-usage=18/5000"}


def token_answer(token: str = "00Dxx!AQ.first") -> httpx.Response:
    return httpx.Response(
        200,
        json={
            "access_token": token,
            "signature": "c2lnbmF0dXJl",
            "scope": "api",
            "instance_url": INSTANCE,
            "id": f"{LOGIN}/id/00Dxx0000001gPLEAY/005xx000001X8UzAAK",
            "token_type": "Bearer",
            "issued_at": "1700000000000",
        },
    )


def errors(status: int, code: str, message: str, fields: list[str] | None = None) -> httpx.Response:
    item: dict[str, object] = {"message": message, "errorCode": code}
    if fields is not None:
        item["fields"] = fields
    return httpx.Response(status, json=[item], headers=LIMITS)


def query_answer(*ids: str, next_url: str | None = None) -> httpx.Response:
    body: dict[str, object] = {
        "totalSize": len(ids),
        "done": next_url is None,
        "records": [
            {"attributes": {"type": "Lead", "url": f"/services/data/v62.0/sobjects/Lead/{i}"}, "Id": i}
            for i in ids
        ],
    }
    if next_url:
        body["nextRecordsUrl"] = next_url
    return httpx.Response(200, json=body, headers=LIMITS)


def soql_of(request: httpx.Request) -> str:
    return urllib.parse.parse_qs(request.url.query.decode())["q"][0]


@pytest.fixture
def mock():
    with respx.mock(assert_all_called=False) as router:
        router.post(TOKEN_URL).mock(return_value=token_answer())
        yield router


@pytest.fixture
async def http():
    async with httpx.AsyncClient() as client:
        yield client


def client(http: httpx.AsyncClient, **overrides: object) -> SalesforceClient:
    options: dict[str, object] = {"client_id": "3MVG9.consumer", "client_secret": "s3cr3t&="}
    options.update(overrides)
    return SalesforceClient(http, base_url=LOGIN, **options)  # type: ignore[arg-type]


FULL_PERSON = Person(
    email="ada@acme.com",
    lead_id="830805f1-5d16-5e3a-9b1c-7fc0a10c9134",
    first_name="Ada",
    last_name="Lovelace",
    company="Acme",
    job_title="CTO",
    country="GB",
    lead_source="Web",
    lifecycle_stage="mql",
    lead_score=42,
    properties={"Industry": "Software"},
)
LEAD_PATH = f"{DATA}/sobjects/Lead/Journeys_Lead_Id__c/830805f1-5d16-5e3a-9b1c-7fc0a10c9134"


# ---- contract: requests and answers as Salesforce documents them -------------------------------


async def test_token_then_upsert_by_external_id(mock, http):
    upsert = mock.patch(LEAD_PATH).mock(
        return_value=httpx.Response(
            201,
            json={"id": "00Q5g00000ABCDeEAG", "success": True, "errors": [], "created": True},
            headers=LIMITS,
        )
    )
    sf = client(http)
    result = await sf.upsert_person(FULL_PERSON, idempotency_key="k1")

    assert result.model_dump() == {
        "provider": "salesforce",
        "object_type": "lead",
        "id": "00Q5g00000ABCDeEAG",
        "created": True,
    }
    token_request = mock.calls[0].request
    assert token_request.method == "POST" and str(token_request.url) == TOKEN_URL
    assert token_request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in token_request.headers
    assert urllib.parse.parse_qs(token_request.content.decode()) == {
        "grant_type": ["client_credentials"],
        "client_id": ["3MVG9.consumer"],
        "client_secret": ["s3cr3t&="],
    }
    request = upsert.calls.last.request
    assert request.headers["authorization"] == "Bearer 00Dxx!AQ.first"
    assert request.headers["content-type"] == "application/json"
    assert json.loads(request.content) == {
        "Email": "ada@acme.com",
        "FirstName": "Ada",
        "LastName": "Lovelace",
        "Company": "Acme",
        "Title": "CTO",
        "Country": "GB",
        "LeadSource": "Web",
        "Status": "Open - Not Contacted",
        "Journeys_Lifecycle_Stage__c": "mql",
        "Journeys_Lead_Score__c": 42,
        "Industry": "Software",
    }
    assert len(mock.calls) == 2  # name and company given: no read before the upsert
    assert sf.api_usage == (18, 5000)


async def test_existing_record_answers_created_false(mock, http):
    mock.patch(LEAD_PATH).mock(
        return_value=httpx.Response(
            200, json={"id": "00Q5g00000ABCDeEAG", "success": True, "errors": [], "created": False}
        )
    )
    sf = client(http)
    first = await sf.upsert_person(FULL_PERSON, idempotency_key="k1")
    again = await sf.upsert_person(FULL_PERSON, idempotency_key="k1")
    assert not first.created and not again.created and first.id == again.id
    assert len([c for c in mock.calls if c.request.url == TOKEN_URL]) == 1  # token kept


async def test_204_of_older_api_versions_reads_the_id_back(mock, http):
    mock.patch(LEAD_PATH.replace("v62.0", "v45.0")).mock(return_value=httpx.Response(204))
    lookup = mock.get(f"{INSTANCE}/services/data/v45.0/query").mock(
        return_value=query_answer("00Q000000000009")
    )
    result = await client(http, api_version="45.0").upsert_person(FULL_PERSON, idempotency_key="k1")
    assert result.id == "00Q000000000009" and not result.created
    assert soql_of(lookup.calls.last.request) == (
        "SELECT Id FROM Lead WHERE Journeys_Lead_Id__c = '830805f1-5d16-5e3a-9b1c-7fc0a10c9134' LIMIT 1"
    )


async def test_fallbacks_for_required_fields_only_on_a_new_lead(mock, http):
    score_only = Person(email="ada@acme.com", lead_id="L-1", lead_score=7)
    lookup = mock.get(f"{DATA}/query").mock(side_effect=[query_answer(), query_answer("00Q1")])
    upsert = mock.patch(f"{DATA}/sobjects/Lead/Journeys_Lead_Id__c/L-1").mock(
        side_effect=[
            httpx.Response(201, json={"id": "00Q1", "success": True, "errors": [], "created": True}),
            httpx.Response(200, json={"id": "00Q1", "success": True, "errors": [], "created": False}),
        ]
    )
    sf = client(http)
    await sf.upsert_person(score_only, idempotency_key="k1")
    await sf.upsert_person(score_only, idempotency_key="k2")
    assert soql_of(lookup.calls[0].request) == "SELECT Id FROM Lead WHERE Journeys_Lead_Id__c = 'L-1' LIMIT 1"
    created, updated = (json.loads(c.request.content) for c in upsert.calls)
    assert created == {
        "LastName": "[not provided]",
        "Company": "[not provided]",
        "Email": "ada@acme.com",
        "Journeys_Lead_Score__c": 7,
    }
    assert updated == {"Email": "ada@acme.com", "Journeys_Lead_Score__c": 7}


async def test_without_lead_id_a_person_is_found_by_email(mock, http):
    lookup = mock.get(f"{DATA}/query").mock(side_effect=[query_answer("00Q7"), query_answer()])
    update = mock.patch(f"{DATA}/sobjects/Lead/00Q7").mock(return_value=httpx.Response(204))
    create = mock.post(f"{DATA}/sobjects/Lead").mock(
        return_value=httpx.Response(201, json={"id": "00Q8", "success": True, "errors": []})
    )
    sf = client(http)
    found = await sf.upsert_person(Person(email="o'brien@x.com", first_name="Pat"), idempotency_key="k")
    made = await sf.upsert_person(Person(email="new@x.com", last_name="New"), idempotency_key="k2")

    assert soql_of(lookup.calls[0].request) == (
        "SELECT Id FROM Lead WHERE Email = 'o\\'brien@x.com' AND IsConverted = false "
        "ORDER BY CreatedDate ASC LIMIT 1"
    )
    assert (found.id, found.created) == ("00Q7", False)
    assert json.loads(update.calls.last.request.content) == {"Email": "o'brien@x.com", "FirstName": "Pat"}
    assert (made.id, made.created) == ("00Q8", True)
    assert json.loads(create.calls.last.request.content) == {
        "Company": "[not provided]",
        "Email": "new@x.com",
        "LastName": "New",
    }


async def test_contact_mode_writes_contact_fields(mock, http):
    upsert = mock.patch(f"{DATA}/sobjects/Contact/Journeys_Lead_Id__c/{FULL_PERSON.lead_id}").mock(
        return_value=httpx.Response(
            201, json={"id": "0035g0000001", "success": True, "errors": [], "created": True}
        )
    )
    result = await client(http, person_object="Contact").upsert_person(FULL_PERSON, idempotency_key="k")
    body = json.loads(upsert.calls.last.request.content)
    assert result.object_type == "contact"
    assert body["MailingCountry"] == "GB" and "Country" not in body
    assert "Company" not in body and "Status" not in body
    assert body["Journeys_Lifecycle_Stage__c"] == "mql"


async def test_company_and_deal_upserts(mock, http):
    account = mock.patch(f"{DATA}/sobjects/Account/Journeys_Domain__c/acme.com").mock(
        return_value=httpx.Response(
            201, json={"id": "0015g01", "success": True, "errors": [], "created": True}
        )
    )
    opportunity = mock.patch(f"{DATA}/sobjects/Opportunity/Journeys_Deal_Key__c/handoff-L1-1").mock(
        return_value=httpx.Response(
            201, json={"id": "0065g01", "success": True, "errors": [], "created": True}
        )
    )
    sf = client(http)
    company = Company(domain="WWW.Acme.com", name="Acme", employees=120, country="DE", industry="Software")
    assert (await sf.upsert_company(company, idempotency_key="c")).id == "0015g01"
    assert json.loads(account.calls.last.request.content) == {
        "Name": "Acme",
        "Industry": "Software",
        "NumberOfEmployees": 120,
        "BillingCountry": "DE",
    }
    deal = Deal(
        key="handoff-L1-1",
        name="Acme - inbound",
        stage="Qualification",
        amount=12000.0,
        currency="eur",
        close_date=date(2025, 3, 31),
        owner_id="0055g01",
        company_id="0015g01",
    )
    await sf.upsert_deal(deal, idempotency_key="d")
    assert json.loads(opportunity.calls.last.request.content) == {
        "Name": "Acme - inbound",
        "StageName": "Qualification",
        "Amount": 12000.0,
        "CloseDate": "2025-03-31",
        "OwnerId": "0055g01",
        "AccountId": "0015g01",
    }
    await client(http, multi_currency=True).upsert_deal(deal, idempotency_key="d")
    assert json.loads(opportunity.calls.last.request.content)["CurrencyIsoCode"] == "EUR"


async def test_task_is_created_once_read_before_write(mock, http):
    lookup = mock.get(f"{DATA}/query").mock(side_effect=[query_answer(), query_answer("00T1")])
    create = mock.post(f"{DATA}/sobjects/Task").mock(
        return_value=httpx.Response(201, json={"id": "00T1", "success": True, "errors": []})
    )
    sf = client(http)
    due = datetime(2025, 1, 2, 15, 30, tzinfo=UTC)
    task = Task(subject="Call Ada", body="About the demo", due_at=due, owner_id="0051", person_id="00Q1")
    first = await sf.create_task(task, idempotency_key="wf-1:task")
    again = await sf.create_task(task, idempotency_key="wf-1:task")

    assert (first.id, first.created) == ("00T1", True) and (again.id, again.created) == ("00T1", False)
    assert create.call_count == 1
    assert soql_of(lookup.calls[0].request) == (
        "SELECT Id FROM Task WHERE Journeys_Idempotency_Key__c = 'wf-1:task' LIMIT 1"
    )
    assert json.loads(create.calls.last.request.content) == {
        "Subject": "Call Ada",
        "Description": "About the demo",
        "ActivityDate": "2025-01-02",
        "ReminderDateTime": "2025-01-02T15:30:00Z",
        "IsReminderSet": True,
        "Priority": "Normal",
        "Status": "Not Started",
        "OwnerId": "0051",
        "WhoId": "00Q1",
        "Journeys_Idempotency_Key__c": "wf-1:task",
    }


async def test_note_and_meeting_bodies(mock, http):
    mock.get(f"{DATA}/query").mock(return_value=query_answer())
    task = mock.post(f"{DATA}/sobjects/Task").mock(
        return_value=httpx.Response(201, json={"id": "00T2", "success": True, "errors": []})
    )
    event = mock.post(f"{DATA}/sobjects/Event").mock(
        return_value=httpx.Response(201, json={"id": "00U1", "success": True, "errors": []})
    )
    sf = client(http)
    when = datetime(2025, 1, 2, 9, 0, tzinfo=UTC)
    note = await sf.add_note(Note(body="\nScored 80\nvisited pricing", occurred_at=when), idempotency_key="n")
    assert note.object_type == "note"
    assert json.loads(task.calls.last.request.content) == {
        "Subject": "Note: Scored 80",
        "Description": "\nScored 80\nvisited pricing",
        "ActivityDate": "2025-01-02",
        "Status": "Completed",
        "Priority": "Normal",
        "Journeys_Idempotency_Key__c": "n",
    }
    meeting = Meeting(subject="Demo", start=when, end=when + timedelta(minutes=30), person_id="00Q1")
    await sf.log_meeting(meeting, idempotency_key="m")
    assert json.loads(event.calls.last.request.content) == {
        "Subject": "Demo",
        "StartDateTime": "2025-01-02T09:00:00Z",
        "EndDateTime": "2025-01-02T09:30:00Z",
        "WhoId": "00Q1",
        "Journeys_Idempotency_Key__c": "m",
    }


async def test_owners_follow_next_records_url(mock, http):
    def user(i: str, email: str) -> dict[str, object]:
        return {"attributes": {"type": "User"}, "Id": i, "Email": email, "FirstName": "F", "LastName": "L"}

    first = httpx.Response(
        200,
        json={
            "totalSize": 3,
            "done": False,
            "nextRecordsUrl": "/services/data/v62.0/query/01gD0000002HU6KIAW-2000",
            "records": [user("0051", "a@x.com"), user("0052", "b@x.com")],
        },
    )
    last = httpx.Response(200, json={"totalSize": 3, "done": True, "records": [user("0053", "c@x.com")]})
    query = mock.get(f"{DATA}/query").mock(return_value=first)
    more = mock.get(f"{DATA}/query/01gD0000002HU6KIAW-2000").mock(return_value=last)
    owners = await client(http).list_owners()
    assert [o.id for o in owners] == ["0051", "0052", "0053"]
    assert soql_of(query.calls.last.request) == (
        "SELECT Id, Email, FirstName, LastName FROM User "
        "WHERE IsActive = true AND UserType = 'Standard' ORDER BY Id"
    )
    assert more.calls.last.request.headers["authorization"] == "Bearer 00Dxx!AQ.first"


async def test_validation_error_is_permanent_with_salesforce_message(mock, http):
    mock.patch(LEAD_PATH).mock(
        return_value=errors(
            400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [LastName]", ["LastName"]
        )
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert caught.value.status == 400
    assert "REQUIRED_FIELD_MISSING: Required fields are missing: [LastName] (fields: LastName)" in str(
        caught.value
    )


async def test_not_found_and_multiple_matches_are_permanent(mock, http):
    route = mock.patch(LEAD_PATH)
    route.mock(return_value=errors(404, "NOT_FOUND", "The requested resource does not exist"))
    with pytest.raises(PermanentPlatformError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert caught.value.status == 404 and "NOT_FOUND" in str(caught.value)
    route.mock(return_value=httpx.Response(300, json=["/services/data/v62.0/sobjects/Lead/00Q1", "/x/00Q2"]))
    with pytest.raises(PermanentPlatformError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert "external id matches 2 records" in str(caught.value)


async def test_expired_session_fetches_a_new_token_once(mock, http):
    mock.post(TOKEN_URL).mock(side_effect=[token_answer(f"t{n}") for n in range(1, 5)])
    upsert = mock.patch(LEAD_PATH).mock(
        side_effect=[
            errors(401, "INVALID_SESSION_ID", "Session expired or invalid"),
            httpx.Response(200, json={"id": "00Q1", "success": True, "errors": [], "created": False}),
        ]
    )
    result = await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert result.id == "00Q1"
    assert [c.request.headers["authorization"] for c in upsert.calls] == ["Bearer t1", "Bearer t2"]

    upsert.mock(
        side_effect=None, return_value=errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert caught.value.status == 401 and "INVALID_SESSION_ID" in str(caught.value)


async def test_ready_access_token_is_used_as_is_and_not_refreshed(mock, http):
    upsert = mock.patch(LEAD_PATH).mock(
        return_value=errors(401, "INVALID_SESSION_ID", "Session expired or invalid")
    )
    sf = SalesforceClient(http, base_url=INSTANCE, access_token="ready")
    with pytest.raises(PermanentPlatformError):
        await sf.upsert_person(FULL_PERSON, idempotency_key="k")
    assert upsert.calls.last.request.headers["authorization"] == "Bearer ready"
    assert not any(c.request.url == TOKEN_URL for c in mock.calls)


async def test_bad_client_credentials_carry_the_oauth_error(mock, http):
    mock.post(TOKEN_URL).mock(
        return_value=httpx.Response(
            400, json={"error": "invalid_client", "error_description": "invalid client credentials"}
        )
    )
    with pytest.raises(PermanentPlatformError) as caught:
        await client(http).list_owners()
    assert caught.value.status == 400 and "invalid_client: invalid client credentials" in str(caught.value)


async def test_request_limit_exceeded_is_a_long_rate_limit(mock, http):
    route = mock.patch(LEAD_PATH)
    route.mock(return_value=errors(403, "REQUEST_LIMIT_EXCEEDED", "TotalRequests Limit exceeded."))
    with pytest.raises(RateLimitedError) as caught:
        await client(http, daily_limit_retry_after=1200).upsert_person(FULL_PERSON, idempotency_key="k")
    assert caught.value.retry_after == 1200 and caught.value.status == 403
    route.mock(return_value=errors(403, "REQUEST_LIMIT_EXCEEDED", "ConcurrentPerOrgLongTxn Limit exceeded."))
    with pytest.raises(RateLimitedError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert caught.value.retry_after == 30


async def test_other_403_is_permanent(mock, http):
    mock.patch(LEAD_PATH).mock(return_value=errors(403, "INSUFFICIENT_ACCESS", "insufficient access rights"))
    with pytest.raises(PermanentPlatformError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert not isinstance(caught.value, RateLimitedError)


async def test_429_honours_retry_after(mock, http):
    mock.patch(LEAD_PATH).mock(
        return_value=httpx.Response(
            429,
            json=[{"message": "slow down", "errorCode": "REQUEST_LIMIT_EXCEEDED"}],
            headers={"Retry-After": "7"},
        )
    )
    with pytest.raises(RateLimitedError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert caught.value.retry_after == 7


@pytest.mark.parametrize(("status", "code"), [(500, "UNKNOWN_EXCEPTION"), (503, "SERVER_UNAVAILABLE")])
async def test_server_errors_are_transient(mock, http, status, code):
    mock.patch(LEAD_PATH).mock(return_value=errors(status, code, "try again"))
    with pytest.raises(TransientPlatformError) as caught:
        await client(http).upsert_person(FULL_PERSON, idempotency_key="k")
    assert not isinstance(caught.value, RateLimitedError) and code in str(caught.value)


async def test_properties_become_api_names_and_stages_are_mapped(mock, http):
    upsert = mock.patch(f"{DATA}/sobjects/Lead/Journeys_Lead_Id__c/L-1").mock(
        return_value=httpx.Response(200, json={"id": "00Q1", "success": True, "errors": [], "created": False})
    )
    opportunity = mock.patch(f"{DATA}/sobjects/Opportunity/Journeys_Deal_Key__c/d-1").mock(
        return_value=httpx.Response(200, json={"id": "0061", "success": True, "errors": [], "created": False})
    )
    sf = client(http, deal_stages={"qualified": "Qualification"})
    properties = {"journeys_utm_source": "google", "Industry": "Software", "Own_Field__c": "x"}
    person = Person(email="a@x.com", lead_id="L-1", last_name="A", company="B", properties=properties)
    await sf.upsert_person(person, idempotency_key="k")
    body = json.loads(upsert.calls.last.request.content)
    assert body["Journeys_Utm_Source__c"] == "google" and "journeys_utm_source" not in body
    assert body["Industry"] == "Software" and body["Own_Field__c"] == "x"
    deal = Deal(key="d-1", name="x", stage="qualified", close_date=date(2025, 1, 1))
    await sf.upsert_deal(deal, idempotency_key="d")
    assert json.loads(opportunity.calls.last.request.content)["StageName"] == "Qualification"
    await sf.upsert_deal(deal.model_copy(update={"stage": "Closed Won"}), idempotency_key="d")
    assert json.loads(opportunity.calls.last.request.content)["StageName"] == "Closed Won"


def test_soql_literals_are_escaped():
    assert soql_quote("Bob's \\ BBQ") == "'Bob\\'s \\\\ BBQ'"
    assert soql_quote('a"b\nc') == "'a\\\"b\\nc'"
    injected = soql_quote("x' OR Name != '")
    assert parse_soql(f"SELECT Id FROM Lead WHERE Email = {injected}").where == [
        ("Email", "=", "x' OR Name != '")
    ]


def test_configuration_is_checked():
    with pytest.raises(ValueError):
        SalesforceClient(httpx.AsyncClient(), base_url=LOGIN)
    with pytest.raises(ValueError):
        SalesforceFields(person_key="Bad Field' --")
    with pytest.raises(ValueError):
        client(httpx.AsyncClient(), api_version="latest")


# ---- against the sandbox ---------------------------------------------------------------------------


@pytest.fixture
def sandbox():
    return create_app(seed=1)


@pytest.fixture
async def sandbox_http(sandbox):
    async with in_process(sandbox) as client:
        yield client


def org(http: httpx.AsyncClient, **overrides: object) -> SalesforceClient:
    options: dict[str, object] = {"client_id": "3MVG9.sandbox", "client_secret": "secret"}
    options.update(overrides)
    return SalesforceClient(http, base_url="http://sandbox/salesforce", **options)  # type: ignore[arg-type]


def effects(sandbox, path_part: str = "") -> list[str | None]:
    return [
        c.get("effect")
        for c in sandbox.state.sandbox.calls
        if c["method"] != "GET" and path_part in c["path"] and "oauth2" not in c["path"]
    ]


async def test_sandbox_person_upsert_is_idempotent(sandbox, sandbox_http):
    sf = org(sandbox_http)
    person = Person(email="ada@acme.com", lead_id="lead-1", first_name="Ada", lifecycle_stage="sql")
    first = await sf.upsert_person(person, idempotency_key="k1")
    again = await sf.upsert_person(person, idempotency_key="k1")
    score = await sf.upsert_person(
        Person(email="ada@acme.com", lead_id="lead-1", lead_score=80), idempotency_key="k2"
    )

    assert first.created and not again.created and not score.created
    assert first.id == again.id == score.id and first.id.startswith("00Q") and len(first.id) == 18
    assert effects(sandbox) == ["created", "unchanged", "updated"]
    lead = sandbox.state.sandbox.records["salesforce_lead"][first.id]
    assert lead["Status"] == "Working - Contacted" and lead["Journeys_Lead_Score__c"] == 80
    assert lead["LastName"] == "[not provided]" and lead["FirstName"] == "Ada"  # fallback kept, name kept


async def test_sandbox_person_by_email_is_idempotent(sandbox, sandbox_http):
    sf = org(sandbox_http)
    person = Person(email="o'brien@x.com", last_name="O'Brien", company="X")
    first = await sf.upsert_person(person, idempotency_key="k")
    again = await sf.upsert_person(person.model_copy(update={"email": "O'Brien@X.com"}), idempotency_key="k")
    assert first.created and not again.created and first.id == again.id
    assert effects(sandbox) == ["created", "updated"]  # same lead, the email's case rewritten
    assert len(sandbox.state.sandbox.records["salesforce_lead"]) == 1


async def test_sandbox_company_and_deal_are_idempotent(sandbox, sandbox_http):
    sf = org(sandbox_http)
    company = await sf.upsert_company(Company(domain="acme.com"), idempotency_key="c")
    company_again = await sf.upsert_company(Company(domain="www.ACME.com", name="Acme"), idempotency_key="c")
    assert company.created and not company_again.created and company.id == company_again.id
    assert sandbox.state.sandbox.records["salesforce_account"][company.id]["Name"] == "Acme"

    owners = await sf.list_owners()
    deal = Deal(
        key="handoff-1", name="Acme", stage="Qualification", owner_id=owners[1].id, company_id=company.id
    )
    first = await sf.upsert_deal(deal, idempotency_key="d")
    again = await sf.upsert_deal(deal.model_copy(update={"amount": 500.0}), idempotency_key="d")
    assert first.created and not again.created and first.id == again.id
    opportunity = sandbox.state.sandbox.records["salesforce_opportunity"][first.id]
    assert opportunity["CloseDate"] == (date.today() + timedelta(days=30)).isoformat()
    assert opportunity["Amount"] == 500.0
    assert effects(sandbox, "/Opportunity/") == ["created", "updated"]


async def test_sandbox_activities_are_created_once(sandbox, sandbox_http):
    sf = org(sandbox_http)
    lead = await sf.upsert_person(
        Person(email="ada@acme.com", lead_id="L", last_name="L", company="C"), idempotency_key="p"
    )
    now = datetime.now(UTC)
    task = Task(subject="Call", due_at=now, person_id=lead.id, priority="HIGH")
    note = Note(body="Hot lead", occurred_at=now, person_id=lead.id)
    meeting = Meeting(subject="Demo", start=now, end=now + timedelta(hours=1), person_id=lead.id)
    for _ in range(2):
        results = [
            await sf.create_task(task, idempotency_key="wf:task"),
            await sf.add_note(note, idempotency_key="wf:note"),
            await sf.log_meeting(meeting, idempotency_key="wf:meeting"),
        ]
        if _ == 0:
            firsts = results
    assert all(r.created for r in firsts) and not any(r.created for r in results)
    assert [r.id for r in firsts] == [r.id for r in results]
    assert effects(sandbox, "/sobjects/Task") == ["created", "created"]  # one task, one note
    assert effects(sandbox, "/sobjects/Event") == ["created"]
    stored = sandbox.state.sandbox.records["salesforce_task"][firsts[0].id]
    assert stored["Priority"] == "High" and stored["Journeys_Idempotency_Key__c"] == "wf:task"


async def test_sandbox_owners_are_paged(sandbox, sandbox_http):
    owners = await org(sandbox_http).list_owners()
    assert len(owners) == 8  # active standard users: not the inactive one, not the automated process
    assert len({o.id for o in owners}) == 8 and "chloe.martin@example.com" in {o.email for o in owners}
    queries = [c for c in sandbox.state.sandbox.calls if "/query" in c["path"]]
    assert queries[0]["path"].endswith("/query") and "/query/01g" in queries[1]["path"]


async def test_sandbox_validation_errors(sandbox_http):
    sf = org(sandbox_http)
    with pytest.raises(PermanentPlatformError) as caught:
        await sf.upsert_person(
            Person(email="a@x.com", lead_id="x", properties={"Bogus": "1"}), idempotency_key="p"
        )
    assert "INVALID_FIELD: No such column 'Bogus' on sobject of type Lead" in str(caught.value)
    assert caught.value.status == 400
    with pytest.raises(PermanentPlatformError) as caught:
        await sf.upsert_person(
            Person(email="a@x.com", lead_id="x", properties={"Status": "Hot"}), idempotency_key="p"
        )
    assert "INVALID_OR_NULL_FOR_RESTRICTED_PICKLIST" in str(caught.value)
    with pytest.raises(PermanentPlatformError) as caught:
        await sf.upsert_person(Person(email="not-an-email", lead_id="x"), idempotency_key="p")
    assert "INVALID_EMAIL_ADDRESS" in str(caught.value)
    with pytest.raises(PermanentPlatformError) as caught:
        await sf.create_task(
            Task(subject="x", due_at=datetime.now(UTC), owner_id="005nobody"), idempotency_key="t"
        )
    assert "INVALID_CROSS_REFERENCE_KEY" in str(caught.value)


async def test_sandbox_injected_faults_are_classified(sandbox, sandbox_http):
    sf = org(sandbox_http)
    await sf.list_owners()  # token in hand
    sandbox.state.sandbox.faults["salesforce"] = Faults(fail_next=1, fail_status=429, retry_after_seconds=7)
    with pytest.raises(RateLimitedError) as caught:
        await sf.list_owners()
    assert caught.value.retry_after == 7
    sandbox.state.sandbox.faults["salesforce"] = Faults(fail_next=1, fail_status=503)
    with pytest.raises(TransientPlatformError) as transient:
        await sf.list_owners()
    assert transient.value.status == 503 and "SERVER_UNAVAILABLE" in str(transient.value)
    sandbox.state.sandbox.faults["salesforce"] = Faults(fail_next=1, fail_status=403)
    with pytest.raises(RateLimitedError) as limited:
        await sf.list_owners()
    assert limited.value.status == 403 and limited.value.retry_after == 900


async def test_sandbox_daily_allowance_runs_out(sandbox, sandbox_http):
    sf = org(sandbox_http)
    await sf.list_owners()
    used, limit = sf.api_usage or (0, 0)
    assert used == 2 and limit == 15_000
    sandbox.state.sandbox.records["salesforce_org"]["api_limit"] = used
    with pytest.raises(RateLimitedError) as caught:
        await sf.upsert_company(Company(domain="acme.com", name="Acme"), idempotency_key="c")
    assert caught.value.status == 403 and "TotalRequests Limit exceeded" in str(caught.value)
    assert "salesforce_account" not in sandbox.state.sandbox.records


async def test_sandbox_auth_failures(sandbox, sandbox_http):
    await org(sandbox_http).list_owners()  # registers the client id with its secret
    with pytest.raises(PermanentPlatformError) as caught:
        await org(sandbox_http, client_secret="wrong").list_owners()
    assert caught.value.status == 400 and "invalid_client" in str(caught.value)
    call_log = json.dumps(sandbox.state.sandbox.calls)
    assert "secret" in call_log and "client_secret=secret" not in call_log  # redacted

    with pytest.raises(PermanentPlatformError) as caught:
        await SalesforceClient(
            sandbox_http, base_url="http://sandbox/salesforce", access_token="forged"
        ).list_owners()
    assert caught.value.status == 401 and "INVALID_SESSION_ID" in str(caught.value)


async def test_sandbox_expired_session_is_renewed(sandbox, sandbox_http):
    sf = org(sandbox_http)
    await sf.list_owners()
    sandbox.state.sandbox.records["salesforce_tokens"].clear()  # the session times out
    assert len(await sf.list_owners()) == 8
    token_calls = [c for c in sandbox.state.sandbox.calls if c["path"] == "/services/oauth2/token"]
    assert len(token_calls) == 2


def test_sandbox_soql_subset():
    query = parse_soql(
        "select Id, Name from Lead where Email = 'a\\'b' and IsConverted = false order by Name desc limit 3"
    )
    assert query.fields == ["Id", "Name"] and query.sobject == "Lead"
    assert query.where == [("Email", "=", "a'b"), ("IsConverted", "=", False)]
    assert query.order_by == "Name" and query.descending and query.limit == 3
    for bad in (
        "SELECT Id FROM Lead WHERE Email = 'x",
        "SELECT FROM Lead",
        "SELECT Id FROM Lead WHERE Name = 'a\\qb'",
    ):
        with pytest.raises(SoqlError):
            parse_soql(bad)
