#!/usr/bin/env python3
"""Drives a Switchboard server with the real `cerolabs` 0.1.0 SDK, unchanged.

Usage:
    cerolabs_check.py BASE_URL API_KEY EXPERT_TOKEN [TENANT_ID]

or the same through CERO_BASE_URL, CERO_API_KEY, CERO_EXPERT_TOKEN and
CERO_TENANT_ID. API_KEY (cero_...) belongs to a fresh tenant with no
escalations; EXPERT_TOKEN (exp_...) belongs to an available expert of that
tenant serving `healthcare.rcm`, the only expert that can take its cases.

Every SDK call the package makes is exercised except `usage()` (its `Usage`
class cannot accept the documented `avg_resolution_time`). The expert side
(accept, resolve) goes straight to the server's expert portal with urllib.

Prints one line per check and exits 1 at the first failure, with the last
HTTP exchanges the SDK made.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import importlib.metadata
import json
import math
import os
import re
import sys
import threading
import time
import traceback
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from pathlib import Path

# ---- the SDK under test: the released 0.1.0, as installed from PyPI -----------

SDK_VERSION = "0.1.0"
# sha256 of the files in the cerolabs-0.1.0-py3-none-any.whl published on PyPI.
SDK_SHA256 = {
    "cerolabs/__init__.py": "f6394c0e23fc30b28ba0b09d9c6340f991dbd9757ceaed48689e3c6b91a6d25b",
    "cerolabs/client.py": "1f1e49560326893aff4aed5c7213c92957d72dc3b04e3f28527c5fc2679232c6",
}

try:
    import httpx
    import cerolabs
    from cerolabs import (
        AsyncCero,
        Cero,
        CeroError,
        CeroInsufficientCreditsError,
        CeroTimeoutError,
        DomainInfo,
        EscalationDetail,
        EscalationResponse,
        Resolution,
    )
except ImportError as exc:  # pragma: no cover - environment problem
    print(
        f"FAIL: setup: cannot import the cerolabs SDK with {sys.executable}: {exc}. "
        f"Install it with `{sys.executable} -m pip install cerolabs=={SDK_VERSION}`",
        flush=True,
    )
    sys.exit(1)

DOMAIN = "healthcare.rcm"
SCHEMA = {
    "type": "object",
    "properties": {
        "appeal_recommended": {"type": "boolean"},
        "reasoning": {"type": "string"},
    },
    "required": ["appeal_recommended", "reasoning"],
}
ANSWER = {"appeal_recommended": True, "reasoning": "Modifier 25 was documented; CO-50 is appealable."}
CONFIDENCE = 0.9
REASONING = "Checked the payer's medical-necessity policy against the note."

SLA_SECONDS = {"urgent": 5 * 60, "standard": 30 * 60, "batch": 24 * 3600}
RFC3339_Z = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(\.\d+)?Z$")


# ---- output -------------------------------------------------------------------

class Traffic:
    """Every exchange the SDK's httpx client made: for diagnosis and timing."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.exchanges: list[dict] = []
        self._started: dict[int, float] = {}

    def on_request(self, request: httpx.Request) -> None:
        with self.lock:
            self._started[id(request)] = time.monotonic()

    def on_response(self, response: httpx.Response) -> None:
        response.read()
        now = time.monotonic()
        request = response.request
        with self.lock:
            started = self._started.pop(id(request), now)
            self.exchanges.append(
                {
                    "method": request.method,
                    "url": str(request.url),
                    "path": request.url.path,
                    "query": dict(request.url.params),
                    "status": response.status_code,
                    "seconds": now - started,
                    "body": response.text,
                }
            )

    def mark(self) -> int:
        with self.lock:
            return len(self.exchanges)

    def since(self, mark: int) -> list[dict]:
        with self.lock:
            return list(self.exchanges[mark:])

    def last(self, n: int = 6) -> list[dict]:
        with self.lock:
            return list(self.exchanges[-n:])


TRAFFIC = Traffic()


def say(line: str) -> None:
    print(line, flush=True)


def fail(name: str, message: str) -> None:
    say(f"FAIL: {name}: {message}")
    recent = TRAFFIC.last()
    if recent:
        say("  last HTTP exchanges made through the SDK (oldest first):")
        for x in recent:
            body = x["body"] if len(x["body"]) <= 1500 else x["body"][:1500] + "..."
            say(f"    {x['method']} {x['url']} -> {x['status']} in {x['seconds']:.2f}s: {body}")
    sys.exit(1)


