"""What every browser test shares: Studio started as `make run` starts it (gunicorn and a
django-q2 worker, SQLite, the local renderer, the demo account, every hosted provider answered
by the emulator as `make run-emulated` does it), Debian's Chromium driven by Playwright, pages
that fail a test on any console error or failed request, and the steps tests repeat.

One Studio serves the whole session; tests that change shared state (a budget) put it back."""

import contextlib
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from django.conf import settings
from playwright.sync_api import expect, sync_playwright

from tests import stack

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-gpu",
    "--disable-sync",
    "--no-first-run",
    "--autoplay-policy=no-user-gesture-required",
]
ADMIN_PASSWORD = "boss-password-for-tests"
CLEO_PASSWORD = "cleo-password-for-tests"
# Reports every Content-Security-Policy violation a page sees to the test (page fixture).
REPORT_CSP_VIOLATIONS = """
document.addEventListener("securitypolicyviolation", (e) => window.studioCspViolation({
  page: location.pathname, directive: e.violatedDirective, blocked: e.blockedURI,
  sample: e.sample, source: e.sourceFile + ":" + e.lineNumber,
}));
"""
DESKTOP = {"width": 1366, "height": 900}
PHONE = {"width": 390, "height": 844}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def studio_url(tmp_path_factory):
    """Studio as `make run` brings it up, on a throwaway database and media folder, with
    every hosted provider answered by the emulator as `make run-emulated` does it."""
    var = tmp_path_factory.mktemp("studio")
    with open(var / "serve.log", "wb") as log, contextlib.ExitStack() as running:
        emulator = started(
            running,
            [sys.executable, "-m", "emulator", "--port", str(free_port()), "--latency", "1",
             "--env-file", str(var / "emulator.env")],
            log=log,
        )  # fmt: skip
        # The emulator writes the settings that point Studio at it, as a developer reads them.
        deadline = time.monotonic() + 30
        while not (var / "emulator.env").exists():
            if emulator.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((var / "serve.log").read_text())
            time.sleep(0.05)
        emulated = dict(
            line.split("=", 1) for line in (var / "emulator.env").read_text().splitlines() if line
        )
        env = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "studio.settings",
            "SECRET_KEY": "browser-test-secret-" + "k" * 40,
            "DATABASE_URL": f"sqlite:///{var / 'studio.sqlite3'}",
            "MEDIA_ROOT": str(var / "media"),
            "STATIC_ROOT": str(var / "static"),
            "Q_WORKERS": "2",
            **emulated,
            # In the stack run: its own PostgreSQL database, Redis database and bucket.
            **stack.own_servers(),
        }
        manage = [sys.executable, str(ROOT / "manage.py")]
        for command in (
            ["migrate", "-v0"],
            ["collectstatic", "--noinput", "-v0"],
            ["demo_account"],
            ["createsuperuser", "--noinput", "--username", "boss", "--email", "boss@example.com"],
            # A second creator, for the admin's money actions (nobody grants their own account).
            [
                "shell",
                "-c",
                "from django.contrib.auth.models import User; "
                f"User.objects.create_user('cleo', password={CLEO_PASSWORD!r})",
            ],
        ):
            subprocess.run(
                [*manage, *command],
                env={**env, "DJANGO_SUPERUSER_PASSWORD": ADMIN_PASSWORD},
                check=True,
                cwd=ROOT,
                capture_output=True,
            )
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        server = started(running, [*manage, "serve", "--port", str(port)], log=log, env=env)
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/healthz").text == "ok":
                    break
            except httpx.TransportError:
                pass
            if server.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((var / "serve.log").read_text())
            time.sleep(0.2)
        yield url


def started(running: contextlib.ExitStack, command: list[str], *, log, env=None):
    """A process that `running` stops when it closes (so a failed set-up leaves none)."""
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=log, stderr=log)

    def stop() -> None:
        process.terminate()
        process.wait(timeout=30)

    running.callback(stop)
    return process


@pytest.fixture(scope="session")
def browser():
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    context = browser.new_context(accept_downloads=True)
    violations = watch_csp(context)
    page = context.new_page()
    page.csp_violations = violations
    errors = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("response", lambda r: r.status >= 400 and errors.append(f"HTTP {r.status} {r.url}"))
    page.on(
        "console",
        lambda msg: (
            msg.type == "error"
            and not msg.text.startswith("Failed to load resource")  # reported with its URL above
            and errors.append(msg.text)
        ),
    )
    page.expected_errors = []  # console errors a test provokes on purpose
    yield page
    context.close()
    unexpected = [e for e in errors if not any(x in e for x in page.expected_errors)]
    assert not unexpected, unexpected
    assert not violations, violations


def watch_csp(context) -> list:
    """The CSP violations any page of `context` reports, collected as they happen."""
    violations: list = []
    context.expose_binding("studioCspViolation", lambda source, found: violations.append(found))
    context.add_init_script(REPORT_CSP_VIOLATIONS)
    return violations


def sign_in(page, url):
    page.goto(url)
    expect(page).to_have_url(f"{url}/login/?next=/")
    page.get_by_label("Username").fill(settings.STUDIO_DEMO_USERNAME)
    page.get_by_label("Password").fill(settings.STUDIO_DEMO_PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="New clip")).to_be_visible()


def choose(page, name: str, value: str) -> None:
    """Pick a choice drawn as a segment, tile or card (a radio button underneath)."""
    page.locator(f"input[name='{name}'][value='{value}']").check()


def chosen(page, name: str):
    return page.locator(f"input[name='{name}']:checked")


def admin_sign_in(page, studio_url):
    page.goto(f"{studio_url}/admin/")
    page.get_by_label("Username").fill("boss")
    page.get_by_label("Password").fill(ADMIN_PASSWORD)
    page.get_by_role("button", name="Log in").click()


AXE = ROOT / "tests" / "vendor" / "axe.min.js"
SCREENSHOTS = ROOT / "var" / "screenshots"


def assert_accessible(page, what: str) -> None:
    """axe-core (tests/vendor, from the npm registry) finds no serious or critical problem
    on the page as it is now. Injected through the DevTools protocol, so the page's own
    Content-Security-Policy does not apply to it."""
    if not page.evaluate("() => typeof window.axe === 'object'"):
        page.evaluate(AXE.read_text())
    found = page.evaluate(
        """async () => (await axe.run(document, {resultTypes: ["violations"]})).violations
            .filter(v => v.impact === "serious" || v.impact === "critical")
            .map(v => `${v.id} (${v.impact}): ${v.help}; ` +
                      v.nodes.slice(0, 3).map(n => n.target.join(" ")).join(", "))"""
    )
    assert not found, f"{what}: " + "\n".join(found)


def screenshot(page, name: str) -> None:
    """The whole page as a creator would see it, into var/screenshots/ (looked at before an
    issue about it is resolved)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    width = page.viewport_size["width"]
    page.screenshot(path=SCREENSHOTS / f"{name}-{width}.png", full_page=True)
