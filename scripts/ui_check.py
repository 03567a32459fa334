"""Drives the expert portal and the operator console in headless Chromium, as people use them.

Usage: ui_check.py BASE_URL SETUP.json SCREENSHOT_DIR

SETUP.json (written by tests/ui.rs) holds: api_key (an Escalation API key),
expert_token (an expert of domain "tax.us"), admin_email (a super-admin),
outbox (the directory the server mails into), tenant_id and tenant_name (a
running tenant to stop and redeploy).

Drives Debian's Chromium (`/usr/bin/chromium`, or $SWITCHBOARD_CHROMIUM) with
Playwright's Python package. Every step is checked; the first that fails
ends the run with "FAIL: ..." and exit status 1, after a screenshot of the
page as it was. The expert:
  - signs in with the token using the keyboard only;
  - sees a case created through the API appear in the queue without the page
    reloading;
  - opens it (query, context, candidates, metadata are shown), accepts it;
  - submits an answer the output_schema refuses and sees the Quality Gate's
    error next to the field it names, and the values kept;
  - fixes it and resolves; a client waiting on /escalations/{id}/wait gets
    the resolution with the answer the form made, and the callback receiver
    gets escalation.resolved.
The operator:
  - signs in by one-time code (read from the server's mail outbox);
  - sees queue depth per domain and priority go 0 → 2 → 1 as cases are
    created and one cancelled, without reloading;
  - stops a running tenant and deploys it again, watching its state;
  - sees the callback delivery on the webhooks page.
Also: no console error (a Content-Security-Policy violation is one), no page
error, no request to another origin, and no page wider than a phone's screen.
Writes every page at desktop (1280 px) and phone (390 px) width into
SCREENSHOT_DIR as NAME-desktop.png and NAME-phone.png.
"""

import http.server
import json
import os
import re
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

try:
    from playwright.sync_api import sync_playwright
except ImportError as e:  # the test must fail, not skip, without the package
    sys.exit(f"FAIL: the Python package `playwright` is missing ({e}); scripts/test-all.sh installs it")

DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
# A guard against a hang, not a timed check: the suite runs many tests at once on two cores.
TIMEOUT_MS = 60_000

SCHEMA = {
    "type": "object",
    "required": ["code", "amount", "approved"],
    "properties": {
        "code": {"type": "string", "pattern": "^[A-Z][0-9]{2}$", "description": "The billing code"},
        "amount": {"type": "number", "minimum": 0},
        "approved": {"type": "boolean"},
        "tier": {"enum": ["gold", "silver"]},
        "tags": {"type": "array", "items": {"type": "string"}},
        "address": {"type": "object", "properties": {"city": {"type": "string"}}},
    },
}
FIXED_ANSWER = {
    "code": "A12",
    "amount": 12.5,
    "approved": True,
    "tier": "gold",
    "tags": ["first", "second"],
    "address": {"city": "Lyon"},
}


class Failure(Exception):
    pass


def check(condition, message):
    if not condition:
        raise Failure(message)


class Api:
    def __init__(self, base, key):
        self.base, self.key = base, key

    def call(self, method, path, body=None, timeout=30):
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(self.base + path, data=data, method=method)
        req.add_header("X-API-Key", self.key)
        if data is not None:
            req.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                return res.status, json.load(res)
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")


class Receiver(http.server.BaseHTTPRequestHandler):
    """The client's callback endpoint, on loopback: answers 200 and keeps what it got."""

    received = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        Receiver.received.append(json.loads(body or b"null"))
        self.send_response(200)
        self.end_headers()

    def log_message(self, *args):
        pass


def latest_code(outbox, to, after):
    """The 6-digit code of the newest mail to `to` written after `after` (epoch seconds)."""
    deadline = time.time() + 60
    while time.time() < deadline:
        mails = []
        for name in sorted(os.listdir(outbox)) if os.path.isdir(outbox) else []:
            path = os.path.join(outbox, name)
            if name.endswith(".json") and not name.startswith(".") and os.path.getmtime(path) >= after - 1:
                with open(path) as f:
                    mail = json.load(f)
                if mail.get("to") == to:
                    mails.append(mail)
        if mails:
            m = re.search(r"\b(\d{6})\b", mails[-1]["text"])
            if m:
                return m.group(1)
        time.sleep(0.1)
    raise Failure(f"no code was mailed to {to} in {outbox}")


