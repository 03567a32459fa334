#!/usr/bin/env python3
"""Verifies captured webhook requests with the `standardwebhooks` package.

Usage:
    verify_webhooks.py CASES.json

CASES.json is what the Rust tests' loopback receiver captured:

    {"cases": [{"label": "...", "secret": "whsec_...",
                "id": "msg_...", "timestamp": "1700000000", "signature": "v1,...",
                "body_b64": "<base64 of the raw body bytes>",
                "expect": "valid" | "invalid"}, ...]}

Each case is checked with `standardwebhooks.Webhook(secret).verify(body,
headers)`, the reference implementation of the Standard Webhooks scheme
(`v1,` + base64 HMAC-SHA256 over "{id}.{timestamp}.{body}", timestamp within
five minutes). A case marked "valid" must verify; one marked "invalid" (e.g. a
tampered body) must be refused. Prints one line per case that does not behave
as expected, then a summary; exits 1 if any case did not, 2 on bad input and 3
when `standardwebhooks` is not installed.
"""

from __future__ import annotations

import base64
import json
import sys


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        from standardwebhooks import Webhook, WebhookVerificationError
    except ImportError as e:  # pragma: no cover - environment problem
        print(f"standardwebhooks is not installed in {sys.executable}: {e}", file=sys.stderr)
        print("install it with: python -m pip install standardwebhooks", file=sys.stderr)
        return 3

    try:
        with open(argv[1], "rb") as f:
            cases = json.load(f)["cases"]
    except (OSError, ValueError, KeyError) as e:
        print(f"cannot read cases from {argv[1]}: {e}", file=sys.stderr)
        return 2
    if not cases:
        print("no cases to verify: a check of nothing proves nothing", file=sys.stderr)
        return 2

    wrong = 0
    counts = {"valid": 0, "invalid": 0}
    for i, case in enumerate(cases):
        label = case.get("label") or f"case {i}"
        expect = case.get("expect", "valid")
        if expect not in counts:
            print(f"{label}: unknown expectation {expect!r}", file=sys.stderr)
            return 2
        headers = {}
        for name, key in (
            ("webhook-id", "id"),
            ("webhook-timestamp", "timestamp"),
            ("webhook-signature", "signature"),
        ):
            if case.get(key) is not None:
                headers[name] = case[key]
        try:
            body = base64.b64decode(case["body_b64"])
        except (KeyError, ValueError) as e:
            print(f"{label}: bad body_b64: {e}", file=sys.stderr)
            return 2
        try:
            Webhook(case["secret"]).verify(body, headers, json_parse=False)
            outcome, why = "valid", "verified"
        except WebhookVerificationError as e:
            outcome, why = "invalid", str(e)
        except Exception as e:  # a malformed header or secret is a failed verification too
            outcome, why = "invalid", f"{type(e).__name__}: {e}"
        if outcome != expect:
            wrong += 1
            print(
                f"FAIL {label}: expected {expect}, got {outcome} ({why}); "
                f"webhook-id={headers.get('webhook-id')!r} "
                f"webhook-timestamp={headers.get('webhook-timestamp')!r} "
                f"webhook-signature={headers.get('webhook-signature')!r} "
                f"body={body[:200]!r}"
            )
        counts[expect] += 1

    total = len(cases)
    if wrong:
        print(f"{wrong} of {total} cases did not verify as expected")
        return 1
    print(
        f"all {total} cases verified as expected "
        f"({counts['valid']} valid, {counts['invalid']} refused)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
