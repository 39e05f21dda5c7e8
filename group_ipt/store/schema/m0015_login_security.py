"""Login sessions kept on the server, and the record of lifted login throttles.

A signed cookie alone cannot be taken back: a copy made before logout kept working, and
a password change or a disabled account left the user's other sessions open. Each login
now has a row here, found by the hash of a random token kept in the cookie; logout,
a password change or reset and disabling the user end the rows, and every request
checks its row (ended, idle too long, too old, or the password changed since).

Failed logins slow down one username from one address (``login_attempts``); a password
reset or an admin lifts that, recorded in ``login_unlocks`` so the count starts again.
Both tables are local to one installation (no ``site_id``: they never sync).
"""

SQL = """
create table login_sessions (
    id text primary key,              -- sha256 of the token in the cookie, never the token
    user_id text not null references users(id),
    password_tag text not null,       -- a digest of the password hash the login was made with
    remote_addr text,
    created_at text not null,
    last_seen_at text not null,
    ended_at text,
    ended_reason text                 -- logout, password_changed, disabled, idle, expired
);
create index login_sessions_by_user on login_sessions(user_id, ended_at);

create table login_unlocks (
    id integer primary key,
    username text not null collate nocase,
    at text not null,
    reason text not null,             -- password_reset, admin
    actor_id text
);
create index login_unlocks_by_username on login_unlocks(username, at);
create index login_attempts_by_username_addr on login_attempts(username, remote_addr, at);
"""
