"""Web: everything Flask. The app factory (app.py), login, pages (views/), templates/ and
static/, translations at request time, headers.

The only layer, with group_ipt.cli, that imports flask, flask_babel, flask_login or flask_wtf."""
