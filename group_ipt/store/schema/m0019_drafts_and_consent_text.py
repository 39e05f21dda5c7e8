"""A facilitator's unsaved session sheet, and which consent text a person agreed to.

``session_drafts`` keeps the marks of a sheet left half-filled to give a questionnaire
from inside the session (the sheet comes back as it was). It is local to the laptop
and its user: it has no site, so it never syncs, and saving the sheet removes it.

``consents.text_version`` and ``consents.text_language``: the version of the consent
text in ``forms/consent.yaml`` that was read aloud, and in which language (blank for
consents recorded before the text existed).
"""

SQL = """
create table session_drafts (
    session_id text not null,
    user_id text not null,
    form_json text not null,
    version integer not null,
    updated_at text not null,
    primary key (session_id, user_id)
);
alter table consents add column text_version integer;
alter table consents add column text_language text;
"""
