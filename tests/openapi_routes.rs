//! Every route the server mounts is in `/openapi.json`, with its method, and
//! the document describes no route that is not mounted. The routes are read
//! from the `configure` functions of `src/http/` (actix-web cannot list a
//! built router); each surface's scope is prefixed (`/v1`, `/api`).

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use regex::Regex;
use serde_json::Value;

/// `(METHOD, /path)` of every route in the `configure` function of `file`,
/// under `prefix`.
fn mounted_in(file: &Path, prefix: &str) -> BTreeSet<(String, String)> {
    let text = std::fs::read_to_string(file).unwrap();
    let Some(start) = text.find("pub fn configure(") else { return BTreeSet::new() };
    // The function ends at the first line that is a lone closing brace.
    let body = &text[start..];
    let end = body.find("\n}").map(|i| i + 2).unwrap_or(body.len());
    let body = &body[..end];
    let token = Regex::new(
        r#"web::resource\(\s*"([^"]+)"\s*\)|\.route\(\s*"([^"]+)",\s*web::(\w+)\(\)|\.route\(\s*web::(\w+)\(\)"#,
    )
    .unwrap();
    let mut routes = BTreeSet::new();
    let mut resource: Option<String> = None;
    for c in token.captures_iter(body) {
        if let Some(path) = c.get(1) {
            resource = Some(path.as_str().to_string());
        } else if let (Some(path), Some(method)) = (c.get(2), c.get(3)) {
            routes.insert((method.as_str().to_uppercase(), format!("{prefix}{}", path.as_str())));
        } else if let Some(method) = c.get(4) {
            let path =
                resource.clone().unwrap_or_else(|| panic!("{}: a route outside a resource", file.display()));
            routes.insert((method.as_str().to_uppercase(), format!("{prefix}{path}")));
        }
    }
    routes
}

fn mounted() -> BTreeSet<(String, String)> {
    let http = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("http");
    let mut routes = mounted_in(&http.join("operator.rs"), "");
    for (dir, prefix) in [("escalation", ""), ("agent", "/v1"), ("platform", "/api")] {
        for entry in std::fs::read_dir(http.join(dir)).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "rs") && path.file_name().is_some_and(|n| n != "mod.rs")
            {
                routes.extend(mounted_in(&path, prefix));
            }
        }
    }
    routes
}

#[actix_web::test]
async fn the_document_and_the_router_have_the_same_routes() {
    let routes = mounted();
    assert!(routes.len() > 80, "the scan found the routes: {routes:?}");
    for known in [
        ("GET", "/healthz"),
        ("POST", "/escalations"),
        ("POST", "/v1/cerebrals/{id}/message"),
        ("POST", "/api/tenants/{id}/deploy"),
        ("GET", "/experts/me/escalations/{escalation_id}"),
    ] {
        assert!(routes.contains(&(known.0.to_string(), known.1.to_string())), "{known:?} in {routes:?}");
    }

    let app = common::spawn_app().await;
    let doc: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
                .contains(&method.as_str())
            {
                documented.insert((method.to_uppercase(), path.clone()));
            }
        }
    }
    // Routes that are not API operations, so not in the document: /docs renders
    // the document itself (Swagger UI's page and the files it loads).
    let not_operations: BTreeSet<(String, String)> = [("GET", "/docs"), ("GET", "/docs/{file}")]
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    for route in &not_operations {
        assert!(routes.contains(route), "{route:?} is no longer mounted; drop it from the exceptions");
    }
    // The pages for people (src/http/ui/) answer HTML, not API operations:
    // all of them live under /portal, /console and /ui, and none is in the document.
    let ui = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join("http").join("ui");
    let mut pages = BTreeSet::new();
    for entry in std::fs::read_dir(&ui).unwrap() {
        pages.extend(mounted_in(&entry.unwrap().path(), ""));
    }
    assert!(pages.len() >= 20, "the scan found the pages: {pages:?}");
    for (method, path) in &pages {
        assert!(
            ["/portal", "/console", "/ui/"].iter().any(|p| path.starts_with(p)),
            "{method} {path} is a page outside /portal, /console and /ui"
        );
        assert!(
            !documented.contains(&(method.clone(), path.clone())),
            "{method} {path} is a page, not an operation"
        );
    }
    let routes: BTreeSet<_> = routes.difference(&not_operations).cloned().collect();
    let undocumented: Vec<_> = routes.difference(&documented).collect();
    let unmounted: Vec<_> = documented.difference(&routes).collect();
    assert!(
        undocumented.is_empty() && unmounted.is_empty(),
        "mounted but not in /openapi.json: {undocumented:?}\nin /openapi.json but not mounted: {unmounted:?}"
    );
}