def check(name: str, fn, /, *args, **kwargs):
    """Runs one check: prints `ok: name`, or reports the failure and exits 1."""
    try:
        result = fn(*args, **kwargs)
    except AssertionError as exc:
        fail(name, str(exc) or "assertion failed\n" + traceback.format_exc())
    except Exception as exc:  # noqa: BLE001 - any SDK exception is a failure to report
        extra = ""
        if isinstance(exc, CeroError):
            extra = f" (status_code={exc.status_code!r}, detail={exc.detail!r})"
        fail(name, f"{type(exc).__name__}: {exc}{extra}\n{traceback.format_exc()}")
    say(f"ok: {name}")
    return result


def expect_cero_error(fn, status: int | None, /, *args, **kwargs) -> CeroError:
    """`fn` must raise the SDK's CeroError (not one of its subclasses) with `status`;
    errors the server sends must carry the Escalation API's `{"detail": "..."}` body."""
    try:
        value = fn(*args, **kwargs)
    except CeroError as exc:
        assert type(exc) is CeroError, f"expected a plain CeroError, got {type(exc).__name__}: {exc}"
        assert exc.status_code == status, (
            f"expected status_code {status}, got {exc.status_code!r}: {exc} (detail={exc.detail!r})"
        )
        if status is not None:
            assert isinstance(exc.detail, dict) and isinstance(exc.detail.get("detail"), str), (
                f'a {status} must have a {{"detail": "..."}} body, got {exc.detail!r}'
            )
        return exc
    raise AssertionError(f"expected CeroError({status}), but the call returned {value!r}")


# ---- helpers --------------------------------------------------------------------

def parse_time(value, what: str) -> datetime:
    assert isinstance(value, str), f"{what} must be a string, got {value!r}"
    m = RFC3339_Z.match(value)
    assert m, f"{what} must be RFC 3339 UTC with Z, got {value!r}"
    frac = (m.group(2) or ".0")[1:7].ljust(6, "0")
    return datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S").replace(
        microsecond=int(frac), tzinfo=timezone.utc
    )


def same_time(x: str, y: str) -> bool:
    """The same instant, to the millisecond (stores may keep different precisions)."""
    return abs((parse_time(x, "time") - parse_time(y, "time")).total_seconds()) < 0.001


def assert_uuid(value, what: str) -> None:
    assert isinstance(value, str), f"{what} must be a string, got {value!r}"
    try:
        uuid.UUID(value)
    except ValueError:
        raise AssertionError(f"{what} must be a UUID, got {value!r}") from None


def assert_sla(created_at: str, sla_deadline: str, priority: str, what: str) -> None:
    created = parse_time(created_at, f"{what}.created_at")
    deadline = parse_time(sla_deadline, f"{what}.sla_deadline")
    span = (deadline - created).total_seconds()
    want = SLA_SECONDS[priority]
    assert abs(span - want) <= 5, (
        f"{what}: sla_deadline - created_at is {span}s, expected {want}s for {priority}"
    )


def assert_summary(item, what: str) -> None:
    """An EscalationResponse: the SDK built it from exactly the six fields."""
    assert isinstance(item, EscalationResponse), f"{what}: got {type(item).__name__}"
    assert_uuid(item.id, f"{what}.id")
    for field in ("status", "priority", "domain"):
        assert isinstance(getattr(item, field), str), f"{what}.{field} must be a string: {item!r}"
    assert_sla(item.created_at, item.sla_deadline, item.priority, what)


def assert_ids(items, expected: list[str], what: str, exact: bool = True) -> None:
    """`exact=False`: the list starts with `expected` (a tenant reused from an
    earlier run has older escalations after ours)."""
    got = [i.id for i in items]
    ok = got == expected if exact else got[: len(expected)] == expected
    assert ok, f"{what}: expected ids {expected}{'' if exact else ' first'}, got {got}"


