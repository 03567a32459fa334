//! Running a Cerebral's SOPs: which one a message matches, and the templates
//! its actions fill in. Pure functions; the actions' effects (HTTP calls,
//! escalations) are the runtime's.
//!
//! - Keywords match case-insensitively as whole words or phrases: `order`
//!   matches "Where is my Order?" but not "border". Any one keyword suffices.
//! - A regex is the `regex` crate's (linear time, size-limited when the SOP was
//!   written) and matches anywhere in the message unless anchored.
//! - The first SOP in the Cerebral's list that matches wins.
//! - Templates replace `{{ path }}` with the value at that dotted path of the
//!   turn's context: `message`, `session_id`, `execution_id`,
//!   `customer.{id,name,email,phone,external_id}`, `metadata.<key>`,
//!   `cerebral.{id,name}`, `http.{status,body,error}` (the last `http` action),
//!   `escalation.{id,status,domain}` (the last `escalate` action). Strings are
//!   inserted as they are, numbers and booleans as text, objects and arrays as
//!   compact JSON, and an unknown path or null as nothing. In an `http`
//!   action's URL each value is percent-encoded; in its body every string is
//!   a template.

use std::cell::RefCell;
use std::collections::HashMap;

use regex::{Regex, RegexBuilder};
use serde_json::Value;

use crate::http::agent::sops::{Sop, SopMatch, REGEX_SIZE_LIMIT};

/// The first SOP that `message` matches.
pub fn matching<'a>(sops: &'a [Sop], message: &str) -> Option<&'a Sop> {
    let lowered = message.to_lowercase();
    sops.iter().find(|sop| match &sop.matcher {
        SopMatch::Keywords(words) => words.iter().any(|w| contains_word(&lowered, &w.to_lowercase())),
        SopMatch::Regex(pattern) => compiled(pattern).is_some_and(|re| re.is_match(message)),
    })
}

