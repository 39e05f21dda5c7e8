"""Helpers for the participant, screening and referral tests (plain functions, no fixtures)."""

from __future__ import annotations

import re

from group_ipt.core import participants, users

from .conftest import csrf_token, post_form

HIDDEN_RE = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')


def register(db, name: str = "Sarah Namuli", *, site_code: str = "KMP", actor: str = "amina", **fields) -> dict:
    """Register a participant through the core, as the registration page does."""
    values = {"sex": "female", "age": "34", "village": "Kawempe", **fields}
    return participants.register(
        db,
        site=users.get_site(db, site_code),
        actor=users.get_user_by_username(db, actor),
        consents=["screening", "group"],
        name=name,
        **values,
    ).participant


def screening_form(client, participant_id: str, instrument_id: str = "phq9") -> dict:
    """Return the hidden fields of the screening form (CSRF token, submission key, ids, version)."""
    response = client.get(f"/screening/{participant_id}/{instrument_id}")
    assert response.status_code == 200, response.status_code
    fields = dict(HIDDEN_RE.findall(response.get_data(as_text=True)))
    fields.pop("next", None)
    return fields


def phq9(*values, **named) -> dict:
    """Return answers for PHQ-9 questions 1-9 (and q10 if given): ``phq9(1, 2, 0, ...)``."""
    answers = {f"answer_q{i}": "" if v is None else str(v) for i, v in enumerate(values, start=1)}
    answers.update({f"answer_{k}": "" if v is None else str(v) for k, v in named.items()})
    return answers


def submit(
    client, participant_id: str, answers: dict, instrument_id: str = "phq9", *, hidden: dict | None = None, **extra
):
    """Fill and send the screening form like a browser; ``extra`` adds or overrides fields."""
    fields = hidden or screening_form(client, participant_id, instrument_id)
    data = {**fields, "occasion": "screening", "administered_on": "2026-03-02", **answers, **extra}
    return client.post(f"/screening/{participant_id}/{instrument_id}", data=data)


def count(db, table: str) -> int:
    return db.execute(f"select count(*) from {table}").fetchone()[0]


__all__ = ["count", "csrf_token", "phq9", "post_form", "register", "screening_form", "submit"]