def resolution_matches(res, escalation_id: str, expert_id: str, what: str) -> None:
    assert isinstance(res, Resolution), f"{what}: got {type(res).__name__}"
    assert res.escalation_id == escalation_id, f"{what}.escalation_id: {res.escalation_id!r}"
    assert res.expert_id == expert_id, f"{what}.expert_id: {res.expert_id!r}, expected {expert_id!r}"
    assert res.answer == ANSWER, f"{what}.answer: {res.answer!r}"
    assert math.isclose(res.confidence, CONFIDENCE), f"{what}.confidence: {res.confidence!r}"
    assert res.reasoning == REASONING, f"{what}.reasoning: {res.reasoning!r}"
    parse_time(res.resolved_at, f"{what}.resolved_at")


def last_json(exchanges: list[dict], method: str, path_end: str):
    for x in reversed(exchanges):
        if x["method"] == method and x["path"].endswith(path_end):
            return x, json.loads(x["body"]) if x["body"] else None
    raise AssertionError(f"no {method} ...{path_end} among {[(x['method'], x['url']) for x in exchanges]}")


class Portal:
    """The server's expert portal and registration, spoken to directly."""

    def __init__(self, base_url: str, token: str) -> None:
        self.base_url = base_url
        self.token = token

    def call(self, method: str, path: str, body=None, headers=None, timeout: float = 30.0):
        h = dict(headers or {})
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        elif method == "POST":
            data = b""
        req = urllib.request.Request(self.base_url + path, data=data, method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                raw = r.read()
                status = r.status
        except urllib.error.HTTPError as e:
            raw = e.read()
            status = e.code
        try:
            payload = json.loads(raw) if raw else None
        except ValueError:
            payload = raw.decode(errors="replace")
        return status, payload

    def expert(self, method: str, path: str, body=None):
        return self.call(method, path, body, {"X-Expert-Token": self.token})

    def my_cases(self) -> list:
        status, payload = self.expert("GET", "/experts/me/escalations")
        assert status == 200, f"GET /experts/me/escalations -> {status}: {payload!r}"
        if isinstance(payload, dict):  # tolerate a wrapped list
            lists = [v for v in payload.values() if isinstance(v, list)]
            assert lists, f"GET /experts/me/escalations: no list in {payload!r}"
            payload = lists[0]
        assert isinstance(payload, list), f"GET /experts/me/escalations: not a list: {payload!r}"
        return payload


class Resolver(threading.Thread):
    """The expert: waits for the case whose query is `marker` to be routed to them,
    lets the SDK block in /wait a moment, then accepts and resolves it."""

    def __init__(self, portal: Portal, marker: str) -> None:
        super().__init__(daemon=True)
        self.portal = portal
        self.marker = marker
        self.escalation_id: str | None = None
        self.resolved_at: float | None = None
        self.error: str | None = None

    def run(self) -> None:
        try:
            self._run()
        except Exception as exc:  # noqa: BLE001 - reported by the main thread
            self.error = f"{type(exc).__name__}: {exc}"

    def _run(self) -> None:
        deadline = time.monotonic() + 20
        case = None
        while case is None:
            case = next((c for c in self.portal.my_cases() if c.get("query") == self.marker), None)
            if case is None:
                assert time.monotonic() < deadline, (
                    "the escalation was not routed to the expert within 20s "
                    "(GET /experts/me/escalations never listed it)"
                )
                time.sleep(0.3)
        self.escalation_id = case["id"]
        assert case.get("status") == "routed", f"a newly routed case must be 'routed': {case!r}"
        time.sleep(1.5)  # the SDK is now blocked in GET /escalations/{id}/wait
        eid = self.escalation_id
        status, payload = self.portal.expert("POST", f"/experts/me/escalations/{eid}/accept")
        assert 200 <= status < 300, f"POST /experts/me/escalations/{eid}/accept -> {status}: {payload!r}"
        status, payload = self.portal.expert("GET", f"/experts/me/escalations/{eid}")
        assert status == 200 and isinstance(payload, dict) and payload.get("status") == "in_review", (
            f"after accept, GET /experts/me/escalations/{eid} -> {status}: {payload!r}"
        )
        body = {"answer": ANSWER, "confidence": CONFIDENCE, "reasoning": REASONING}
        status, payload = self.portal.expert("POST", f"/experts/me/escalations/{eid}/resolve", body)
        assert 200 <= status < 300, f"POST /experts/me/escalations/{eid}/resolve -> {status}: {payload!r}"
        self.resolved_at = time.monotonic()


# ---- the checks -------------------------------------------------------------------

def sdk_is_the_released_one() -> None:
    dist = importlib.metadata.distribution("cerolabs")
    assert dist.version == SDK_VERSION, f"cerolabs {dist.version} is installed, {SDK_VERSION} is required"
    assert cerolabs.__version__ == SDK_VERSION, f"cerolabs.__version__ is {cerolabs.__version__}"
    recorded = {str(f): f for f in dist.files or []}
    for rel, want in SDK_SHA256.items():
        entry = recorded.get(rel)
        assert entry is not None, f"{rel} is not in the installed distribution's RECORD"
        path = Path(dist.locate_file(entry)).resolve()
        data = path.read_bytes()
        got = hashlib.sha256(data).hexdigest()
        assert got == want, f"{path} differs from the published cerolabs {SDK_VERSION} (sha256 {got})"
        if entry.hash is not None:
            b64 = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            assert b64 == entry.hash.value, f"{path} does not match its RECORD hash"
    imported = Path(cerolabs.client.__file__).resolve()
    installed = Path(dist.locate_file(recorded["cerolabs/client.py"])).resolve()
    assert imported == installed, f"cerolabs was imported from {imported}, not the installed {installed}"


def main() -> None:
    args = sys.argv[1:]
    env = os.environ
    base_url = (args[0] if len(args) > 0 else env.get("CERO_BASE_URL", "")).rstrip("/")
    api_key = args[1] if len(args) > 1 else env.get("CERO_API_KEY", "")
    expert_token = args[2] if len(args) > 2 else env.get("CERO_EXPERT_TOKEN", "")
    tenant_id = args[3] if len(args) > 3 else env.get("CERO_TENANT_ID") or None
    if not (base_url and api_key.startswith("cero_") and expert_token.startswith("exp_")):
        say(
            "FAIL: usage: cerolabs_check.py BASE_URL API_KEY(cero_...) EXPERT_TOKEN(exp_...) [TENANT_ID] "
            "(or CERO_BASE_URL, CERO_API_KEY, CERO_EXPERT_TOKEN, CERO_TENANT_ID)"
        )
        sys.exit(2)

    check("the installed SDK is the published cerolabs 0.1.0, unchanged", sdk_is_the_released_one)

    # One client records what it sends and receives (Cero's documented `client=`
    # argument; the SDK passes its headers and timeouts on every request itself).
    http = httpx.Client(
        base_url=base_url,
        timeout=30.0,
        event_hooks={"request": [TRAFFIC.on_request], "response": [TRAFFIC.on_response]},
    )
    cero = Cero(api_key=api_key, base_url=base_url, client=http)
    # And one exactly as a user makes it.
    plain = Cero(api_key=api_key, base_url=base_url)
    portal = Portal(base_url, expert_token)

    def expert_profile() -> str:
        status, me = portal.expert("GET", "/experts/me")
        assert status == 200 and isinstance(me, dict), f"GET /experts/me -> {status}: {me!r}"
        assert DOMAIN in (me.get("domains") or []), f"the expert must serve {DOMAIN}: {me!r}"
        assert_uuid(me.get("id"), "expert id")
        return me["id"]

    expert_id = check("expert portal: GET /experts/me with X-Expert-Token", expert_profile)

    # ---- authentication ----
    bad = Cero(api_key="cero_" + "0" * 48, base_url=base_url)

    def unknown_key_is_401() -> None:
        expect_cero_error(bad.list_escalations, 401)
        expect_cero_error(bad.check_escalation, 401, str(uuid.uuid4()))
        expect_cero_error(bad.list_domains, 401)
        expect_cero_error(
            Cero(api_key="not-a-key", base_url=base_url).list_escalations, 401
        )

    check("an unknown API key: CeroError with status_code 401 on every call", unknown_key_is_401)

    # ---- domains ----
    def domains() -> None:
        found = plain.list_domains()
        assert isinstance(found, list) and found, f"no domains: {found!r}"
        for d in found:
            assert isinstance(d, DomainInfo), d
            for field in ("slug", "category", "name", "description"):
                assert isinstance(getattr(d, field), str), f"DomainInfo.{field} must be a string: {d!r}"
            assert re.fullmatch(r"[a-z0-9_-]+(\.[a-z0-9_-]+)+", d.slug), f"not a lowercase dotted slug: {d!r}"
        slugs = [d.slug for d in found]
        assert DOMAIN in slugs, f"{DOMAIN} (served by the expert) is not listed: {slugs}"
        assert len(set(slugs)) == len(slugs), f"a domain is listed twice: {slugs}"

    check("list_domains(): {domains: [{slug, category, name, description}]}", domains)

    # ---- create and read ----
    context_a = {"cpt": "93015", "payer": "Blue Cross", "denial": {"code": "CO-50", "amount": 412.5}}
    metadata_a = {"ticket": "RCM-1042", "attempt": 1, "tags": ["sdk", "check"]}
    query_a = f"Should we appeal this CO-50 denial? [{uuid.uuid4()}]"
    marks: dict[str, int] = {}

    def create_a() -> EscalationResponse:
        marks["create_a"] = TRAFFIC.mark()
        created = cero.escalate(
            domain=DOMAIN,
            query=query_a,
            context=context_a,
            priority="urgent",
            schema=SCHEMA,
            metadata=metadata_a,
            task_type="denial_review",
        )
        assert_summary(created, "created")
        assert created.priority == "urgent", created
        assert created.domain == DOMAIN, created
        assert created.status in ("pending", "routed"), created
        x, body = last_json(TRAFFIC.since(marks["create_a"]), "POST", "/escalations")
        assert x["status"] == 201, f"POST /escalations must answer 201, got {x['status']}"
        return created

    a = check(
        "escalate(context, priority=urgent, schema, metadata, task_type): 201 with the six fields",
        create_a,
    )

    def get_a() -> None:
        d = cero.check_escalation(a.id, schema=SCHEMA)
        assert isinstance(d, EscalationDetail), d
        assert d.id == a.id, d
        assert_uuid(d.tenant_id, "tenant_id")
        if tenant_id is not None:
            assert d.tenant_id == tenant_id, f"tenant_id {d.tenant_id!r}, expected {tenant_id!r}"
        assert d.domain == DOMAIN and d.query == query_a, d
        assert d.context == context_a, f"context: {d.context!r}"
        assert d.priority == "urgent", d
        assert d.status in ("pending", "routed"), d
        assert d.output_schema == SCHEMA, f"output_schema: {d.output_schema!r}"
        assert d.callback_url is None, d
        assert d.metadata == metadata_a, f"metadata: {d.metadata!r}"
        assert same_time(d.sla_deadline, a.sla_deadline) and same_time(d.created_at, a.created_at), (
            f"created_at/sla_deadline differ between the create response ({a.created_at}, "
            f"{a.sla_deadline}) and the detail ({d.created_at}, {d.sla_deadline})"
        )
        assert d.resolved_at is None and d.resolution is None, d
        if d.status == "routed":
            assert d.expert_id == expert_id, f"routed to {d.expert_id!r}, expected {expert_id!r}"
            parse_time(d.routed_at, "routed_at")
        _, raw = last_json(TRAFFIC.last(1), "GET", f"/escalations/{a.id}")
        assert raw.get("task_type") == "denial_review", f"task_type: {raw.get('task_type')!r}"

    check("check_escalation(): the detail parses and echoes what was sent", get_a)

    def bad_input() -> None:
        expect_cero_error(cero.escalate, 400, domain=DOMAIN, query="q", priority="asap")
        expect_cero_error(cero.escalate, 400, domain=DOMAIN, query="q", schema={"type": 12})
        expect_cero_error(
            cero.escalate, 400, domain=DOMAIN, query="q", callback_url="ftp://example.com/hook"
        )

    check(
        "bad input (unknown priority, invalid output_schema, non-http callback_url): CeroError 400",
        bad_input,
    )

    # ---- cancel ----
    time.sleep(1.1)  # distinct created_at values, so "newest first" is unambiguous
    query_b = f"Is this modifier usage compliant? [{uuid.uuid4()}]"

    def create_b() -> EscalationResponse:
        created = cero.escalate(domain=DOMAIN, query=query_b)
        assert_summary(created, "created")
        assert created.priority == "standard", f"the SDK's default priority: {created!r}"
        return created

    b = check("escalate() with only domain and query: priority standard, 30 min SLA", create_b)

    def cancel_b() -> None:
        mark = TRAFFIC.mark()
        assert cero.cancel_escalation(b.id) is None
        x, body = last_json(TRAFFIC.since(mark), "POST", f"/escalations/{b.id}/cancel")
        assert x["status"] == 200, f"cancel must answer 200, got {x['status']}"
        assert isinstance(body, dict) and body.get("id") == b.id and body.get("status") == "cancelled", (
            f"cancel must answer with the detail: {body!r}"
        )
        d = cero.check_escalation(b.id)
        assert d.status == "cancelled", d
        assert d.resolution is None, d

    check("cancel_escalation() (empty body, Content-Type: application/json): 200, cancelled", cancel_b)
    check("cancel_escalation() of a cancelled case: CeroError 409", expect_cero_error, cero.cancel_escalation, 409, b.id)

    def wait_cancelled() -> None:
        t0 = time.monotonic()
        exc = expect_cero_error(cero.wait_for_resolution, None, b.id, timeout_s=20, poll_interval_s=0.5)
        assert "cancelled" in str(exc), exc
        assert time.monotonic() - t0 < 5, f"/wait on a cancelled case took {time.monotonic() - t0:.1f}s"

    check("wait_for_resolution() of a cancelled case ends at once with CeroError", wait_cancelled)

    # ---- feedback and wait before resolution ----
    check(
        "submit_feedback() on an unresolved case: CeroError 409",
        expect_cero_error, cero.submit_feedback, 409, a.id, 0.5,
    )

    def wait_times_out() -> None:
        mark = TRAFFIC.mark()
        t0 = time.monotonic()
        try:
            cero.wait_for_resolution(a.id, timeout_s=2, poll_interval_s=0.5)
        except CeroTimeoutError:
            pass
        else:
            raise AssertionError("wait_for_resolution() of an open case returned")
        elapsed = time.monotonic() - t0
        waits = [x for x in TRAFFIC.since(mark) if x["path"].endswith("/wait")]
        assert waits, "no /wait request was made"
        assert all(x["status"] == 200 for x in waits), (
            f"/wait must answer 200 with the current detail when its timeout passes: "
            f"{[(x['url'], x['status']) for x in waits]}"
        )
        first = waits[0]
        assert first["query"].get("timeout") == "2", first["url"]
        assert 1.5 <= first["seconds"] <= 4.5, (
            f"/wait?timeout=2 on an open case answered after {first['seconds']:.2f}s, expected about 2s"
        )
        assert elapsed < 6, f"wait_for_resolution(timeout_s=2) took {elapsed:.1f}s"
        assert json.loads(first["body"]).get("status") in ("pending", "routed"), first["body"]

    check("wait_for_resolution(timeout_s=2) of an open case: /wait holds ~2s, then CeroTimeoutError", wait_times_out)

    # ---- escalate_and_wait, resolved by the expert meanwhile ----
    time.sleep(1.1)
    query_c = f"Appeal or write off? [{uuid.uuid4()}]"
    resolver = Resolver(portal, query_c)

    def escalate_and_wait() -> tuple:
        resolver.start()
        mark = TRAFFIC.mark()
        try:
            res = cero.escalate_and_wait(
                domain=DOMAIN,
                query=query_c,
                context={"claim": "CLM-77", "cpt": "99214"},
                priority="standard",
                schema=SCHEMA,
                metadata={"ticket": "RCM-1043"},
                timeout_s=45,
                poll_interval_s=1,
            )
        except Exception:
            resolver.join(25)
            if resolver.error:
                raise AssertionError(f"the expert could not resolve the case: {resolver.error}") from None
            raise
        returned_at = time.monotonic()
        resolver.join(25)
        assert resolver.error is None, f"the expert could not resolve the case: {resolver.error}"
        assert resolver.resolved_at is not None, "the expert thread did not finish"
        exchanges = TRAFFIC.since(mark)
        _, created = last_json(exchanges, "POST", "/escalations")
        c_id = created["id"]
        assert c_id == resolver.escalation_id, f"the expert resolved {resolver.escalation_id}, not {c_id}"
        resolution_matches(res, c_id, expert_id, "resolution")
        waits = [x for x in exchanges if x["path"].endswith("/wait")]
        assert waits and all(x["status"] == 200 for x in waits), [(x["url"], x["status"]) for x in waits]
        assert waits[0]["query"].get("timeout") == "45", waits[0]["url"]
        assert len(waits) <= 3, (
            f"/wait must hold the request until the case closes, but the SDK needed {len(waits)} requests"
        )
        lag = returned_at - resolver.resolved_at
        assert lag < 5, f"/wait answered {lag:.1f}s after the resolution; it must answer as soon as resolved"
        assert waits[-1]["seconds"] >= 1.0, (
            f"the /wait that returned the resolution took only {waits[-1]['seconds']:.2f}s"
        )
        return c_id, res

    c_id, c_res = check(
        "escalate_and_wait(): /wait blocks until the expert accepts and resolves, then returns the answer",
        escalate_and_wait,
    )

    def get_c() -> None:
        d = cero.check_escalation(c_id, schema=SCHEMA)
        assert d.status == "resolved", d
        assert d.expert_id == expert_id, d
        parse_time(d.routed_at, "routed_at")
        parse_time(d.resolved_at, "resolved_at")
        assert d.resolution is not None, d
        resolution_matches(d.resolution, c_id, expert_id, "detail.resolution")
        assert same_time(d.resolution.resolved_at, c_res.resolved_at), (d.resolution, c_res)
        assert same_time(d.resolved_at, d.resolution.resolved_at), d

    check("check_escalation() of the resolved case: status resolved with its resolution", get_c)

    def wait_resolved_plain() -> None:
        t0 = time.monotonic()
        res = plain.wait_for_resolution(c_id, timeout_s=30, schema=SCHEMA)
        resolution_matches(res, c_id, expert_id, "resolution")
        assert time.monotonic() - t0 < 3, f"/wait on a resolved case took {time.monotonic() - t0:.1f}s"

    check("wait_for_resolution() of a resolved case returns at once (default client)", wait_resolved_plain)
    check("cancel_escalation() of a resolved case: CeroError 409", expect_cero_error, cero.cancel_escalation, 409, c_id)

    # ---- feedback ----
    def feedback() -> None:
        mark = TRAFFIC.mark()
        assert cero.submit_feedback(c_id, 0.9, "Clear & correct: thanks!") is None
        x = TRAFFIC.since(mark)[-1]
        assert x["query"] == {"score": "0.9", "comment": "Clear & correct: thanks!"}, x["url"]
        assert 200 <= x["status"] < 300, x
        # An int score goes out as "1"; a second feedback replaces the first.
        assert cero.submit_feedback(c_id, 1) is None
        cero.check_escalation(c_id)
        _, raw = last_json(TRAFFIC.last(1), "GET", f"/escalations/{c_id}")
        assert raw.get("feedback") is not None, f"the detail's feedback is still null: {raw!r}"

    check("submit_feedback(score, comment) as query params with an empty body, then score=1", feedback)

    def feedback_out_of_range() -> None:
        expect_cero_error(cero.submit_feedback, 400, c_id, 1.5)
        expect_cero_error(cero.submit_feedback, 400, c_id, -0.1)

    check("submit_feedback() with a score outside 0-1: CeroError 400", feedback_out_of_range)

    # ---- list ----
    def lists() -> None:
        everything = cero.list_escalations()
        x = TRAFFIC.last(1)[0]
        assert isinstance(json.loads(x["body"]), list), "GET /escalations must be a bare JSON array"
        for i, item in enumerate(everything):
            assert_summary(item, f"item {i}")
        # Ours are the newest; a fresh tenant has no others.
        assert_ids(everything, [c_id, b.id, a.id], "list_escalations() (newest first)", exact=False)
        assert [i.status for i in everything][:2] == ["resolved", "cancelled"], everything
        cancelled = cero.list_escalations(status="cancelled")
        assert all(i.status == "cancelled" for i in cancelled), cancelled
        assert_ids(cancelled, [b.id], "status=cancelled", exact=False)
        resolved = cero.list_escalations(status="resolved")
        assert all(i.status == "resolved" for i in resolved), resolved
        assert_ids(resolved, [c_id], "status=resolved", exact=False)
        in_domain = cero.list_escalations(domain=DOMAIN)
        assert len(in_domain) == len(everything), (in_domain, everything)
        assert_ids(in_domain, [c_id, b.id, a.id], f"domain={DOMAIN}", exact=False)
        assert_ids(cero.list_escalations(domain="legal.contract"), [], "domain=legal.contract")
        assert_ids(cero.list_escalations(limit=1), [c_id], "limit=1")
        assert_ids(cero.list_escalations(limit=1, offset=1), [b.id], "limit=1&offset=1")
        assert_ids(cero.list_escalations(limit=2, offset=1), [b.id, a.id], "limit=2&offset=1")
        assert_ids(
            cero.list_escalations(status="resolved", domain=DOMAIN, limit=1, offset=0),
            [c_id],
            "every filter at once",
        )

    check("list_escalations() with and without status/domain/limit/offset: bare arrays of six fields", lists)

    def list_bad_filters() -> None:
        expect_cero_error(cero.list_escalations, 400, limit=201)
        expect_cero_error(cero.list_escalations, 400, offset=-1)
        expect_cero_error(cero.list_escalations, 400, status="bogus")

    check("list_escalations(limit=201 | offset=-1 | status=bogus): CeroError 400", list_bad_filters)

    # ---- not found ----
    def not_found() -> None:
        missing = str(uuid.uuid4())
        expect_cero_error(cero.check_escalation, 404, missing)
        expect_cero_error(cero.check_escalation, 404, "not-an-escalation-id")
        expect_cero_error(cero.cancel_escalation, 404, missing)
        expect_cero_error(cero.submit_feedback, 404, missing, 0.5)
        t0 = time.monotonic()
        expect_cero_error(cero.wait_for_resolution, 404, missing, timeout_s=10, poll_interval_s=0.2)
        assert time.monotonic() - t0 < 5, "wait_for_resolution() of an unknown id took too long"

    check("an unknown escalation id: CeroError 404 from get, cancel, feedback and wait", not_found)

    def other_tenant() -> None:
        email = f"sdk-check-{uuid.uuid4().hex[:12]}@example.com"
        status, reg = portal.call("POST", "/auth/register", {"name": "Other Agent", "email": email})
        assert status == 201 and isinstance(reg, dict), f"POST /auth/register -> {status}: {reg!r}"
        other = Cero(api_key=reg["api_key"], base_url=base_url)
        expect_cero_error(other.check_escalation, 404, a.id)
        expect_cero_error(other.cancel_escalation, 404, a.id)
        expect_cero_error(other.submit_feedback, 404, c_id, 0.1)
        expect_cero_error(other.wait_for_resolution, 404, c_id, timeout_s=10, poll_interval_s=0.2)
        assert other.list_escalations() == [], "another tenant sees our escalations"
        assert cero.check_escalation(a.id).status in ("pending", "routed"), "another tenant changed our case"

    check("another tenant's escalations: CeroError 404, and its list is empty", other_tenant)

    # ---- the async client: same calls, same answers ----
    async def async_calls() -> None:
        async with AsyncCero(api_key=api_key, base_url=base_url) as client:
            d = await client.check_escalation(c_id, schema=SCHEMA)
            assert d.status == "resolved" and d.resolution is not None, d
            resolution_matches(d.resolution, c_id, expert_id, "async detail.resolution")
            res = await client.wait_for_resolution(c_id, timeout_s=10, schema=SCHEMA)
            resolution_matches(res, c_id, expert_id, "async resolution")
            assert_ids(await client.list_escalations(limit=2), [c_id, b.id], "async limit=2")
            assert DOMAIN in [x.slug for x in await client.list_domains()]
            try:
                await AsyncCero(api_key="cero_" + "0" * 48, base_url=base_url).list_domains()
            except CeroError as exc:
                assert exc.status_code == 401 and type(exc) is CeroError, exc
            else:
                raise AssertionError("an unknown key was accepted")

    check("AsyncCero: check_escalation, wait_for_resolution, list_escalations, list_domains", asyncio.run, async_calls())

    # Never exercised: 402 (CeroInsufficientCreditsError) is not part of this API.
    assert issubclass(CeroInsufficientCreditsError, CeroError)
    http.close()
    plain.close()
    say("all cerolabs SDK checks passed")


if __name__ == "__main__":
    main()
