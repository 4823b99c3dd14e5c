"""Browser tests: Playwright drives Debian's Chromium against pytest-django's live server.

Playwright cannot download its own browsers here, so the tests launch /usr/bin/chromium (or
``KEYTURN_CHROMIUM``). Without it they skip, unless ``KEYTURN_REQUIRE_BROWSER=1`` (CI says so),
where a missing browser stops the run instead.

Fixtures: ``browser`` (one Chromium per session), ``page`` (a fresh context per test, so
cookies never leak between tests; a screenshot in ``var/browser-failures/`` when the test
fails), ``console_errors`` (what the page logged as errors) and ``login`` (sign in through the
admin's form).
"""

import contextlib
import os
import re
from urllib.parse import urlparse

import pytest
from django.conf import settings
from django.db import connections
from django.test.utils import override_settings
from django.urls import reverse
from playwright.sync_api import Error as PlaywrightError
from playwright.sync_api import sync_playwright

from credentials import lifecycle
from credentials.models import Kind
from tests.states import ACTOR

HERE = os.path.dirname(os.path.abspath(__file__))
CHROMIUM = os.environ.get("KEYTURN_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
TIMEOUT_MS = 10_000
# The password tests/conftest.py gives every role user.
ROLE_PASSWORD = "correct horse battery staple"
FAILURE_SCREENSHOTS = settings.BASE_DIR / "var" / "browser-failures"
REPORTS = pytest.StashKey[dict]()


def pytest_collection_modifyitems(config, items):
    """Mark every test in this folder `browser`; skip them without Chromium, or fail if required."""
    mine = [item for item in items if str(item.path).startswith(HERE + os.sep)]
    for item in mine:
        item.add_marker(pytest.mark.browser)
        if item.get_closest_marker("django_db") is None:
            # The live server runs in another thread, so it only sees committed rows: tests are
            # transactional. Each flush also deletes the role groups the migrations created;
            # serialized rollback puts them back before the next browser test.
            item.add_marker(pytest.mark.django_db(transaction=True, serialized_rollback=True))
    if not mine or os.access(CHROMIUM, os.X_OK):
        return
    if os.environ.get("KEYTURN_REQUIRE_BROWSER") == "1":
        raise pytest.UsageError(
            f"KEYTURN_REQUIRE_BROWSER=1, but there is no Chromium at {CHROMIUM}: "
            "apt-get install -y chromium"
        )
    skip = pytest.mark.skip(
        reason=f"needs Chromium at {CHROMIUM}: apt-get install -y chromium (.ci/run does)"
    )
    for item in mine:
        item.add_marker(skip)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so `page` knows at teardown whether it failed."""
    report = yield
    item.stash.setdefault(REPORTS, {})[report.when] = report
    errors = item.funcargs.get("console_errors") if hasattr(item, "funcargs") else None
    if report.failed and errors:
        report.sections.append(("browser console errors", "\n".join(errors)))
    return report


@pytest.fixture(scope="session")
def _live_server_settings():
    # The live server speaks plain http, whatever .env says: no HTTPS redirect and no
    # Secure-only cookies (deployment settings, held by `check --deploy`). Static files come
    # from the finders by their plain names (tests/conftest.py's `_plain_static_storage`).
    with override_settings(
        SECURE_SSL_REDIRECT=False, SESSION_COOKIE_SECURE=False, CSRF_COOKIE_SECURE=False
    ):
        yield


@pytest.fixture(scope="session")
def live_server(_live_server_settings, live_server):
    """pytest-django's live server, started after the settings above are in place."""
    return live_server


@pytest.fixture(scope="session")
def browser():
    """One headless Chromium for the whole session."""
    # Playwright's sync API marks an asyncio loop as running on this thread from start() to
    # stop(). Django then refuses ORM calls from test code (SynchronousOnlyOperation): nothing
    # here is async, so tell Django so, for as long as Playwright runs.
    # It also keeps database connections per thread, but per asyncio context while a loop
    # runs (asgiref's thread-critical Local), so test code would get fresh connections that
    # lack what pytest-django put on the old ones (the serialized rollback contents) and that
    # nobody closes. Hand this thread's connections over, so there is only one set.
    thread_connections = {alias: connections[alias] for alias in connections}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        playwright = sync_playwright().start()
        for alias, connection in thread_connections.items():
            connections[alias] = connection
        try:
            chromium = playwright.chromium.launch(
                executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
            )
            try:
                yield chromium
            finally:
                chromium.close()
        finally:
            playwright.stop()


@pytest.fixture
def console_errors():
    """Console errors and uncaught exceptions of the test's page, in order; `page` fills it."""
    return []


@pytest.fixture
def page(browser, console_errors, request):
    """A page in a fresh browser context; screenshotted to var/browser-failures/ on failure."""
    context = browser.new_context(color_scheme="light", viewport={"width": 1280, "height": 800})
    context.set_default_timeout(TIMEOUT_MS)
    # Chromium asks every site for /favicon.ico on its own; the admin declares none, and that
    # 404 is not the page's error.
    context.route("**/favicon.ico", lambda route: route.fulfill(status=204))
    page = context.new_page()

    def on_console(message):
        if message.type == "error":
            console_errors.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: console_errors.append(f"uncaught: {error}"))
    try:
        yield page
        if any(report.failed for report in request.node.stash.get(REPORTS, {}).values()):
            FAILURE_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            name = re.sub(r"[^\w.-]+", "_", request.node.name)
            # Best effort: a crashed page has nothing to show, and the failure says why.
            with contextlib.suppress(PlaywrightError):
                page.screenshot(path=FAILURE_SCREENSHOTS / f"{name}.png", full_page=True)
    finally:
        context.close()


@pytest.fixture
def login(page, live_server):
    """Sign in through the admin's login form: ``login(user.username)``; returns the page.

    Fails the test, with the admin's error message, unless the browser lands on the admin.
    """

    def _login(username, password=ROLE_PASSWORD):
        login_path = reverse("admin:login")
        page.goto(live_server.url + login_path)
        page.fill("#id_username", username)
        page.fill("#id_password", password)
        page.click("#login-form [type=submit]")
        # Either the signed-in admin (its user tools) or the login page again, with an error.
        page.locator("#user-tools, .errornote").first.wait_for()
        error = page.locator(".errornote")
        assert error.count() == 0, f"signing in as {username!r} failed: {error.inner_text()}"
        assert not urlparse(page.url).path.startswith(login_path), page.url
        return page

    return _login


@pytest.fixture
def rotation_at_activity_check(app):
    """An API-key rotation with its new key made and deployed: its page polls for activity."""
    issued = lifecycle.credential_issue(actor=ACTOR, app=app, kind=Kind.API_KEY, name="Orders")
    rotation, _ = lifecycle.rotation_start(actor=ACTOR, credential=issued.credential)
    lifecycle.rotation_confirm(
        actor=ACTOR, rotation=rotation, step=0, ticked=[0, 1], overlap_seconds=3600
    )
    lifecycle.rotation_generate(actor=ACTOR, rotation=rotation, step=1)
    lifecycle.rotation_confirm(actor=ACTOR, rotation=rotation, step=2, ticked=[0, 1, 2])
    return rotation