def main() -> int:
    base, setup_path, shots = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
    with open(setup_path) as f:
        setup = json.load(f)
    os.makedirs(shots, exist_ok=True)
    chromium = os.environ.get("SWITCHBOARD_CHROMIUM", "/usr/bin/chromium")
    if not os.access(chromium, os.X_OK):
        sys.exit(f"FAIL: no Chromium at {chromium} (Debian's `chromium` package; scripts/test-all.sh installs it)")
    origin = urllib.parse.urlsplit(base)
    origin = (origin.scheme, origin.netloc)
    api = Api(base, setup["api_key"])

    receiver = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    callback = f"http://127.0.0.1:{receiver.server_address[1]}/hooks"

    problems, written = [], []

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, headless=True)
        print(f"browser: Chromium {browser.version} via {chromium}")

        def new_page():
            context = browser.new_context(viewport=DESKTOP)

            def gate(route):
                parts = urllib.parse.urlsplit(route.request.url)
                if (parts.scheme, parts.netloc) == origin or parts.scheme in ("data", "blob"):
                    route.continue_()
                else:
                    problems.append(f"request to another origin (aborted): {route.request.url}")
                    route.abort()

            context.route("**/*", gate)
            page = context.new_page()
            page.set_default_timeout(TIMEOUT_MS)
            def console(m):
                # The 422 page of a refused resolution is the document itself, as designed.
                if m.type == "error" and "status of 422" not in m.text:
                    problems.append(f"console {m.type}: {m.text}")

            page.on("console", console)
            page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
            return page

        def shoot(page, name):
            """The page at desktop and phone width; at phone width nothing may be wider than the screen."""
            for label, size in (("desktop", DESKTOP), ("phone", PHONE)):
                page.set_viewport_size(size)
                page.wait_for_timeout(100)
                path = os.path.join(shots, f"{name}-{label}.png")
                page.screenshot(path=path, full_page=True)
                written.append(path)
                if label == "phone":
                    wide = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
                    check(wide <= 1, f"{name}: the page is {wide}px wider than a phone's screen")
            page.set_viewport_size(DESKTOP)

        def mark(page):
            """A value that survives until the page reloads or navigates."""
            page.evaluate("window.__stay = 'same page'")

        def same_page(page):
            return page.evaluate("window.__stay") == "same page"

        page = None
        try:
            # ---- the expert -----------------------------------------------------------
            page = new_page()
            page.goto(f"{base}/portal")
            check(page.url.endswith("/portal/login"), f"/portal without a session went to {page.url}")
            shoot(page, "portal-login")
            # Keyboard only: the token field has focus; Enter submits.
            check(page.evaluate("document.activeElement.id") == "token", "the token field has focus")
            page.keyboard.type(setup["expert_token"])
            with page.expect_navigation():
                page.keyboard.press("Enter")
            check(page.url.endswith("/portal"), f"signed in, at {page.url}")
            cookies = {c["name"]: c for c in page.context.cookies()}
            session = cookies.get("sb_expert")
            check(session is not None, f"a session cookie was set: {list(cookies)}")
            check(session["httpOnly"] and session["sameSite"] == "Strict", f"the session cookie is HttpOnly and SameSite=Strict: {session}")
            check(page.evaluate("document.cookie").find("sb_expert") < 0, "scripts cannot read the session")
            page.wait_for_selector("#queue .empty")
            shoot(page, "portal-queue-empty")

            mark(page)
            status, created = api.call("POST", "/escalations", {
                "domain": "tax.us",
                "query": "Which billing code applies to this follow-up visit?",
                "priority": "urgent",
                "context": {"visit": {"minutes": 25, "notes": "Follow-up; no procedure."}},
                "candidates": [{"answer": {"code": "B20", "amount": 10}, "confidence": 0.4, "source": "model-v2"}],
                "metadata": {"claim": "CLM-1001"},
                "output_schema": SCHEMA,
                "callback_url": callback,
            })
            check(status == 201, f"create escalation: {status} {created}")
            case = created["id"]
            row = page.wait_for_selector(f'#queue tr[data-case="{case}"]')
            check(same_page(page), "the new case appeared without the page reloading")
            check("Which billing code" in row.inner_text(), f"the row shows the query: {row.inner_text()}")
            sla = page.locator(f'#queue tr[data-case="{case}"] time.sla')
            first = sla.inner_text()
            check(re.search(r"\d+m \d\ds left|\d+s left", first) is not None, f"an SLA countdown: {first!r}")
            page.wait_for_function(
                "([sel, before]) => document.querySelector(sel) && document.querySelector(sel).textContent !== before",
                arg=[f'#queue tr[data-case="{case}"] time.sla', first],
            )
            shoot(page, "portal-queue")

            # The client waits for the answer meanwhile.
            waited = {}

            def wait_for_resolution():
                waited["result"] = api.call("GET", f"/escalations/{case}/wait?timeout=60", timeout=90)

            waiter = threading.Thread(target=wait_for_resolution)
            waiter.start()

            page.click(f'#queue tr[data-case="{case}"] a')
            page.wait_for_selector("h2#query-h")
            text = page.inner_text("main")
            for shown in ["Which billing code", "Follow-up; no procedure.", "model-v2", "B20", "CLM-1001", "urgent", "tax.us"]:
                check(shown in text, f"the case page shows {shown!r}")
            shoot(page, "portal-case")
            with page.expect_navigation():
                page.click("text=Accept case")
            check("in review" in page.inner_text(".meta-row"), "accepted: in review")

            def fill(code):
                page.get_by_label("code", exact=False).first.fill(code)
                page.get_by_label("amount").fill("12.5")
                page.get_by_label("approved").select_option("true")
                page.get_by_label("tier").select_option('"gold"')
                page.get_by_label("tags").fill("first\nsecond")
                page.get_by_label("city").fill("Lyon")
                page.fill("#confidence", "0.9")
                page.fill("#reasoning", "Established patient, 25 minutes, no procedure.")

            fill("bad")
            with page.expect_navigation():
                page.click("text=Submit resolution")
            code_input = page.get_by_label("code", exact=False).first
            code_id = code_input.get_attribute("id")
            error = page.locator(f"#{code_id}-error")
            check(error.count() == 1, "the Quality Gate's error is shown at the code field")
            check("does not match" in error.inner_text(), f"the error says why: {error.inner_text()!r}")
            check(code_input.get_attribute("aria-invalid") == "true", "the field is marked invalid")
            check(f"{code_id}-error" in (code_input.get_attribute("aria-describedby") or ""), "the error describes the field")
            check(code_input.input_value() == "bad", "what was typed is kept")
            check(page.get_by_label("city").input_value() == "Lyon", "the other fields are kept")
            check(page.evaluate("document.activeElement.id") == "form-alert", "focus moves to the error summary")
            check(page.locator(f'#form-alert a[href="#{code_id}"]').count() == 1, "the summary links to the field")
            shoot(page, "portal-case-error")

            code_input.fill("A12")
            with page.expect_navigation():
                page.click("text=Submit resolution")
            page.wait_for_selector("h2#res-h")
            check("resolved" in page.inner_text(".meta-row"), "resolved")
            shoot(page, "portal-case-resolved")

            waiter.join(90)
            status, detail = waited.get("result", (None, None))
            check(status == 200 and detail["status"] == "resolved", f"/wait returned the resolution: {status} {detail}")
            check(detail["resolution"]["answer"] == FIXED_ANSWER, f"the answer the form made: {detail['resolution']['answer']}")
            check(detail["resolution"]["confidence"] == 0.9, f"confidence: {detail['resolution']}")
            deadline = time.time() + 30
            while time.time() < deadline and not any(r and r.get("event") == "escalation.resolved" for r in Receiver.received):
                time.sleep(0.1)
            check(any(r and r.get("event") == "escalation.resolved" for r in Receiver.received), f"callback got escalation.resolved: {Receiver.received}")
            page.goto(f"{base}/portal")
            page.wait_for_selector("#queue .empty")
            shoot(page, "portal-queue-after")
            print(f"portal ok: case {case} resolved through the form; /wait returned it")

            # ---- the operator -----------------------------------------------------------
            page = new_page()
            page.goto(f"{base}/console")
            check(page.url.endswith("/console/login"), f"/console without a session went to {page.url}")
            shoot(page, "console-login")
            asked = time.time()
            page.fill("#email", setup["admin_email"])
            with page.expect_navigation():
                page.click("text=Send me a code")
            shoot(page, "console-code")
            page.fill("#code", latest_code(setup["outbox"], setup["admin_email"], asked))
            with page.expect_navigation():
                page.click("button:has-text('Sign in')")
            check(page.url.endswith("/console"), f"signed in, at {page.url}")
            page.wait_for_selector("#queues")

            def depth():
                cell = page.locator('#queues td[data-domain="legal.eu"][data-priority="standard"]')
                return cell.inner_text() if cell.count() else "0"

            check(depth() == "0", f"nothing queued for legal.eu yet: {depth()}")
            mark(page)
            queued = []
            for n in range(2):
                status, body = api.call("POST", "/escalations", {"domain": "legal.eu", "query": f"Clause {n} under EU law?"})
                check(status == 201, f"create: {status} {body}")
                queued.append(body["id"])
            page.wait_for_selector('#queues td[data-domain="legal.eu"][data-priority="standard"]:text-is("2")')
            check(same_page(page), "the queue depth changed without reloading")
            check(page.locator("#ttr svg").count() == 1, "the time-to-route chart is drawn")
            shoot(page, "console-routing")
            status, body = api.call("POST", f"/escalations/{queued[0]}/cancel", {})
            check(status == 200, f"cancel: {status} {body}")
            page.wait_for_selector('#queues td[data-domain="legal.eu"][data-priority="standard"]:text-is("1")')
            check(same_page(page), "and changed again without reloading")
            print("console ok: queue depth 0 -> 2 -> 1 live")

            tid, tname = setup["tenant_id"], setup["tenant_name"]
            page.click("nav >> text=Tenants")
            row = f'#tenants tr[data-tenant="{tid}"]'
            page.wait_for_selector(f'{row} [data-status="running"]')
            shoot(page, "console-tenants")
            with page.expect_navigation():
                page.click(f'{row} button[aria-label="Stop {tname}"]')
            page.wait_for_selector(f'{row} [data-status="stopped"]')
            check("Stopped" in page.inner_text("p.notice"), "the stop is confirmed")
            shoot(page, "console-tenant-stopped")
            with page.expect_navigation():
                page.click(f'{row} button[aria-label="Deploy {tname}"]')
            mark(page)
            page.wait_for_selector(f'{row} [data-status="running"]')
            print("console ok: tenant stopped and deployed again")

            page.click("nav >> text=Webhooks")
            page.wait_for_selector("#deliveries")
            deliveries = page.inner_text("#deliveries")
            check("escalation.resolved" in deliveries and callback in deliveries, f"the callback delivery is listed: {deliveries}")
            shoot(page, "console-webhooks")
            with page.expect_navigation():
                page.click("button:has-text('Sign out')")
            check(page.url.endswith("/console/login"), f"signed out, at {page.url}")
            page.goto(f"{base}/console")
            check(page.url.endswith("/console/login"), "the session is over")
        except Exception as e:
            if page is not None:
                path = os.path.join(shots, "failure.png")
                try:
                    page.screenshot(path=path, full_page=True)
                    print(f"screenshot of the failure: {path} at {page.url}")
                except Exception:
                    pass
            print(f"FAIL: {e}")
            print("\n".join(f"  {p}" for p in problems))
            return 1
        finally:
            browser.close()
            receiver.shutdown()

    if problems:
        print("FAIL:\n" + "\n".join(f"  {p}" for p in problems))
        return 1
    print(f"screenshots ({len(written)}): {os.path.abspath(shots)}")
    print("ui ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
