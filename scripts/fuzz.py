"""Property-based fuzzing of every operation of a running server's /openapi.json
with schemathesis, surface by surface, each with its own real credentials.

Usage: fuzz.py BASE_URL CREDENTIALS.json [--seed N] [--max-examples N]
               [--workers N] [--report-dir DIR]

--report-dir keeps schemathesis's JSON and JUnit reports, one directory per
surface (numbered in run order); without it they are deleted at the end.

CREDENTIALS.json holds the credentials the runs authenticate with, made by the
caller through the public API (tests/fuzz.rs):
  escalation_key  `cero_...`   Escalation API key of an unlimited (operator) tenant
  expert_token    `exp_...`    an expert's token, for /experts/me*
  agent_key       `sk_live_...` Agent API key, for /v1 invocation
  agent_jwt       JWT of an Owner of that tenant, for /v1 management
  platform_jwt    JWT of a super-admin, for /api
  logout_jwt      a JWT of its own for POST /api/auth/logout, which revokes it

Each surface is one `schemathesis run` (all phases: examples, coverage,
fuzzing, stateful) with a fixed seed and these checks: not_a_server_error,
status_code_conformance, content_type_conformance,
response_schema_conformance, response_headers_conformance. The runs go in an
order that keeps each credential alive while it is used: operations that can
revoke or rotate a credential (`POST /experts/{id}/token`, `DELETE
/v1/api-keys/{id}`, logout) run after the runs that depend on it.

Prints one line per surface: `surface NAME: operations N, cases N, failures N,
errors N, seconds S`, then `total: ...`. Exits 1, after printing
schemathesis's report of each failing surface, when
  - any check failed or any request errored (a network error or a timeout is
    an error: a hung handler must not pass);
  - an operation of the document belongs to no surface;
  - a surface's operations answered only 401/403 (its credential did not
    work, so the run would test nothing but authentication).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")

# (name, include path regex, exclude path regex or None, {header: credential}).
# Order matters; see the module docstring.
SURFACES = [
    ("operator", r"^/(healthz|readyz|metrics|openapi\.json)$", None, {}),
    ("escalation (expert token)", r"^/experts/me(/|$)", None, {"X-Expert-Token": "expert_token"}),
    (
        "escalation (API key)",
        r"^/(auth|domains|escalations|experts|webhooks)(/|$)",
        r"^/experts/me(/|$)",
        {"X-API-Key": "escalation_key"},
    ),
    ("agent (API key)", r"^/v1/(cerebrals/\{id\}/message|customers|rate-limits)", None, {"X-API-Key": "agent_key"}),
    ("agent (JWT)", r"^/v1/", r"^/v1/cerebrals/\{id\}/message$", {"Authorization": "Bearer agent_jwt"}),
    ("platform (JWT)", r"^/api/", r"^/api/auth/logout$", {"Authorization": "Bearer platform_jwt"}),
    ("platform (logout)", r"^/api/auth/logout$", None, {"Authorization": "Bearer logout_jwt"}),
]

# Operations whose answering only 401/403 says nothing about the credential:
# a password sign-in with generated passwords, and a logout that revokes its
# token at its first success.
ONLY_DENIED_EXPECTED = {
    "POST /v1/auth/login": "generated email/password pairs are wrong: 401 is the right answer",
    "POST /api/auth/logout": "the first success revokes the run's token; every later case is 401",
}

# Per-operation settings written to each run's config file.
CONFIG = """\
request-timeout = 20.0

[generation]
database = "none"

