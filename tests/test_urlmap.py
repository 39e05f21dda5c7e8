"""Every page of the app, walked from its URL map, asks for a login first."""

from __future__ import annotations

import pytest

from group_ipt.web.app import create_app
from group_ipt.web.auth import PUBLIC_ENDPOINTS

from .conftest import csrf_token, make_app


def sample_url(rule) -> str:
    values = {}
    for arg in rule.arguments:
        converter = rule._converters[arg].__class__.__name__
        values[arg] = 1 if converter in ("IntegerConverter", "FloatConverter") else "sample"
    return rule.build(values, append_unknown=False)[1]


def all_rules():
    import tempfile
    from pathlib import Path

    app = make_app(Path(tempfile.mkdtemp()) / "data")
    return list(app.url_map.iter_rules())


RULES = all_rules()


@pytest.mark.parametrize("rule", [r for r in RULES if r.endpoint not in PUBLIC_ENDPOINTS], ids=str)
def test_every_page_requires_login(client, rule):
    url = sample_url(rule)
    token = csrf_token(client, "/login")
    for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
        response = client.open(url, method=method, data={"csrf_token": token})
        if url.startswith("/api/"):
            assert response.status_code == 401, (method, url)
        else:
            assert response.status_code == 302, (method, url, response.status_code)
            assert response.headers["Location"].startswith("/login"), (method, url)


def test_public_endpoints_are_only_login_and_static():
    assert {"auth.login", "auth.choose_login_language", "static"} == PUBLIC_ENDPOINTS
    assert {r.endpoint for r in RULES} >= PUBLIC_ENDPOINTS


def test_static_and_login_are_public(client):
    assert client.get("/login").status_code == 200
    with client.get("/static/css/group-ipt-0.1.css") as static:  # closes the file the answer streams
        assert static.status_code == 200


def test_no_external_resources_in_pages(logged_in):
    html = logged_in.get("/").get_data(as_text=True)
    assert "http://" not in html and "https://" not in html


def test_app_factory_exposes_every_rule_walked():
    # A guard that the walk above is not empty or trivially small.
    assert len(RULES) >= 6
    assert callable(create_app)
