"""The server's side of form drafts kept on the phone (`<form data-draft>` in portal/suite.js).

A filing form carries a hidden `submission` key made when it is shown (`new_submission_key`); the
phone keeps what was typed, that key with it, until the server confirms the send. A view that has
taken a submission calls `confirm_sent(request, key)`; the next page it renders names the key
(`<body data-sent="...">`, from the `submission_states` context processor) and the phone drops that
draft. A send whose answer never came back leaves the draft in place: sent again, its key lands on
what was already filed (the service's submission key), never on a second copy. A key the service
refused because it already filed something else (the draft was edited after it was sent) is named
spent (`spend(request, key)`, `data-spent`): the phone keeps the text and takes the fresh key the
page came with, so sending again files the edited form as new.
"""

from __future__ import annotations

import uuid

SESSION_KEY = "portal.submissions"
REMEMBERED = 10


def new_submission_key() -> str:
    """A fresh key for a form that files something."""
    return uuid.uuid4().hex


def _remember(request, state: str, key: str) -> None:
    if key and hasattr(request, "session"):
        states = request.session.get(SESSION_KEY, {})
        states[state] = [*states.get(state, []), key][-REMEMBERED:]
        request.session[SESSION_KEY] = states


def confirm_sent(request, key: str) -> None:
    """Tell the phone, on the next page, that the form sent with `key` was taken."""
    _remember(request, "sent", key)


def spend(request, key: str) -> None:
    """Tell the phone, on the next page, that `key` filed something else and is not to be sent again."""
    _remember(request, "spent", key)


def submission_states(request) -> dict:
    """Context processor: the keys confirmed or spent since the last page (each named once)."""
    session = getattr(request, "session", None)
    states = session.pop(SESSION_KEY, {}) if session is not None and SESSION_KEY in session else {}
    return {
        "sent_submissions": " ".join(states.get("sent", [])),
        "spent_submissions": " ".join(states.get("spent", [])),
    }
