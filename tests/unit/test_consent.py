"""Double opt-in's confirmation links: only the link the engine made confirms, only its own
submission, only for a month."""

from __future__ import annotations

import pytest

from domain.consent import VALID_SECONDS, TokenError, confirmation_token, confirmed_submission

SECRET = "a-deployment-secret"
SUBMISSION = "7740fe24-28e8-48cc-966a-b7ce132c8e21"
ISSUED = 1_796_385_600


def test_the_link_confirms_its_submission_for_a_month():
    token = confirmation_token(SECRET, SUBMISSION, ISSUED)
    assert confirmed_submission(SECRET, token, ISSUED + 60) == SUBMISSION
    assert confirmed_submission(SECRET, token, ISSUED + VALID_SECONDS) == SUBMISSION
    with pytest.raises(TokenError, match="expired"):
        confirmed_submission(SECRET, token, ISSUED + VALID_SECONDS + 1)


@pytest.mark.parametrize(
    "token",
    [
        "",
        "not-a-token",
        confirmation_token("another-deployment", SUBMISSION, ISSUED),
        confirmation_token(SECRET, SUBMISSION, ISSUED).replace(
            SUBMISSION, "00000000-0000-0000-0000-000000000000"
        ),
        confirmation_token(SECRET, SUBMISSION, ISSUED).replace(str(ISSUED), str(ISSUED + 1)),
        confirmation_token(SECRET, SUBMISSION, ISSUED) + "0",
    ],
    ids=["empty", "garbage", "other secret", "other submission", "other time", "longer"],
)
def test_a_link_not_made_here_or_altered_confirms_nothing(token):
    with pytest.raises(TokenError):
        confirmed_submission(SECRET, token, ISSUED + 60)
