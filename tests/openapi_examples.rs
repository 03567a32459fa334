//! `/openapi.json` gives an example for every JSON body: every request body
//! and every response with JSON content of every operation has one, on its
//! media type or on the component schema it refers to, and every example —
//! those and every example written on a component or one of its properties —
//! validates against its schema. The check is JSON Schema 2020-12 (the schema
//! dialect of OpenAPI 3.1) by the Python `jsonschema` package, with every
//! object that lists its properties closed, so that an example naming a field
//! the schema does not have fails too. It prints every offending operation.

mod common;

use std::path::Path;

use reqwest::StatusCode;
use serde_json::{json, Value};

/// Prints a summary line, then `PROBLEM ...` for each missing or mismatching
/// example, then `problems: N`; exits 1 when there is any.
const CHECK: &str = r##"import json, sys, copy
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

doc = json.load(open(sys.argv[1]))
BASE = "urn:switchboard:openapi"

def closed(node):
    """The schema with every object that lists its properties closed to others, so
    that an example naming a field the schema does not have is caught."""
    if isinstance(node, dict):
        out = {k: closed(v) for k, v in node.items()}
        if isinstance(node.get("properties"), dict) and "additionalProperties" not in node:
            out["additionalProperties"] = False
        return out
    if isinstance(node, list):
        return [closed(v) for v in node]
    return node

strict = closed(doc)
registry = Registry().with_resource(BASE, Resource.from_contents(strict, default_specification=DRAFT202012))
schemas = doc.get("components", {}).get("schemas", {})
METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")

def absolute(node):
    if isinstance(node, dict):
        return {k: (BASE + v if k == "$ref" and isinstance(v, str) and v.startswith("#") else absolute(v)) for k, v in node.items()}
    if isinstance(node, list):
        return [absolute(v) for v in node]
    return node

def errors_of(instance, schema):
    v = Draft202012Validator(absolute(closed(schema)), registry=registry, format_checker=Draft202012Validator.FORMAT_CHECKER)
    return ["%s at /%s" % (e.message, "/".join(map(str, e.absolute_path))) for e in v.iter_errors(instance)]

def deref(node, kind):
    seen = set()
    while isinstance(node, dict) and "$ref" in node:
        ref = node["$ref"]
        prefix = "#/components/%s/" % kind
        if not ref.startswith(prefix) or ref in seen:
            return None
        seen.add(ref)
        node = doc.get("components", {}).get(kind, {}).get(ref[len(prefix):])
    return node

def schema_examples(schema):
    """Whole-value examples on a schema, following $ref chains."""
    seen = set()
    while isinstance(schema, dict):
        found = []
        if "example" in schema:
            found.append(schema["example"])
        found += list(schema.get("examples", []) or [])
        if found:
            return found
        ref = schema.get("$ref")
        if not ref or ref in seen:
            return []
        seen.add(ref)
        schema = deref({"$ref": ref}, "schemas")
    return []

def media_examples(media):
    found = []
    if "example" in media:
        found.append(("example", media["example"]))
    for name, ex in (media.get("examples") or {}).items():
        ex = deref(ex, "examples") if "$ref" in ex else ex
        if ex is not None and "value" in ex:
            found.append(("examples/" + name, ex["value"]))
    return found

problems = []
ops = with_all = 0
counted = {"request bodies": [0, 0], "responses": [0, 0]}
for path, item in doc["paths"].items():
    for method in METHODS:
        op = item.get(method)
        if not op:
            continue
        ops += 1
        name = "%s %s" % (method.upper(), path)
        bodies = []
        rb = op.get("requestBody")
        if rb:
            rb = deref(rb, "requestBodies") if "$ref" in rb else rb
            for ct, media in (rb.get("content") or {}).items():
                if "json" in ct:
                    bodies.append(("request body " + ct, "request bodies", media))
        for status, resp in (op.get("responses") or {}).items():
            resp = deref(resp, "responses") if "$ref" in resp else resp
            for ct, media in ((resp or {}).get("content") or {}).items():
                if "json" in ct:
                    bodies.append(("response %s %s" % (status, ct), "responses", media))
        op_ok = True
        for label, kind, media in bodies:
            counted[kind][1] += 1
            schema = media.get("schema", {})
            found = media_examples(media)
            if not found:
                found = [("schema example", e) for e in schema_examples(schema)]
            if not found:
                problems.append("%s: %s has no example" % (name, label))
                op_ok = False
                continue
            counted[kind][0] += 1
            for where, value in found:
                errs = errors_of(value, schema)
                if errs:
                    op_ok = False
                    problems.append("%s: %s %s does not match its schema: %s" % (name, label, where, "; ".join(errs[:5])))
        with_all += op_ok

