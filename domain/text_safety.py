"""What a person typed, made safe for where it is shown. A lead's name or company is theirs to
write: in a Slack message it must not become a mention (`<!channel>`), a link (`<https://...|x>`)
or a user ping; in an email subject or any header a newline must not start a header of its own."""

from __future__ import annotations

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]+")


def slack_escape(value: str) -> str:
    """Slack's own escaping for text it parses (mrkdwn): only `&`, `<` and `>` are control
    characters there, and their entities show as the characters themselves."""
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def header_safe(value: str) -> str:
    """One line: newlines and other control characters become a single space."""
    return _CONTROL.sub(" ", value).strip()
