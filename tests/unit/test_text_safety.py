"""What a lead typed cannot become a Slack mention or link, nor a header of its own in an email."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from temporalio.testing import ActivityEnvironment

from activities.contacts import personalize
from activities.notify import NotifyActivities
from domain.connectors import ChatNotifyInput, WriteResult
from domain.text_safety import header_safe, slack_escape
from platforms.ports import ChatMessage
from store.models import Lead

HOSTILE = Lead(
    lead_id="lead-1",
    first_name="<!channel>",
    last_name="<https://evil.example|Open this> & co",
    company="Acme\r\nBcc: everyone@example.com",
    email="x@example.com",
)


def test_slack_escaping_leaves_no_control_sequence_and_headers_stay_one_line():
    assert slack_escape("<!here> & <@U123>") == "&lt;!here&gt; &amp; &lt;@U123&gt;"
    assert header_safe("Acme\r\nBcc: a@b.c\u2028x") == "Acme Bcc: a@b.c x"
    # The template's own text is kept; only the person's values are escaped.
    assert personalize("*{name}*\nat {company}", HOSTILE, slack_escape).startswith(
        "*&lt;!channel&gt; &lt;https"
    )
    assert "\n" not in personalize("{company}", HOSTILE)


class RecordingChat:
    provider = "slack"

    def __init__(self) -> None:
        self.posted: list[ChatMessage] = []

    async def post_message(self, message: ChatMessage, *, idempotency_key: str) -> WriteResult:
        self.posted.append(message)
        return WriteResult(provider="slack", object_type="message", id=idempotency_key)


async def test_a_sales_alert_names_the_lead_without_pinging_the_channel():
    chat = RecordingChat()

    async def get_lead(lead_id: str) -> Lead:
        return HOSTILE

    store: Any = SimpleNamespace(get_lead=get_lead, sessions=None)
    notify = NotifyActivities(chat, store)
    blocks = [{"type": "section", "text": {"type": "mrkdwn", "text": "New MQL: *{name}* at {company}"}}]
    await ActivityEnvironment().run(
        notify.post_message,
        ChatNotifyInput(
            idempotency_key="k", channel="C0", text="New MQL: {name}", blocks=blocks, lead_id="lead-1"
        ),
    )
    [message] = chat.posted
    for text in (message.text, message.blocks[0]["text"]["text"] if message.blocks else ""):
        assert "<!channel>" not in text and "<https://evil.example" not in text, text
        assert "&lt;!channel&gt;" in text
