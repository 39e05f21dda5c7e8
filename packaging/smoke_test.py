"""Smoke-test an installed group-ipt (a wheel in a fresh venv), from outside any checkout.

Run it with the venv's own Python, from a folder that is not a checkout:

    cd /tmp && /tmp/venv/bin/python /path/to/packaging/smoke_test.py

It uses the standard library and the installed package only. It checks that the package
carries its forms and compiled catalogs, makes a demo data folder, serves the app with
``group-ipt serve``, logs in, opens the home page in every language and a PDF, makes a backup,
and checks that nothing was written inside the installed package. Exit 0: all good.
"""

from __future__ import annotations

import gettext
import html
import http.cookiejar
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

BIN = Path(sys.executable).parent
COMMAND = str(BIN / ("group-ipt.exe" if os.name == "nt" else "group-ipt"))


def run(*args: str, data_dir: Path) -> str:
    done = subprocess.run(
        [COMMAND, "--data-dir", str(data_dir), *args], capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode:
        raise SystemExit(f"FAIL group-ipt {' '.join(args)}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


def snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    """Size and modification time of every file in the package, bytecode caches aside."""
    return {
        str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in folder.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, bytes, str]:
        with self.opener.open(self.base + path, timeout=60) as r:
            return r.status, r.read(), r.headers.get("Content-Type", "")

    def post(self, path: str, form: dict, csrf_page: str) -> str:
        page = self.get(csrf_page)[1].decode("utf-8")
        token = re.search(r'name="csrf_token" value="([^"]+)"', page)
        if not token:
            raise SystemExit(f"FAIL no CSRF token on {csrf_page}")
        data = urllib.parse.urlencode({**form, "csrf_token": html.unescape(token.group(1))}).encode()
        with self.opener.open(self.base + path, data=data, timeout=60) as r:
            return r.read().decode("utf-8")


def main() -> None:
    import group_ipt
    from group_ipt.base import bundle

    package = Path(group_ipt.__file__).resolve().parent
    if bundle.from_checkout():
        raise SystemExit(f"FAIL group_ipt is imported from a checkout ({package}), not an installed package")
    for name in bundle.FOLDERS:
        if not (bundle.PACKAGE_DATA / name).is_dir():
            raise SystemExit(f"FAIL the package lacks {name}/")
    catalogs = sorted((bundle.PACKAGE_DATA / "translations").glob("*/LC_MESSAGES/messages.mo"))
    languages = [p.parent.parent.name for p in catalogs]
    if not languages:
        raise SystemExit("FAIL the package has no compiled catalog")
    before = snapshot(package)

    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        version = run("--version", data_dir=data).strip()
        if group_ipt.__version__ not in version:
            raise SystemExit(f"FAIL --version says {version!r}, the package is {group_ipt.__version__}")
        print(run("forms", "check", data_dir=data).strip())
        run("demo", data_dir=data)
        server = subprocess.Popen(
            [COMMAND, "--data-dir", str(data), "serve", "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        try:
            line = server.stdout.readline()
            found = re.search(r"(http://[0-9.]+:\d+)/", line)
            if not found:
                raise SystemExit(f"FAIL serve did not print its address: {line!r}{server.stdout.read()[:2000]}")
            browser = Browser(found.group(1))
            home = browser.post("/login", {"username": "coord", "password": "demo-pass"}, "/login")
            if f"group-ipt {group_ipt.__version__}" not in home:
                raise SystemExit("FAIL the footer does not show the version")
            for lang in ["en", *languages]:
                page = browser.post("/account/language", {"lang": lang}, "/account/")
                page = browser.get("/")[1].decode("utf-8")
                if f'<html lang="{lang}"' not in page:
                    raise SystemExit(f"FAIL the home page is not in {lang}")
                expected = "My sites"
                if lang != "en":
                    expected = gettext.translation("messages", str(data / "translations"), [lang]).gettext(expected)
                    if expected == "My sites":
                        raise SystemExit(f"FAIL 'My sites' has no {lang} translation in the data folder's catalogs")
                if html.escape(expected, quote=False) not in page:
                    raise SystemExit(f"FAIL the {lang} home page lacks {expected!r}")
                print(f"home page in {lang}: ok ({expected})")
            status, body, kind = browser.get("/forms/phq9/form.pdf")
            if status != 200 or not body.startswith(b"%PDF") or "pdf" not in kind:
                raise SystemExit(f"FAIL the PDF answered {status} {kind}")
            print(f"PDF: ok ({len(body)} bytes)")
        finally:
            server.terminate()
            server.wait(timeout=30)
        usb = Path(tmp) / "usb"
        usb.mkdir()
        print(run("backup", "--to", str(usb), data_dir=data).strip())
        time.sleep(0.1)
    after = snapshot(package)
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    if changed:
        raise SystemExit(f"FAIL files inside the installed package changed at run time: {changed[:10]}")
    print(f"smoke test passed: {version}, languages {', '.join(['en', *languages])}")


if __name__ == "__main__":
    main()
