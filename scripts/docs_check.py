"""Opens a running server's /docs in headless Chromium and checks what a person sees.

Usage: docs_check.py BASE_URL SCREENSHOT.png

Drives Debian's Chromium (`/usr/bin/chromium`, or $SWITCHBOARD_CHROMIUM) with
Playwright's Python package; Playwright's own browser download is never used.
Checks, failing with a message and exit status 1 otherwise:
  - the page's title is "Switchboard API" and Swagger UI shows the document's
    title;
  - every tag of the document is a visible group, among them the three
    surfaces ("escalation: ...", "agent: ...", "platform: ...") and "operator";
  - a path of each surface is visible as an operation;
  - the browser logged no console error (a Content-Security-Policy violation
    is one) and raised no page error;
  - the page asked for nothing but the server's own origin: every other
    request is aborted before it leaves the machine, and counts as a failure.
Writes a full-page screenshot to SCREENSHOT.png, and the first screen to
SCREENSHOT-top.png, and prints their paths.
"""

import json
import os
import sys
import urllib.parse
import urllib.request

try:
    from playwright.sync_api import sync_playwright
except ImportError as e:  # the test must fail, not skip, without the package
    sys.exit(f"FAIL: the Python package `playwright` is missing ({e}); scripts/test-all.sh installs it")

KNOWN_PATHS = [
    ("get", "/escalations/{escalation_id}/wait"),
    ("post", "/v1/cerebrals/{id}/message"),
    ("post", "/api/tenants/{id}/deploy"),
    ("get", "/openapi.json"),
]
SURFACE_PREFIXES = ["escalation: ", "agent: ", "platform: "]


def same_origin(url: str, origin: tuple) -> bool:
    """The server's own origin, or an inline `data:`/`blob:` URL (no request leaves the page)."""
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("data", "blob") or (parts.scheme, parts.netloc) == origin


def main() -> int:
    base, screenshot = sys.argv[1].rstrip("/"), sys.argv[2]
    origin = urllib.parse.urlsplit(base)
    origin = (origin.scheme, origin.netloc)
    chromium = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
    if not os.access(chromium, os.X_OK):
        sys.exit(f"FAIL: no Chromium at {chromium} (Debian's `chromium` package; scripts/test-all.sh installs it)")

    with urllib.request.urlopen(f"{base}/openapi.json") as res:
        doc = json.load(res)
    used_tags = sorted(
        {
            tag
            for item in doc["paths"].values()
            for op in item.values()
            if isinstance(op, dict)
            for tag in op.get("tags", [])
        }
    )

    problems = []
    requests, console_errors = [], []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        print(f"browser: Chromium {browser.version} via {chromium}")
        context = browser.new_context(viewport={"width": 1280, "height": 900})

        def gate(route):
            url = route.request.url
            if same_origin(url, origin):
                route.continue_()
            else:
                problems.append(f"request to another origin (aborted): {url}")
                route.abort()

        context.route("**/*", gate)
        page = context.new_page()
        # A guard against a hang, not a timed check: the suite runs many tests at once on two cores.
        page.set_default_timeout(120_000)
        page.on("request", lambda r: requests.append(r.url))
        page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: console_errors.append(f"page error: {e}"))
        page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url} ({r.failure})"))

        res = page.goto(f"{base}/docs", wait_until="load")
        if res is None or res.status != 200:
            problems.append(f"/docs answered {res.status if res else 'nothing'}")
        # Swagger UI renders once it has fetched and parsed /openapi.json.
        try:
            page.wait_for_selector(".opblock-tag-section .opblock", state="visible")
        except Exception:
            os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
            page.screenshot(path=screenshot, full_page=True)
            print(f"FAIL: Swagger UI did not render; screenshot: {os.path.abspath(screenshot)}")
            print("\n".join(f"  {e}" for e in console_errors + problems))
            raise
        page.wait_for_load_state("networkidle")

        title = page.title()
        if title != "Switchboard API":
            problems.append(f"page title is {title!r}, not 'Switchboard API'")
        heading = page.locator(".information-container .title").inner_text()
        if doc["info"]["title"] not in heading:
            problems.append(f"the heading {heading!r} does not show the document's title {doc['info']['title']!r}")

        shown_tags = page.eval_on_selector_all(".opblock-tag", "els => els.map(e => e.getAttribute('data-tag'))")
        for tag in used_tags:
            if not page.locator(f'.opblock-tag[data-tag="{tag}"]').is_visible():
                problems.append(f"tag group {tag!r} is not visible")
        for prefix in SURFACE_PREFIXES + ["operator"]:
            if not any(t.startswith(prefix) for t in shown_tags):
                problems.append(f"no tag group starting {prefix!r} among {shown_tags}")

        for method, path in KNOWN_PATHS:
            op = page.locator(f'.opblock-{method} .opblock-summary-path[data-path="{path}"]').first
            if op.count() == 0 or not op.is_visible():
                problems.append(f"{method.upper()} {path} is not shown")
                continue
            # Swagger UI puts a zero-width space before each '/' so long paths wrap.
            text = op.inner_text().replace("\u200b", "").strip()
            if text != path:
                problems.append(f"{method.upper()} {path} reads {text!r}")
        operations = page.locator(".opblock").count()

        os.makedirs(os.path.dirname(os.path.abspath(screenshot)), exist_ok=True)
        page.screenshot(path=screenshot, full_page=True)
        # The first screen as a person sees it; the full page is tall.
        top = screenshot[: -len(".png")] + "-top.png" if screenshot.endswith(".png") else screenshot + "-top.png"
        page.screenshot(path=top)
        browser.close()

    problems += [f"console error: {e}" for e in console_errors]
    others = [u for u in requests if not same_origin(u, origin)]
    problems += [f"request to another origin: {u}" for u in others]

    print(f"title: {title}; heading: {heading!r}")
    print(f"{len(shown_tags)} tag groups, {operations} operations; {len(requests)} requests, {len(others)} to another origin")
    print(f"screenshot: {os.path.abspath(screenshot)} (first screen: {os.path.abspath(top)})")
    if problems:
        print("\n".join(f"FAIL: {p}" for p in problems))
        return 1
    print("docs ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