# The long poll answers after `timeout` seconds (at most 60); the server under
# test closes escalations quickly (short SLAs), but a wait may still be long.
[[operations]]
include-name = "GET /escalations/{escalation_id}/wait"
request-timeout = 70.0
"""


def operations(doc):
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                yield method.upper(), path


def selected(surface, ops):
    _, include, exclude, _ = surface
    return [
        (m, p)
        for m, p in ops
        if re.search(include, p) and not (exclude and re.search(exclude, p))
    ]


def header_value(template, creds):
    prefix, _, name = template.rpartition(" ")
    value = creds[name]
    return f"{prefix} {value}" if prefix else value


def run_surface(surface, args, creds, workdir, index):
    name, include, exclude, headers = surface
    report_dir = os.path.join(args.report_dir, f"{index}")
    config = os.path.join(workdir, f"schemathesis-{index}.toml")
    with open(config, "w") as f:
        f.write(CONFIG)
    cmd = [
        sys.executable, "-m", "schemathesis.cli", "--config-file", config, "--no-color",
        "run", args.base_url + "/openapi.json",
        "--url", args.base_url,
        "--checks", CHECKS,
        "--seed", str(args.seed),
        "--max-examples", str(args.max_examples),
        "--workers", str(args.workers),
        "--include-path-regex", include,
        "--report", "json,junit",
        "--report-dir", report_dir,
        "--report-json-path", os.path.join(report_dir, "report.json"),
        "--report-junit-path", os.path.join(report_dir, "junit.xml"),
        "--output-truncate", "false",
    ]
    if exclude:
        cmd += ["--exclude-path-regex", exclude]
    for header, template in headers.items():
        cmd += ["--header", f"{header}: {header_value(template, creds)}"]
    started = time.monotonic()
    out = subprocess.run(cmd, cwd=workdir, capture_output=True, text=True)
    seconds = time.monotonic() - started
    try:
        with open(os.path.join(report_dir, "report.json")) as f:
            report = json.load(f)
    except (OSError, ValueError) as e:
        report = {"_missing": str(e)}
    return out, report, seconds


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("base_url")
    parser.add_argument("credentials")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--max-examples", type=int, default=20)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--report-dir", default=None)
    args = parser.parse_args()
    args.base_url = args.base_url.rstrip("/")
    with open(args.credentials) as f:
        creds = json.load(f)

    workdir = tempfile.mkdtemp(prefix="switchboard-fuzz-")
    if args.report_dir is None:
        args.report_dir = os.path.join(workdir, "reports")
    args.report_dir = os.path.abspath(args.report_dir)
    with urllib.request.urlopen(args.base_url + "/openapi.json") as res:
        doc = json.load(res)
    ops = list(operations(doc))

    problems = []
    covered = set()
    for surface in SURFACES:
        covered.update(selected(surface, ops))
    for op in ops:
        if op not in covered:
            problems.append("%s %s belongs to no surface" % op)

    totals = {"runs": 0, "cases": 0, "failures": 0, "errors": 0, "seconds": 0.0}
    reports_to_show = []
    for index, surface in enumerate(SURFACES):
        name = surface[0]
        expected = selected(surface, ops)
        out, report, seconds = run_surface(surface, args, creds, workdir, index)
        tested = report.get("operations", {}).get("tested", 0)
        cases = report.get("test_cases", {}).get("generated", 0)
        failures = sum(f.get("count", 1) for f in report.get("failures", []) or [])
        failures = max(failures, report.get("test_cases", {}).get("with_failures", 0))
        errors = sum(e.get("count", 1) for e in report.get("errors", []) or [])
        print(
            "surface %s: operations %d, cases %d, failures %d, errors %d, seconds %.1f"
            % (name, tested, cases, failures, errors, seconds),
            flush=True,
        )
        totals["runs"] += tested
        totals["cases"] += cases
        totals["failures"] += failures
        totals["errors"] += errors
        totals["seconds"] += seconds
        bad = []
        if "_missing" in report:
            bad.append("no JSON report (%s)" % report["_missing"])
        if out.returncode != 0:
            bad.append("schemathesis exited %d" % out.returncode)
        if tested != len(expected):
            bad.append("tested %d operations, expected %d" % (tested, len(expected)))
        if failures or errors:
            bad.append("%d failures, %d errors" % (failures, errors))
        only_denied = [
            op for op in (report.get("warnings") or {}).get("missing_auth") or [] if op not in ONLY_DENIED_EXPECTED
        ]
        if only_denied:
            bad.append("answered only 401/403: %s" % ", ".join(only_denied))
        if bad:
            problems.append("%s: %s" % (name, "; ".join(bad)))
            reports_to_show.append((name, out))

    print(
        "total: operations %d of %d (%d operation runs), cases %d, failures %d, errors %d, seconds %.1f"
        % (
            len(covered),
            len(ops),
            totals["runs"],
            totals["cases"],
            totals["failures"],
            totals["errors"],
            totals["seconds"],
        )
    )
    for name, out in reports_to_show:
        print("\n========== schemathesis report: %s ==========" % name)
        print(out.stdout)
        if out.stderr.strip():
            print(out.stderr)
    for p in problems:
        print("PROBLEM " + p)
    print("problems: %d" % len(problems))
    shutil.rmtree(workdir, ignore_errors=True)
    sys.exit(1 if problems else 0)


if __name__ == "__main__":
    main()
