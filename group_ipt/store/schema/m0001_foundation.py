"""Sites, users and their sites, the audit log, login attempts and programme settings."""

SQL = """
create table sites (
    id text primary key,              -- UUID, made where the site was created
    code text not null unique,        -- short code used in programme codes, e.g. KMP
    name text not null,
    default_language text not null default 'en',
    created_at text not null,
    updated_at text not null
);

create table users (
    id text primary key,
    username text not null unique collate nocase,
    display_name text not null,
    password_hash text not null,      -- werkzeug scrypt hash, never the password
    role text not null check (role in ('facilitator', 'coordinator', 'supervisor', 'admin')),
    language text,                    -- the user's chosen UI language, null = browser/site default
    active integer not null default 1,
    created_at text not null,
    updated_at text not null,
    last_login_at text
);

-- Which sites a user works at. A facilitator sees only these sites' data; an admin sees all.
create table user_sites (
    user_id text not null references users(id),
    site_id text not null references sites(id),
    primary key (user_id, site_id)
);
create index user_sites_by_site on user_sites(site_id);

-- Who changed what and when. Never updated or deleted by the app.
create table audit_log (
    id integer primary key,
    at text not null,
    user_id text references users(id),
    username text,                     -- kept as text so the log reads on its own
    action text not null,              -- e.g. create, update, disable, login, login_failed
    table_name text,
    record_id text,
    site_id text,
    before_json text,
    after_json text
);
create index audit_log_by_record on audit_log(table_name, record_id);
create index audit_log_by_at on audit_log(at);

-- Failed and successful logins, for throttling repeated failures.
create table login_attempts (
    id integer primary key,
    username text not null collate nocase,
    remote_addr text,
    at text not null,
    success integer not null
);
create index login_attempts_by_username on login_attempts(username, at);
create index login_attempts_by_addr on login_attempts(remote_addr, at);

-- Programme-wide settings that an admin may change (key/value, JSON values).
create table settings (
    key text primary key,
    value text not null,
    updated_at text not null
);
"""
