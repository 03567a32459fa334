//! A Cerebral's SOPs: parsed from the request and checked once, when the
//! Cerebral is written, so the engine that runs them never re-checks. Errors
//! name the SOP and field at fault (`sops[2].actions[0].url: ...`).

use regex::RegexBuilder;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use switchboard_actors::model::{Domain, Priority};
use utoipa::ToSchema;

use crate::outbound::OutboundGuard;

pub const MAX_SOPS: usize = 50;
pub const MAX_ACTIONS: usize = 20;
/// A pattern longer than this is refused before it is compiled.
pub const MAX_REGEX_CHARS: usize = 1000;
/// The compiled program's size limit. The `regex` engine is linear-time in the
/// input, so no pattern can backtrack catastrophically; this bounds memory.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;
const MAX_NAME_CHARS: usize = 200;
const MAX_KEYWORDS: usize = 100;
const MAX_KEYWORD_CHARS: usize = 200;
const MAX_TEMPLATE_CHARS: usize = 20_000;
const MAX_URL_CHARS: usize = 2048;

/// One standard operating procedure: when a message matches, run the actions in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Sop {
    #[schema(example = "order_status_lookup")]
    pub name: String,
    #[serde(rename = "match")]
    pub matcher: SopMatch,
    pub actions: Vec<SopAction>,
}

/// `{"keywords": [...]}` or `{"regex": "..."}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SopMatch {
    Keywords(Vec<String>),
    Regex(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "UPPERCASE")]
pub enum HttpMethod {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl HttpMethod {
    const ALL: [HttpMethod; 5] =
        [HttpMethod::Get, HttpMethod::Post, HttpMethod::Put, HttpMethod::Patch, HttpMethod::Delete];

    pub fn as_str(&self) -> &'static str {
        match self {
            HttpMethod::Get => "GET",
            HttpMethod::Post => "POST",
            HttpMethod::Put => "PUT",
            HttpMethod::Patch => "PATCH",
            HttpMethod::Delete => "DELETE",
        }
    }

