//! `/docs`: Swagger UI, served from the binary, renders `/openapi.json`.
//! One test reads the served files; the other opens the page in Debian's
//! headless Chromium through Playwright (`scripts/docs_check.py`, with the
//! Python named by `SWITCHBOARD_TEST_PYTHON`, which scripts/test-all.sh sets)
//! and writes a screenshot to `target/screenshots/docs.png`.

mod common;

use std::path::Path;

use reqwest::StatusCode;

/// The page and the files it loads are served with their types, the page
/// with a Content-Security-Policy that allows only its own origin; neither
/// the page nor the initializer names another host, and files the page does
/// not load are not served.
#[actix_web::test]
async fn docs_page_and_its_files_are_served_from_the_binary() {
    let app = common::spawn_app().await;

    let res = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "text/html; charset=utf-8");
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in
        ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{directive} in {csp}");
    }
    let html = res.text().await.unwrap();
    assert!(html.contains("<title>Switchboard API</title>"), "{html}");
    assert!(!html.contains("http://") && !html.contains("https://") && !html.contains("//cdn"), "{html}");

    let mut srcs: Vec<&str> = html.split("src=\"").skip(1).chain(html.split("href=\"").skip(1)).collect();
    srcs.iter_mut().for_each(|s| *s = s.split('"').next().unwrap());
    assert_eq!(srcs.len(), 7, "{srcs:?}");
    for src in srcs {
        assert!(src.starts_with("/docs/"), "{src} is not same-origin under /docs");
        let res = app.client.get(app.url(src)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{src}");
        let content_type = res.headers()["content-type"].to_str().unwrap().to_string();
        let expected = match Path::new(src).extension().and_then(|e| e.to_str()) {
            Some("js") => "javascript",
            Some("css") => "text/css",
            Some("png") => "image/png",
            other => panic!("unexpected file type {other:?}"),
        };
        assert!(content_type.contains(expected), "{src}: {content_type}");
        let body = res.bytes().await.unwrap();
        assert!(body.len() > 100, "{src} is {} bytes", body.len());
        if src == "/docs/swagger-initializer.js" {
            let js = String::from_utf8(body.to_vec()).unwrap();
            assert!(js.contains("\"url\": \"/openapi.json\""), "{js}");
            assert!(js.contains("\"validatorUrl\": \"none\""), "{js}");
            assert!(!js.contains("http://") && !js.contains("https://"), "{js}");
        }
        if src == "/docs/swagger-ui.css" {
            // The stylesheet's only URLs are the SVG namespace of its inline `data:` icons.
            let css = String::from_utf8(body.to_vec()).unwrap();
            let hosts: Vec<&str> = css
                .split("://")
                .skip(1)
                .map(|rest| rest.split(['/', '"', '\'', ')']).next().unwrap())
                .filter(|host| *host != "www.w3.org")
                .collect();
            assert!(hosts.is_empty(), "swagger-ui.css names hosts {hosts:?}");
        }
    }

    for absent in ["/docs/swagger-ui-bundle.js.map", "/docs/oauth2-redirect.html", "/docs/nothing.js"] {
        let res = app.client.get(app.url(absent)).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{absent}");
    }
}

/// Done-when of issue 9: `/docs` loads in headless Chromium and shows the
/// three surfaces. Fails (never skips) without the Python, its `playwright`
/// package or Debian's Chromium.
#[actix_web::test]
async fn docs_render_the_three_surfaces_in_headless_chromium() {
    let python = match std::env::var("SWITCHBOARD_TEST_PYTHON") {
        Ok(p) if !p.trim().is_empty() => p,
        _ => panic!(
            "SWITCHBOARD_TEST_PYTHON is not set: this test drives Debian's Chromium with the Python \
             `playwright` package. Run it through scripts/test-all.sh."
        ),
    };
    let app = common::spawn_app().await;
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let screenshot = root.join("target").join("screenshots").join("docs.png");
    let _ = std::fs::remove_file(&screenshot);

    // Asynchronously: the server under test runs on this test's runtime.
    let out = tokio::process::Command::new(&python)
        .arg(root.join("scripts").join("docs_check.py"))
        .arg(&app.address)
        .arg(&screenshot)
        .kill_on_drop(true)
        .output()
        .await
        .expect("run python");
    let (stdout, stderr) = (String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    println!("{stdout}");
    assert!(
        out.status.success() && stdout.contains("docs ok"),
        "the browser check failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let png = std::fs::read(&screenshot).expect("the screenshot was written");
    assert!(png.starts_with(b"\x89PNG") && png.len() > 10_000, "{} bytes", png.len());
    println!("screenshot: {}", screenshot.display());
}