# Every example written on a component schema or one of its properties must match it too.
def walk(node, where):
    if isinstance(node, dict):
        for key in ("example",):
            if key in node:
                errs = errors_of(node[key], {k: v for k, v in node.items() if k not in ("example", "examples")})
                if errs:
                    problems.append("%s: example does not match: %s" % (where, "; ".join(errs[:5])))
        for i, ex in enumerate(node.get("examples", []) if isinstance(node.get("examples"), list) else []):
            errs = errors_of(ex, {k: v for k, v in node.items() if k not in ("example", "examples")})
            if errs:
                problems.append("%s: examples[%d] does not match: %s" % (where, i, "; ".join(errs[:5])))
        for k, v in node.items():
            if k in ("properties", "$defs", "patternProperties"):
                for pk, pv in v.items():
                    walk(pv, "%s.%s" % (where, pk))
            elif k in ("items", "additionalProperties", "not"):
                walk(v, where + "[]")
            elif k in ("allOf", "anyOf", "oneOf", "prefixItems"):
                for i, sub in enumerate(v):
                    walk(sub, "%s<%s %d>" % (where, k, i))
for name, schema in schemas.items():
    walk(schema, "components.schemas." + name)

print("operations: %d, with an example for every JSON body: %d" % (ops, with_all))
for kind, (ok, total) in counted.items():
    print("%s with an example: %d of %d" % (kind, ok, total))
for p in problems:
    print("PROBLEM " + p)
print("problems: %d" % len(problems))
sys.exit(1 if problems else 0)
"##;

/// Runs [`CHECK`] on `doc`; returns (success, stdout, stderr).
fn check(doc: &Value, dir: &Path) -> (bool, String, String) {
    let file = dir.join(format!("openapi-{}.json", uuid::Uuid::new_v4().simple()));
    std::fs::write(&file, serde_json::to_vec(doc).unwrap()).unwrap();
    let out = std::process::Command::new(common::receiver::python())
        .arg("-c")
        .arg(CHECK)
        .arg(&file)
        .output()
        .expect("run python");
    let text = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
    (out.status.success(), text(&out.stdout), text(&out.stderr))
}

async fn document(app: &common::TestApp) -> Value {
    let res = app.client.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

#[actix_web::test]
async fn every_json_body_has_an_example_that_matches_its_schema() {
    let app = common::spawn_app().await;
    let doc = document(&app).await;
    let operations: usize = doc["paths"]
        .as_object()
        .unwrap()
        .values()
        .map(|item| item.as_object().unwrap().keys().filter(|k| *k != "parameters").count())
        .sum();
    assert!(operations >= 86, "{operations} operations");

    let (ok, stdout, stderr) = check(&doc, app.dir.path());
    assert!(ok, "examples missing or not matching their schema:\n{stdout}\n{stderr}");
    let summary = format!("operations: {operations}, with an example for every JSON body: {operations}");
    assert!(stdout.contains(&summary), "expected {summary:?} in:\n{stdout}");
    assert!(stdout.contains("problems: 0"), "{stdout}");
}

/// The check finds what it is there to find, and names every operation at
/// fault: a missing example, a field the schema does not have, a value of the
/// wrong type, and a bad example on a component's property.
#[actix_web::test]
async fn the_check_reports_every_missing_or_wrong_example() {
    let app = common::spawn_app().await;
    let mut doc = document(&app).await;
    let schemas = &mut doc["components"]["schemas"];
    // Readiness answers 200 and 503: with its example gone, 200 has none (503 has its own).
    schemas["Readiness"].as_object_mut().unwrap().remove("example");
    schemas["DetailError"]["example"] = json!({"detail": "Invalid API key", "code": 401});
    schemas["Tenant"]["example"]["port"] = json!("8421");
    schemas["Tenant"]["properties"]["plan"]["example"] = json!(3);

    let (ok, stdout, _) = check(&doc, app.dir.path());
    assert!(!ok, "{stdout}");
    for needle in [
        "PROBLEM GET /readyz: response 200 application/json has no example",
        // Every operation that answers a DetailError is named, not only the first.
        "PROBLEM POST /auth/register: response 409 application/json schema example does not match its schema: \
         Additional properties are not allowed ('code' was unexpected)",
        "PROBLEM GET /webhooks/deliveries/{escalation_id}: response 401 application/json schema example does not match",
        "PROBLEM GET /api/tenants/{id}: response 200 application/json schema example does not match its schema: \
         '8421' is not of type 'integer', 'null' at /port",
        "PROBLEM components.schemas.Tenant.plan: example does not match: 3 is not of type 'string'",
    ] {
        assert!(stdout.contains(needle), "missing {needle:?} in:\n{stdout}");
    }
    assert!(!stdout.contains("PROBLEM GET /readyz: response 503"), "{stdout}");
}