    /// Case-insensitive; stored upper-case.
    pub fn parse(s: &str) -> Option<HttpMethod> {
        HttpMethod::ALL.into_iter().find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum SopAction {
    /// Answer with this text.
    Reply { template: String },
    /// Call a URL (which must pass the outbound guard); `body` is any JSON, or null.
    Http {
        method: HttpMethod,
        url: String,
        #[schema(value_type = Option<Object>)]
        body: Option<Value>,
    },
    /// Hand the conversation to an expert of `domain`.
    Escalate {
        #[schema(value_type = String, example = "commerce.orders")]
        domain: Domain,
        /// `urgent`, `standard` or `batch`; null for the escalation default.
        #[schema(value_type = Option<String>)]
        priority: Option<Priority>,
    },
}

/// Parses and checks a request's `sops` (null or absent: none). The error is
/// the message of a 400.
pub fn parse_sops(raw: Option<&Value>, guard: &OutboundGuard) -> Result<Vec<Sop>, String> {
    let list = match raw {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => return Err("sops must be an array of SOPs".into()),
    };
    if list.len() > MAX_SOPS {
        return Err(format!("sops: at most {MAX_SOPS} SOPs per Cerebral (got {})", list.len()));
    }
    let mut sops: Vec<Sop> = Vec::with_capacity(list.len());
    for (i, raw) in list.iter().enumerate() {
        let at = format!("sops[{i}]");
        let sop = parse_sop(raw, &at, guard)?;
        if let Some(j) = sops.iter().position(|s| s.name == sop.name) {
            return Err(format!("{at}.name: {:?} is already the name of sops[{j}]", sop.name));
        }
        sops.push(sop);
    }
    Ok(sops)
}

fn parse_sop(raw: &Value, at: &str, guard: &OutboundGuard) -> Result<Sop, String> {
    let sop = object(raw, at, "an SOP object {name, match, actions}")?;
    only(sop, at, &["name", "match", "actions"])?;
    let name = text(sop, at, "name", MAX_NAME_CHARS)?;
    let matcher = parse_match(sop.get("match"), &format!("{at}.match"))?;
    let actions_at = format!("{at}.actions");
    let actions = match sop.get("actions") {
        Some(Value::Array(list)) if !list.is_empty() => list,
        Some(Value::Array(_)) => return Err(format!("{actions_at}: an SOP needs at least one action")),
        None | Some(Value::Null) => return Err(format!("{actions_at} is required")),
        Some(_) => return Err(format!("{actions_at} must be an array of actions")),
    };
    if actions.len() > MAX_ACTIONS {
        return Err(format!("{actions_at}: at most {MAX_ACTIONS} actions per SOP (got {})", actions.len()));
    }
    let actions = actions
        .iter()
        .enumerate()
        .map(|(j, a)| parse_action(a, &format!("{actions_at}[{j}]"), guard))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Sop { name, matcher, actions })
}

fn parse_match(raw: Option<&Value>, at: &str) -> Result<SopMatch, String> {
    let shape = "{\"keywords\": [...]} or {\"regex\": \"...\"}";
    let m = match raw {
        None | Some(Value::Null) => return Err(format!("{at} is required: {shape}")),
        Some(v) => object(v, at, shape)?,
    };
    only(m, at, &["keywords", "regex"])?;
    match (m.get("keywords"), m.get("regex")) {
        (Some(k), None) => parse_keywords(k, &format!("{at}.keywords")).map(SopMatch::Keywords),
        (None, Some(r)) => parse_regex(r, &format!("{at}.regex")).map(SopMatch::Regex),
        _ => Err(format!("{at} must have exactly one of keywords or regex")),
    }
}

fn parse_keywords(raw: &Value, at: &str) -> Result<Vec<String>, String> {
    let Value::Array(list) = raw else {
        return Err(format!("{at} must be an array of non-empty strings"));
    };
    if list.is_empty() {
        return Err(format!("{at} must name at least one keyword"));
    }
    if list.len() > MAX_KEYWORDS {
        return Err(format!("{at}: at most {MAX_KEYWORDS} keywords (got {})", list.len()));
    }
    let mut keywords: Vec<String> = Vec::with_capacity(list.len());
    for (k, raw) in list.iter().enumerate() {
        let word = match raw.as_str().map(str::trim) {
            Some(w) if !w.is_empty() && w.chars().count() <= MAX_KEYWORD_CHARS => w.to_string(),
            _ => {
                return Err(format!(
                    "{at}[{k}] must be a non-empty string of at most {MAX_KEYWORD_CHARS} characters"
                ))
            }
        };
        if !keywords.contains(&word) {
            keywords.push(word);
        }
    }
    Ok(keywords)
}

/// Whitespace in a pattern is significant: it is kept as given.
fn parse_regex(raw: &Value, at: &str) -> Result<String, String> {
    let pattern = match raw.as_str() {
        Some(p) if !p.is_empty() => p,
        _ => return Err(format!("{at} must be a non-empty string")),
    };
    let chars = pattern.chars().count();
    if chars > MAX_REGEX_CHARS {
        return Err(format!("{at} is {chars} characters long; at most {MAX_REGEX_CHARS}"));
    }
    match RegexBuilder::new(pattern).size_limit(REGEX_SIZE_LIMIT).build() {
        Ok(_) => Ok(pattern.to_string()),
        Err(regex::Error::CompiledTooBig(limit)) => {
            Err(format!("{at} is too complex: it compiles to more than {limit} bytes"))
        }
        Err(e) => Err(format!("{at} is not a valid regular expression: {}", one_line(&e.to_string()))),
    }
}

fn parse_action(raw: &Value, at: &str, guard: &OutboundGuard) -> Result<SopAction, String> {
    let action = object(raw, at, "an action object with a type")?;
    let kind = action.get("type").and_then(Value::as_str).map(str::trim);
    match kind {
        Some("reply") => {
            only(action, at, &["type", "template"])?;
            Ok(SopAction::Reply { template: text(action, at, "template", MAX_TEMPLATE_CHARS)? })
        }
        Some("http") => {
            only(action, at, &["type", "method", "url", "body"])?;
            let method = match action.get("method").and_then(Value::as_str) {
                Some(m) => HttpMethod::parse(m),
                None => None,
            }
            .ok_or_else(|| format!("{at}.method must be one of GET, POST, PUT, PATCH, DELETE"))?;
            let url = text(action, at, "url", MAX_URL_CHARS)?;
            guard
                .check_url_syntax(&url)
                .map_err(|e| e.to_string().replacen("callback_url", &format!("{at}.url"), 1))?;
            let body = action.get("body").filter(|b| !b.is_null()).cloned();
            Ok(SopAction::Http { method, url, body })
        }
        Some("escalate") => {
            only(action, at, &["type", "domain", "priority"])?;
            let domain = match action.get("domain").and_then(Value::as_str) {
                Some(d) => Domain::parse(d).map_err(|e| format!("{at}.domain: {e}"))?,
                None => return Err(format!("{at}.domain is required (a string like \"commerce.orders\")")),
            };
            let priority = match action.get("priority") {
                None | Some(Value::Null) => None,
                Some(p) => Some(
                    p.as_str()
                        .and_then(|p| Priority::parse(p.trim()))
                        .ok_or_else(|| format!("{at}.priority must be one of urgent, standard, batch"))?,
                ),
            };
            Ok(SopAction::Escalate { domain, priority })
        }
        _ => Err(format!("{at}.type must be one of reply, http, escalate")),
    }
}

fn object<'a>(raw: &'a Value, at: &str, what: &str) -> Result<&'a Map<String, Value>, String> {
    raw.as_object().ok_or_else(|| format!("{at} must be {what}"))
}