/// `needle` occurs in `hay` with no letter or digit right before or after it.
fn contains_word(hay: &str, needle: &str) -> bool {
    let needle = needle.trim();
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(at) = hay[from..].find(needle) {
        let start = from + at;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let after = hay[end..].chars().next();
        if !before.is_some_and(char::is_alphanumeric) && !after.is_some_and(char::is_alphanumeric) {
            return true;
        }
        // Step past this occurrence's first character (on a char boundary).
        from = start + hay[start..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

thread_local! {
    /// Compiled patterns, per thread; bounded by clearing when full.
    static COMPILED: RefCell<HashMap<String, Option<Regex>>> = RefCell::new(HashMap::new());
}

const MAX_CACHED_PATTERNS: usize = 512;

fn compiled(pattern: &str) -> Option<Regex> {
    COMPILED.with(|cache| {
        let mut cache = cache.borrow_mut();
        if let Some(re) = cache.get(pattern) {
            return re.clone();
        }
        if cache.len() >= MAX_CACHED_PATTERNS {
            cache.clear();
        }
        // It compiled when the SOP was written; a failure now (a crate change) means "no match".
        let re = RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build().ok();
        if re.is_none() {
            tracing::warn!(pattern, "a stored SOP regex no longer compiles; it matches nothing");
        }
        cache.insert(pattern.to_string(), re.clone());
        re
    })
}

/// Fills `{{ path }}` placeholders from `context`.
pub fn render(template: &str, context: &Value) -> String {
    fill(template, context, |value, out| out.push_str(value))
}

/// A URL template: each inserted value is percent-encoded (all but
/// `A-Z a-z 0-9 - . _ ~`), so a value can fill a path segment or a query
/// parameter but never change the scheme, host or path structure.
pub fn render_url(template: &str, context: &Value) -> String {
    fill(template, context, |value, out| {
        for b in value.bytes() {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    })
}

/// Copies `template`, handing each placeholder's value to `insert`; an
/// unclosed `{{` is literal text.
fn fill(template: &str, context: &Value, insert: impl Fn(&str, &mut String)) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else {
            out.push_str(&rest[open..]);
            return out;
        };
        insert(&text_at(context, after[..close].trim()), &mut out);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// Every string inside `value` rendered as a template.
pub fn render_json(value: &Value, context: &Value) -> Value {
    match value {
        Value::String(s) => Value::String(render(s, context)),
        Value::Array(items) => Value::Array(items.iter().map(|v| render_json(v, context)).collect()),
        Value::Object(map) => {
            Value::Object(map.iter().map(|(k, v)| (k.clone(), render_json(v, context))).collect())
        }
        other => other.clone(),
    }
}

fn text_at(context: &Value, path: &str) -> String {
    let mut at = context;
    for part in path.split('.') {
        match at.get(part) {
            Some(v) => at = v,
            None => return String::new(),
        }
    }
    match at {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::agent::sops::SopAction;

    fn sop(name: &str, matcher: SopMatch) -> Sop {
        Sop { name: name.into(), matcher, actions: vec![SopAction::Reply { template: "x".into() }] }
    }

    #[test]
    fn keywords_match_whole_words_case_insensitively() {
        let sops = vec![sop("orders", SopMatch::Keywords(vec!["order".into(), "track my parcel".into()]))];
        assert!(matching(&sops, "Where is my ORDER?").is_some());
        assert!(matching(&sops, "order #1234").is_some());
        assert!(matching(&sops, "please Track my parcel now").is_some());
        assert!(matching(&sops, "the border is closed").is_none());
        assert!(matching(&sops, "orders").is_none());
        assert!(matching(&sops, "ÉORDER").is_none());
    }

    #[test]
    fn the_first_matching_sop_wins() {
        let sops = vec![
            sop("refund", SopMatch::Regex(r"(?i)\brefund\b".into())),
            sop("order", SopMatch::Regex(r"#\d+".into())),
        ];
        assert_eq!(matching(&sops, "refund order #12").map(|s| s.name.as_str()), Some("refund"));
        assert_eq!(matching(&sops, "order #12").map(|s| s.name.as_str()), Some("order"));
        assert!(matching(&sops, "hello").is_none());
    }

    #[test]
    fn a_pathological_regex_runs_in_linear_time() {
        let sops = vec![sop("evil", SopMatch::Regex("(a+)+$".into()))];
        let input = format!("{}!", "a".repeat(100_000));
        let started = std::time::Instant::now();
        // No match (the `!` is last), the case that makes backtracking engines explode.
        assert!(matching(&sops, &input).is_none());
        assert!(matching(&sops, "aaaa").is_some());
        // Backtracking engines take geological time here; this one is linear.
        assert!(started.elapsed() < std::time::Duration::from_secs(5));
    }

    #[test]
    fn templates_fill_paths_and_leave_unknowns_empty() {
        let ctx = json!({
            "message": "where is #12?",
            "customer": {"name": "Jane", "email": null},
            "metadata": {"locale": "en-US", "n": 3},
            "http": {"status": 200, "body": "{\"ok\":true}"},
        });
        assert_eq!(
            render(
                "Hi {{customer.name}}, you asked: {{ message }} ({{metadata.locale}}, {{metadata.n}})",
                &ctx
            ),
            "Hi Jane, you asked: where is #12? (en-US, 3)"
        );
        assert_eq!(render("[{{customer.email}}][{{nope.x}}][{{http.status}}]", &ctx), "[][][200]");
        assert_eq!(render("open {{ never closed", &ctx), "open {{ never closed");
        assert_eq!(render("{{metadata}}", &ctx), r#"{"locale":"en-US","n":3}"#);
    }

    #[test]
    fn url_values_are_percent_encoded_and_cannot_move_the_host() {
        let ctx = json!({"metadata": {"order": "12 34", "evil": "x@evil.example/#"}});
        assert_eq!(
            render_url("https://api.example.com/orders/{{metadata.order}}?q={{metadata.evil}}", &ctx),
            "https://api.example.com/orders/12%2034?q=x%40evil.example%2F%23"
        );
        let ctx = json!({"metadata": {"host": "evil.example"}});
        let url = render_url("https://api.example.com{{metadata.host}}/x", &ctx);
        assert_eq!(url::Url::parse(&url).unwrap().host_str(), Some("api.example.comevil.example"));
    }

    #[test]
    fn json_bodies_render_every_string() {
        let ctx = json!({"message": "hi", "session_id": "s1"});
        let body = json!({"q": "{{message}}", "n": 1, "list": ["{{session_id}}", true]});
        assert_eq!(render_json(&body, &ctx), json!({"q": "hi", "n": 1, "list": ["s1", true]}));
    }
}