/// Unknown fields are refused: a misspelt one would otherwise be dropped silently.
fn only(map: &Map<String, Value>, at: &str, allowed: &[&str]) -> Result<(), String> {
    match map.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(format!("{at}.{k} is not a field here; expected {}", allowed.join(", "))),
        None => Ok(()),
    }
}

/// A required string field, trimmed, 1..=`max` characters.
fn text(map: &Map<String, Value>, at: &str, key: &str, max: usize) -> Result<String, String> {
    match map.get(key).and_then(Value::as_str).map(str::trim) {
        Some(s) if !s.is_empty() && s.chars().count() <= max => Ok(s.to_string()),
        _ => Err(format!("{at}.{key} is required: a non-empty string of at most {max} characters")),
    }
}

fn one_line(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn guard() -> OutboundGuard {
        OutboundGuard::new(false, None)
    }

    fn parse(v: Value) -> Result<Vec<Sop>, String> {
        parse_sops(Some(&v), &guard())
    }

    fn sop_with(matcher: Value, actions: Value) -> Value {
        json!([{ "name": "s", "match": matcher, "actions": actions }])
    }

    fn reply() -> Value {
        json!([{ "type": "reply", "template": "hi" }])
    }

    fn error_of(v: Value) -> String {
        parse(v.clone()).expect_err(&format!("should be refused: {v}"))
    }

    #[test]
    fn absent_or_null_is_no_sops() {
        assert_eq!(parse_sops(None, &guard()), Ok(vec![]));
        assert_eq!(parse(Value::Null), Ok(vec![]));
        assert_eq!(parse(json!([])), Ok(vec![]));
    }

    #[test]
    fn every_action_kind_is_parsed_and_normalised() {
        let sops = parse(json!([{
            "name": " order_status ",
            "match": { "keywords": [" order ", "status", "order"] },
            "actions": [
                { "type": "http", "method": "post", "url": " https://api.example.com/orders/{{id}} ", "body": {"q": 1} },
                { "type": "reply", "template": "Your order: {{result}}" },
                { "type": "escalate", "domain": "commerce.orders", "priority": "urgent" },
                { "type": "escalate", "domain": "commerce.orders" },
            ],
        }]))
        .unwrap();
        let stored = serde_json::to_value(&sops).unwrap();
        assert_eq!(
            stored,
            json!([{
                "name": "order_status",
                "match": { "keywords": ["order", "status"] },
                "actions": [
                    { "type": "http", "method": "POST", "url": "https://api.example.com/orders/{{id}}", "body": {"q": 1} },
                    { "type": "reply", "template": "Your order: {{result}}" },
                    { "type": "escalate", "domain": "commerce.orders", "priority": "urgent" },
                    { "type": "escalate", "domain": "commerce.orders", "priority": null },
                ],
            }])
        );
        // What is stored reads back as the same SOPs.
        assert_eq!(serde_json::from_value::<Vec<Sop>>(stored).unwrap(), sops);
    }

    #[test]
    fn a_nested_quantifier_compiles_because_the_engine_is_linear_time() {
        let sops = parse(sop_with(json!({ "regex": "(a+)+$" }), reply())).unwrap();
        assert_eq!(sops[0].matcher, SopMatch::Regex("(a+)+$".into()));
        // And matching it against the classic attack input returns at once.
        let re = regex::Regex::new("(a+)+$").unwrap();
        assert!(!re.is_match(&format!("{}!", "a".repeat(100_000))));
    }

    #[test]
    fn regexes_are_bounded_in_length_and_compiled_size() {
        let long = "a".repeat(MAX_REGEX_CHARS + 1);
        let e = error_of(sop_with(json!({ "regex": long }), reply()));
        assert!(e.starts_with("sops[0].match.regex is 1001 characters long"), "{e}");
        assert!(parse(sop_with(json!({ "regex": "a".repeat(MAX_REGEX_CHARS) }), reply())).is_ok());
        // Within the default limit of the regex crate, but not within ours.
        let e = error_of(sop_with(json!({ "regex": "\\w{100}" }), reply()));
        assert_eq!(e, "sops[0].match.regex is too complex: it compiles to more than 1048576 bytes");
        assert!(regex::Regex::new("\\w{100}").is_ok());
        assert!(parse(sop_with(json!({ "regex": "\\w+ order #\\d+" }), reply())).is_ok());
        let e = error_of(sop_with(json!({ "regex": "(unclosed" }), reply()));
        assert!(e.starts_with("sops[0].match.regex is not a valid regular expression"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn refusals_name_the_sop_and_field() {
        let ok_match = json!({ "keywords": ["a"] });
        let cases: Vec<(Value, &str)> = vec![
            (json!({}), "sops must be an array"),
            (json!(["x"]), "sops[0] must be an SOP object"),
            (json!([{ "match": ok_match, "actions": reply() }]), "sops[0].name is required"),
            (json!([{ "name": "s", "actions": reply() }]), "sops[0].match is required"),
            (sop_with(json!({}), reply()), "sops[0].match must have exactly one of"),
            (
                sop_with(json!({ "keywords": ["a"], "regex": "a" }), reply()),
                "sops[0].match must have exactly one",
            ),
            (sop_with(json!({ "keywords": [] }), reply()), "sops[0].match.keywords must name at least one"),
            (
                sop_with(json!({ "keywords": ["a", " "] }), reply()),
                "sops[0].match.keywords[1] must be a non-empty",
            ),
            (sop_with(json!({ "keywords": [1] }), reply()), "sops[0].match.keywords[0] must be a non-empty"),
            (sop_with(json!({ "keywords": "a" }), reply()), "sops[0].match.keywords must be an array"),
            (sop_with(json!({ "regex": "" }), reply()), "sops[0].match.regex must be a non-empty string"),
            (sop_with(json!({ "words": ["a"] }), reply()), "sops[0].match.words is not a field here"),
            (sop_with(ok_match.clone(), json!([])), "sops[0].actions: an SOP needs at least one action"),
            (json!([{ "name": "s", "match": ok_match }]), "sops[0].actions is required"),
            (
                sop_with(ok_match.clone(), json!([{ "type": "shout" }])),
                "sops[0].actions[0].type must be one of",
            ),
            (
                sop_with(ok_match.clone(), json!([{ "template": "x" }])),
                "sops[0].actions[0].type must be one of",
            ),
            (
                sop_with(ok_match.clone(), json!([{ "type": "reply" }])),
                "sops[0].actions[0].template is required",
            ),
            (
                sop_with(ok_match.clone(), json!([{ "type": "reply", "tempalte": "x" }])),
                "sops[0].actions[0].tempalte is not a field here",
            ),
            (
                sop_with(
                    ok_match.clone(),
                    json!([{ "type": "http", "method": "TRACE", "url": "https://example.com" }]),
                ),
                "sops[0].actions[0].method must be one of",
            ),
            (
                sop_with(ok_match.clone(), json!([{ "type": "http", "method": "GET" }])),
                "sops[0].actions[0].url is required",
            ),
            (
                sop_with(
                    ok_match.clone(),
                    json!([{ "type": "http", "method": "GET", "url": "ftp://example.com/x" }]),
                ),
                "sops[0].actions[0].url must use http or https",
            ),
            (
                sop_with(
                    ok_match.clone(),
                    json!([{ "type": "http", "method": "GET", "url": "http://169.254.169.254/" }]),
                ),
                "sops[0].actions[0].url points at a",
            ),
            (
                sop_with(
                    ok_match.clone(),
                    json!([{ "type": "http", "method": "GET", "url": "http://localhost/" }]),
                ),
                "sops[0].actions[0].url points at a",
            ),
            (
                sop_with(ok_match.clone(), json!([{ "type": "escalate", "domain": "Not A Domain" }])),
                "sops[0].actions[0].domain: domain \"Not A Domain\" must be",
            ),
            (
                sop_with(ok_match.clone(), json!([{ "type": "escalate" }])),
                "sops[0].actions[0].domain is required",
            ),
            (
                sop_with(
                    ok_match.clone(),
                    json!([{ "type": "escalate", "domain": "a.b", "priority": "asap" }]),
                ),
                "sops[0].actions[0].priority must be one of urgent, standard, batch",
            ),
        ];
        for (input, want) in cases {
            let e = error_of(input.clone());
            assert!(e.starts_with(want), "{input}: {e:?} does not start with {want:?}");
        }
    }

    #[test]
    fn the_index_is_that_of_the_sop_and_action_at_fault() {
        let good = json!({ "name": "a", "match": { "keywords": ["x"] }, "actions": reply() });
        let bad = json!({ "name": "b", "match": { "keywords": ["x"] },
            "actions": [{ "type": "reply", "template": "ok" }, { "type": "escalate", "domain": "x" }] });
        let e = error_of(json!([good, bad]));
        assert!(e.starts_with("sops[1].actions[1].domain:"), "{e}");
    }

    #[test]
    fn names_are_unique_within_a_cerebral() {
        let one = json!({ "name": "same", "match": { "keywords": ["x"] }, "actions": reply() });
        assert_eq!(error_of(json!([one, one])), "sops[1].name: \"same\" is already the name of sops[0]");
    }

    #[test]
    fn counts_are_bounded() {
        let one =
            |i: usize| json!({ "name": format!("s{i}"), "match": { "keywords": ["x"] }, "actions": reply() });
        let fifty: Vec<Value> = (0..MAX_SOPS).map(one).collect();
        assert_eq!(parse(json!(fifty)).unwrap().len(), MAX_SOPS);
        let too_many: Vec<Value> = (0..=MAX_SOPS).map(one).collect();
        assert!(error_of(json!(too_many)).starts_with("sops: at most 50 SOPs"));
        let twenty: Vec<Value> =
            (0..MAX_ACTIONS).map(|_| json!({ "type": "reply", "template": "x" })).collect();
        assert!(parse(sop_with(json!({ "keywords": ["x"] }), json!(twenty))).is_ok());
        let too_many: Vec<Value> =
            (0..=MAX_ACTIONS).map(|_| json!({ "type": "reply", "template": "x" })).collect();
        let e = error_of(sop_with(json!({ "keywords": ["x"] }), json!(too_many)));
        assert!(e.starts_with("sops[0].actions: at most 20 actions"), "{e}");
    }
}
