//! The Quality Gate: an expert's answer must validate against the escalation's
//! `output_schema`, and its confidence must lie in [0, 1].
//!
//! A schema is compiled once (with the `jsonschema` crate) and shared by every
//! case whose schema has the same content: [`SchemaCache`] keys compiled
//! schemas by a canonical rendering of the schema (object keys sorted), and
//! holds them weakly, so a compiled schema lives exactly as long as some case
//! holds its `Arc` — there may be 100k open cases, mostly sharing a handful of
//! schemas.
//!
//! Compiling never touches the network or the filesystem: only in-document
//! references (`"#..."`) are accepted, and the validator is built with a
//! retriever that refuses everything (the crate's `resolve-http` and
//! `resolve-file` features are off as well). Schemas are also capped in size
//! and nesting depth.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use serde_json::Value;

/// The deepest nesting of objects and arrays a schema may have.
pub const MAX_SCHEMA_DEPTH: usize = 64;
/// The largest schema accepted, in bytes of its canonical (compact) JSON.
pub const MAX_SCHEMA_BYTES: usize = 256 * 1024;
/// Error messages are cut to this many characters (they may quote the answer).
const MAX_MESSAGE_CHARS: usize = 300;

/// Why an `output_schema` is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    /// Neither an object nor a boolean.
    #[error("output_schema must be a JSON object or a boolean, not {0}")]
    NotASchema(&'static str),
    /// Nested deeper than [`MAX_SCHEMA_DEPTH`].
    #[error("output_schema is nested too deeply (more than {max} levels)")]
    TooDeep { max: usize },
    /// Larger than [`MAX_SCHEMA_BYTES`].
    #[error("output_schema is too large ({size} bytes; at most {max} bytes)")]
    TooLarge { size: usize, max: usize },
    /// A `$ref` (or `$dynamicRef`/`$recursiveRef`) that leaves the document.
    #[error(
        "output_schema may only use in-document references (\"#...\"): {keyword} {reference:?} at {pointer} is refused"
    )]
    ExternalRef { pointer: String, keyword: String, reference: String },
    /// Not a valid JSON Schema (meta-schema validation or compilation failed).
    #[error("output_schema is not a valid JSON Schema: {message}{}", at(pointer))]
    Invalid { pointer: String, message: String },
}

fn at(pointer: &str) -> String {
    if pointer.is_empty() {
        String::new()
    } else {
        format!(" (at {pointer})")
    }
}

/// A compiled `output_schema`, shared by every case with the same schema.
pub struct CompiledSchema {
    validator: jsonschema::Validator,
    key: Arc<str>,
    cache: Weak<CacheInner>,
}

impl CompiledSchema {
    /// Compiles a schema on its own, outside any cache (same checks as
    /// [`SchemaCache::compile`]).
    pub fn compile(schema: &Value) -> Result<Self, SchemaError> {
        let key = prepare(schema)?;
        Ok(Self { validator: build(schema)?, key: key.into(), cache: Weak::new() })
    }

    /// Whether `instance` validates.
    pub fn is_valid(&self, instance: &Value) -> bool {
        self.validator.is_valid(instance)
    }

    /// The canonical rendering of the schema (keys sorted, compact).
    pub fn canonical(&self) -> &str {
        &self.key
    }

    pub fn validator(&self) -> &jsonschema::Validator {
        &self.validator
    }
}

impl fmt::Debug for CompiledSchema {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledSchema").field("schema", &self.key).finish_non_exhaustive()
    }
}

impl Drop for CompiledSchema {
    /// Frees the cache entry as soon as the last case lets go. Never called with
    /// the cache's lock held: the cache only upgrades and downgrades under the
    /// lock, and drops any `Arc` it holds only after releasing it.
    fn drop(&mut self) {
        if let Some(cache) = self.cache.upgrade() {
            let mut map = cache.lock();
            // Another thread may already have replaced the dead entry with a live one.
            if map.entries.get(&*self.key).is_some_and(|w| w.strong_count() == 0) {
                map.entries.remove(&*self.key);
            }
        }
    }
}

/// Compiled schemas by content, held weakly. Cheap to clone (an `Arc` inside).
#[derive(Clone, Default)]
pub struct SchemaCache {
    inner: Arc<CacheInner>,
}

#[derive(Default)]
struct CacheInner {
    map: Mutex<CacheMap>,
}

#[derive(Default)]
struct CacheMap {
    entries: HashMap<Arc<str>, Weak<CompiledSchema>>,
    /// Sweep dead entries when the map reaches this size (a backstop: entries
    /// are normally removed when their schema is dropped).
    prune_at: usize,
}

const MIN_PRUNE_AT: usize = 64;

impl CacheInner {
    fn lock(&self) -> MutexGuard<'_, CacheMap> {
        // The map stays consistent even if a holder panicked: every operation is a single insert/remove.
        self.map.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl SchemaCache {
    pub fn new() -> Self {
        Self::default()
    }

    /// The compiled schema for `schema`: the shared one if a case already holds
    /// a schema with the same content (key order does not matter), otherwise
    /// newly compiled. See [`SchemaError`] for what is refused.
    pub fn compile(&self, schema: &Value) -> Result<Arc<CompiledSchema>, SchemaError> {
        let key = prepare(schema)?;
        let found = self.inner.lock().entries.get(key.as_str()).and_then(Weak::upgrade);
        if let Some(found) = found {
            return Ok(found);
        }
        // Compile outside the lock; if another thread wins the race, use its copy.
        let key: Arc<str> = key.into();
        let ours = Arc::new(CompiledSchema {
            validator: build(schema)?,
            key: key.clone(),
            cache: Arc::downgrade(&self.inner),
        });
        let winner = {
            let mut map = self.inner.lock();
            match map.entries.get(&*key).and_then(Weak::upgrade) {
                Some(theirs) => theirs,
                None => {
                    map.entries.insert(key, Arc::downgrade(&ours));
                    if map.entries.len() >= map.prune_at.max(MIN_PRUNE_AT) {
                        map.entries.retain(|_, w| w.strong_count() > 0);
                        map.prune_at = (map.entries.len() * 2).max(MIN_PRUNE_AT);
                    }
                    ours.clone()
                }
            }
        };
        // `ours`, if it lost, is dropped here, after the lock is released.
        Ok(winner)
    }

    /// How many distinct schemas are currently held by some case.
    pub fn len(&self) -> usize {
        self.inner.lock().entries.values().filter(|w| w.strong_count() > 0).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl fmt::Debug for SchemaCache {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SchemaCache").field("live", &self.len()).finish()
    }
}

/// Checks the shape, depth, references and size of `schema` and returns its
/// canonical rendering (the cache key).
fn prepare(schema: &Value) -> Result<String, SchemaError> {
    match schema {
        Value::Object(_) | Value::Bool(_) => {}
        Value::Null => return Err(SchemaError::NotASchema("null")),
        Value::Number(_) => return Err(SchemaError::NotASchema("a number")),
        Value::String(_) => return Err(SchemaError::NotASchema("a string")),
        Value::Array(_) => return Err(SchemaError::NotASchema("an array")),
    }
    walk(schema)?;
    let mut key = String::new();
    canonicalize(schema, &mut key);
    if key.len() > MAX_SCHEMA_BYTES {
        return Err(SchemaError::TooLarge { size: key.len(), max: MAX_SCHEMA_BYTES });
    }
    Ok(key)
}

/// Keywords whose values are data, not schemas: a `"$ref"` inside them is not a reference.
const DATA_KEYWORDS: [&str; 4] = ["enum", "const", "default", "examples"];
/// Keywords whose values map names to schemas: their keys are names, not keywords.
const NAME_MAP_KEYWORDS: [&str; 6] =
    ["properties", "patternProperties", "$defs", "definitions", "dependentSchemas", "dependencies"];
const REF_KEYWORDS: [&str; 3] = ["$ref", "$dynamicRef", "$recursiveRef"];

/// Depth limit and reference check, iteratively (no recursion on untrusted depth).
/// Every string-valued `$ref` (and `$dynamicRef`, `$recursiveRef`) must be a
/// fragment of this document: `"#..."`. That also refuses relative references,
/// which would resolve against a `$id` (possibly `http:` or `file:`).
fn walk(schema: &Value) -> Result<(), SchemaError> {
    // (value, its JSON pointer, its nesting level, whether its keys are names rather than keywords)
    let mut stack: Vec<(&Value, String, usize, bool)> = vec![(schema, String::new(), 1, false)];
    while let Some((value, pointer, depth, names)) = stack.pop() {
        let container = matches!(value, Value::Object(_) | Value::Array(_));
        if container && depth > MAX_SCHEMA_DEPTH {
            return Err(SchemaError::TooDeep { max: MAX_SCHEMA_DEPTH });
        }
        match value {
            Value::Object(map) => {
                for (k, v) in map {
                    let child = format!("{pointer}/{}", k.replace('~', "~0").replace('/', "~1"));
                    if names {
                        stack.push((v, child, depth + 1, false));
                        continue;
                    }
                    if let (true, Value::String(reference)) = (REF_KEYWORDS.contains(&k.as_str()), v) {
                        if !reference.starts_with('#') {
                            return Err(SchemaError::ExternalRef {
                                pointer: if pointer.is_empty() { "/".into() } else { pointer.clone() },
                                keyword: k.clone(),
                                reference: reference.clone(),
                            });
                        }
                    }
                    if DATA_KEYWORDS.contains(&k.as_str()) {
                        // Still bounded in depth, but never searched for references.
                        if max_depth(v, depth + 1) > MAX_SCHEMA_DEPTH {
                            return Err(SchemaError::TooDeep { max: MAX_SCHEMA_DEPTH });
                        }
                        continue;
                    }
                    stack.push((v, child, depth + 1, NAME_MAP_KEYWORDS.contains(&k.as_str())));
                }
            }
            Value::Array(items) => {
                for (i, v) in items.iter().enumerate() {
                    stack.push((v, format!("{pointer}/{i}"), depth + 1, false));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

/// The deepest container level under `value`, which sits at level `depth`
/// (stops counting a little past the limit).
fn max_depth(value: &Value, depth: usize) -> usize {
    let mut deepest = 0;
    let mut stack = vec![(value, depth)];
    while let Some((v, d)) = stack.pop() {
        let children: Box<dyn Iterator<Item = &Value>> = match v {
            Value::Object(m) => Box::new(m.values()),
            Value::Array(a) => Box::new(a.iter()),
            _ => continue,
        };
        deepest = deepest.max(d);
        if d > MAX_SCHEMA_DEPTH {
            break;
        }
        stack.extend(children.map(|c| (c, d + 1)));
    }
    deepest
}

/// Compact JSON with object keys sorted, so that key order does not change the key.
/// Only called on values whose depth `walk` has bounded.
fn canonicalize(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonicalize(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonicalize(v, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// A retriever that refuses every external resource.
struct NoRetrieval;

impl jsonschema::Retrieve for NoRetrieval {
    fn retrieve(
        &self,
        uri: &jsonschema::Uri<String>,
    ) -> Result<Value, Box<dyn std::error::Error + Send + Sync>> {
        Err(format!("external references are not allowed ({})", uri.as_str()).into())
    }
}

/// Compiled size allowed for one `pattern` (or `patternProperties` key).
const MAX_PATTERN_BYTES: usize = 1 << 20;

/// `pattern`s run on the `regex` engine, which is linear in the input: a
/// pattern such as `^(a+)+$` cannot backtrack catastrophically on an expert's
/// answer. Lookarounds and back-references, which only a backtracking engine
/// can run, make the schema invalid (400 when the case is created).
fn build(schema: &Value) -> Result<jsonschema::Validator, SchemaError> {
    jsonschema::options()
        .with_retriever(NoRetrieval)
        .with_pattern_options(jsonschema::PatternOptions::regex().size_limit(MAX_PATTERN_BYTES))
        .build(schema)
        .map_err(|e| SchemaError::Invalid {
            pointer: e.instance_path().as_str().to_string(),
            message: truncate(e.to_string()),
        })
}

fn truncate(mut s: String) -> String {
    if let Some((cut, _)) = s.char_indices().nth(MAX_MESSAGE_CHARS) {
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// One reason an answer is refused: where (a JSON pointer into the resolution
/// body, e.g. `/answer/approved_cpts/0` or `/confidence`) and why.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GateError {
    pub path: String,
    pub message: String,
}

impl fmt::Display for GateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// The pointer of confidence errors.
pub const CONFIDENCE_PATH: &str = "/confidence";

/// Checks a resolution: `answer` against the schema (every error, each at
/// `/answer` + its instance path) and `confidence` within [0, 1] (NaN refused).
/// Without a schema any answer passes; a missing confidence is allowed.
pub fn check_resolution(
    schema: Option<&CompiledSchema>,
    answer: &Value,
    confidence: Option<f64>,
) -> Result<(), Vec<GateError>> {
    let mut errors = Vec::new();
    if let Some(schema) = schema {
        errors.extend(schema.validator.iter_errors(answer).map(|e| GateError {
            path: format!("/answer{}", e.instance_path().as_str()),
            message: truncate(e.to_string()),
        }));
    }
    if let Some(c) = confidence {
        if !(0.0..=1.0).contains(&c) {
            errors.push(GateError {
                path: CONFIDENCE_PATH.into(),
                message: format!("confidence must be a number between 0 and 1, not {c}"),
            });
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// One line for a refused resolution, e.g. "the answer does not match the
/// escalation's output_schema (2 errors)".
pub fn summary(errors: &[GateError]) -> String {
    let confidence = errors.iter().any(|e| e.path == CONFIDENCE_PATH);
    let schema = errors.iter().filter(|e| e.path != CONFIDENCE_PATH).count();
    let plural = if schema == 1 { "" } else { "s" };
    match (schema, confidence) {
        (0, false) => "the answer passes the Quality Gate".to_string(),
        (0, true) => "confidence must be between 0 and 1".to_string(),
        (n, false) => format!("the answer does not match the escalation's output_schema ({n} error{plural})"),
        (n, true) => format!(
            "the answer does not match the escalation's output_schema ({n} error{plural}), and confidence must be between 0 and 1"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn cache_and_schema_are_send_and_sync() {
        assert_send_sync::<SchemaCache>();
        assert_send_sync::<CompiledSchema>();
        assert_send_sync::<Arc<CompiledSchema>>();
    }

    #[test]
    fn patterns_run_on_a_linear_time_engine() {
        // A backtracking engine takes exponential time on this; the regex crate does not.
        let schema =
            json!({"type": "object", "properties": {"code": {"type": "string", "pattern": "^(a+)+$"}}});
        let compiled = CompiledSchema::compile(&schema).expect("valid");
        let evil = format!("{}!", "a".repeat(100_000));
        assert!(!compiled.is_valid(&json!({"code": evil})));
        assert!(compiled.is_valid(&json!({"code": "aaaa"})));
        // Only a backtracking engine can run lookarounds and back-references: refused.
        for pattern in ["^(?=a)a$", "^(a)\\1$", "(?<!x)y"] {
            let schema = json!({"type": "string", "pattern": pattern});
            assert!(CompiledSchema::compile(&schema).is_err(), "{pattern} accepted");
        }
        let keyed = json!({"type": "object", "patternProperties": {"^(?=k)": {"type": "string"}}});
        assert!(CompiledSchema::compile(&keyed).is_err());
    }

    #[test]
    fn compiles_valid_schemas() {
        let cache = SchemaCache::new();
        for schema in [
            json!({"type": "object", "properties": {"approved": {"type": "boolean"}}, "required": ["approved"]}),
            json!(true),
            json!(false),
            json!({}),
            json!({"$schema": "http://json-schema.org/draft-07/schema#", "type": "string"}),
            json!({"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "integer"}),
        ] {
            assert!(cache.compile(&schema).is_ok(), "{schema}");
        }
        let never = cache.compile(&json!(false)).unwrap();
        assert!(!never.is_valid(&json!(1)));
    }

    #[test]
    fn refuses_invalid_schemas() {
        let cache = SchemaCache::new();
        let e = cache.compile(&json!({"type": 12})).unwrap_err();
        assert!(matches!(e, SchemaError::Invalid { .. }), "{e:?}");
        assert!(e.to_string().starts_with("output_schema is not a valid JSON Schema"), "{e}");
        let e = cache.compile(&json!({"properties": {"x": {"minimum": "ten"}}})).unwrap_err();
        assert!(matches!(e, SchemaError::Invalid { .. }), "{e:?}");
        let e = cache.compile(&json!({"pattern": "(unclosed"})).unwrap_err();
        assert!(matches!(e, SchemaError::Invalid { .. }), "{e:?}");
        assert!(cache.is_empty());
    }

    #[test]
    fn refuses_non_object_schemas() {
        let cache = SchemaCache::new();
        for schema in [json!(null), json!(1), json!("string"), json!([{"type": "string"}])] {
            assert!(matches!(cache.compile(&schema), Err(SchemaError::NotASchema(_))), "{schema}");
        }
        assert_eq!(
            SchemaError::NotASchema("a number").to_string(),
            "output_schema must be a JSON object or a boolean, not a number"
        );
    }

    #[test]
    fn refuses_remote_and_file_refs_without_touching_anything() {
        let cache = SchemaCache::new();
        for schema in [
            json!({"$ref": "http://example.com/s.json"}),
            json!({"$ref": "https://example.com/s.json#/defs/a"}),
            json!({"$ref": "file:///etc/passwd"}),
            json!({"properties": {"a": {"items": {"$ref": "other.json"}}}}),
            json!({"$id": "file:///etc/", "$ref": "passwd"}),
            json!({"$id": "http://example.com/root.json", "$ref": "sibling.json"}),
            json!({"$dynamicRef": "http://example.com/s.json#meta"}),
            json!({"$recursiveRef": "https://example.com/s.json"}),
            json!({"allOf": [{"$ref": "//example.com/s.json"}]}),
            json!({"properties": {"enum": {"$ref": "http://example.com/s.json"}}}),
            json!({"$defs": {"const": {"$ref": "file:///etc/passwd"}}}),
        ] {
            let e = cache.compile(&schema).unwrap_err();
            assert!(matches!(e, SchemaError::ExternalRef { .. }), "{schema}: {e:?}");
        }
        let e = cache.compile(&json!({"properties": {"a": {"$ref": "file:///etc/passwd"}}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            "output_schema may only use in-document references (\"#...\"): $ref \"file:///etc/passwd\" at /properties/a is refused"
        );
    }

    #[test]
    fn retriever_refuses_what_the_walk_lets_through() {
        // The walk is bypassed here: the validator itself must refuse to fetch anything.
        for remote in ["http://127.0.0.1:9/s.json", "file:///etc/passwd"] {
            let e = build(&json!({"$ref": remote})).unwrap_err();
            assert!(matches!(e, SchemaError::Invalid { .. }), "{e:?}");
            let uri = jsonschema::uri::from_str(remote).unwrap();
            assert!(jsonschema::Retrieve::retrieve(&NoRetrieval, &uri).is_err());
        }
        // A custom meta-schema is not a `$ref`, and it is never fetched either.
        let e =
            CompiledSchema::compile(&json!({"$schema": "http://example.com/meta.json", "type": "string"}))
                .unwrap_err();
        assert!(matches!(e, SchemaError::Invalid { .. }), "{e:?}");
        // An in-document-looking ref that names a missing anchor fails to compile, offline.
        let e = CompiledSchema::compile(&json!({"$ref": "#/$defs/missing"})).unwrap_err();
        assert!(matches!(e, SchemaError::Invalid { .. }), "{e:?}");
    }

    #[test]
    fn in_document_refs_work() {
        let cache = SchemaCache::new();
        let schema = cache
            .compile(&json!({"$defs": {"a": {"type": "string"}}, "properties": {"x": {"$ref": "#/$defs/a"}}}))
            .unwrap();
        assert!(check_resolution(Some(&schema), &json!({"x": "yes"}), None).is_ok());
        let errors = check_resolution(Some(&schema), &json!({"x": 5}), None).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "/answer/x");

        // Recursive refs and `$ref`-named data are fine.
        let tree = cache
            .compile(&json!({
                "$defs": {"node": {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}},
                "$ref": "#/$defs/node",
                "examples": [{"$ref": "http://example.com/not-a-reference"}],
                "properties": {"$ref": {"const": {"$ref": "file:///data"}}}
            }))
            .unwrap();
        assert!(tree.is_valid(&json!({"children": [{"children": []}]})));
        assert!(!tree.is_valid(&json!({"children": [{"children": 3}]})));
    }

    #[test]
    fn refuses_deep_and_large_schemas() {
        let mut deep = json!({"type": "string"});
        for _ in 0..MAX_SCHEMA_DEPTH {
            deep = json!({"items": deep});
        }
        assert_eq!(
            SchemaCache::new().compile(&deep).unwrap_err(),
            SchemaError::TooDeep { max: MAX_SCHEMA_DEPTH }
        );
        let mut ok = json!({"type": "string"});
        for _ in 0..MAX_SCHEMA_DEPTH / 2 - 1 {
            ok = json!({"items": ok});
        }
        assert!(SchemaCache::new().compile(&ok).is_ok());

        let mut deep_data = json!(1);
        for _ in 0..MAX_SCHEMA_DEPTH {
            deep_data = json!([deep_data]);
        }
        let e = SchemaCache::new().compile(&json!({"const": deep_data})).unwrap_err();
        assert_eq!(e, SchemaError::TooDeep { max: MAX_SCHEMA_DEPTH });

        let big = json!({"description": "x".repeat(MAX_SCHEMA_BYTES)});
        assert!(matches!(SchemaCache::new().compile(&big), Err(SchemaError::TooLarge { .. })));
    }

    #[test]
    fn same_schema_is_shared() {
        let cache = SchemaCache::new();
        let schema = json!({"type": "object", "required": ["a"]});
        let a = cache.compile(&schema).unwrap();
        let b = cache.compile(&schema.clone()).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(cache.len(), 1);
        let c = cache.compile(&json!({"type": "object", "required": ["b"]})).unwrap();
        assert!(!Arc::ptr_eq(&a, &c));
        assert_eq!(cache.len(), 2);
        // A clone of the cache is the same cache.
        let d = cache.clone().compile(&schema).unwrap();
        assert!(Arc::ptr_eq(&a, &d));
    }

    #[test]
    fn key_order_does_not_matter() {
        let cache = SchemaCache::new();
        let one: Value =
            serde_json::from_str(r#"{"a":1,"b":2,"properties":{"x":{"type":"string","minLength":1}}}"#)
                .unwrap();
        let two: Value =
            serde_json::from_str(r#"{"properties":{"x":{"minLength":1,"type":"string"}},"b":2,"a":1}"#)
                .unwrap();
        let a = cache.compile(&one).unwrap();
        let b = cache.compile(&two).unwrap();
        assert!(Arc::ptr_eq(&a, &b));
        assert_eq!(a.canonical(), r#"{"a":1,"b":2,"properties":{"x":{"minLength":1,"type":"string"}}}"#);
        assert_eq!(cache.len(), 1);
    }

    #[test]
    fn dropping_the_last_holder_frees_the_entry() {
        let cache = SchemaCache::new();
        let schema = json!({"type": "string"});
        let a = cache.compile(&schema).unwrap();
        let b = cache.compile(&schema).unwrap();
        drop(a);
        assert_eq!(cache.len(), 1);
        drop(b);
        assert_eq!(cache.len(), 0);
        assert!(cache.inner.lock().entries.is_empty());
        // And it can be compiled again afterwards.
        let again = cache.compile(&schema).unwrap();
        assert_eq!(cache.len(), 1);
        // Dropping a schema after its cache is gone is fine.
        drop(cache);
        drop(again);
    }

    #[test]
    fn dead_entries_are_pruned() {
        let cache = SchemaCache::new();
        // Simulate entries whose drop-time removal was missed.
        {
            let mut map = cache.inner.lock();
            for i in 0..MIN_PRUNE_AT {
                map.entries.insert(format!("dead{i}").into(), Weak::new());
            }
        }
        let keep: Vec<_> = (0..3).map(|i| cache.compile(&json!({"minimum": i})).unwrap()).collect();
        let map = cache.inner.lock();
        assert_eq!(map.entries.len(), 3);
        assert!(map.prune_at >= MIN_PRUNE_AT);
        drop(map);
        drop(keep);
        assert!(cache.is_empty());
    }

    #[test]
    fn concurrent_compiles_share_one_schema() {
        let cache = SchemaCache::new();
        let schema = json!({"type": "array", "items": {"type": "integer"}});
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let cache = cache.clone();
                let schema = schema.clone();
                std::thread::spawn(move || {
                    (0..50).map(|_| cache.compile(&schema).unwrap()).collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<Arc<CompiledSchema>> = handles.into_iter().flat_map(|h| h.join().unwrap()).collect();
        assert!(all.iter().all(|s| Arc::ptr_eq(s, &all[0])));
        assert_eq!(cache.len(), 1);
        drop(all);
        assert!(cache.is_empty());
    }

    #[test]
    fn reports_every_error_with_its_pointer() {
        let cache = SchemaCache::new();
        let schema = cache
            .compile(&json!({
                "type": "object",
                "properties": {
                    "approved_cpts": {"type": "array", "items": {"type": "string", "pattern": "^[0-9]{5}$"}},
                    "decision": {"enum": ["approve", "deny"]},
                    "notes": {"type": "string"}
                },
                "required": ["approved_cpts", "decision"],
                "additionalProperties": false
            }))
            .unwrap();
        let answer = json!({"approved_cpts": [12345, "99213", "abc"], "decision": "maybe", "extra": true});
        let errors = check_resolution(Some(&schema), &answer, Some(0.5)).unwrap_err();
        let mut paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        paths.sort_unstable();
        assert_eq!(
            paths,
            ["/answer", "/answer/approved_cpts/0", "/answer/approved_cpts/2", "/answer/decision"]
        );
        assert!(errors.iter().all(|e| !e.message.is_empty()));
        assert_eq!(summary(&errors), "the answer does not match the escalation's output_schema (4 errors)");

        let errors = check_resolution(Some(&schema), &json!({"decision": "deny"}), None).unwrap_err();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "/answer");
        assert!(errors[0].message.contains("approved_cpts"), "{}", errors[0].message);
        assert_eq!(summary(&errors), "the answer does not match the escalation's output_schema (1 error)");

        assert!(check_resolution(
            Some(&schema),
            &json!({"approved_cpts": ["99213"], "decision": "approve"}),
            None
        )
        .is_ok());
    }

    #[test]
    fn pointer_segments_are_escaped() {
        let schema = CompiledSchema::compile(
            &json!({"properties": {"a/b": {"properties": {"c~d": {"type": "integer"}}}}}),
        )
        .unwrap();
        let errors = check_resolution(Some(&schema), &json!({"a/b": {"c~d": "x"}}), None).unwrap_err();
        assert_eq!(errors[0].path, "/answer/a~1b/c~0d");
    }

    #[test]
    fn no_schema_means_any_answer() {
        for answer in [json!(null), json!("free text"), json!({"anything": [1, 2, 3]})] {
            assert_eq!(check_resolution(None, &answer, None), Ok(()));
            assert_eq!(check_resolution(None, &answer, Some(0.7)), Ok(()));
        }
    }

    #[test]
    fn confidence_bounds() {
        for ok in [Some(0.0), Some(1.0), Some(0.5), None] {
            assert_eq!(check_resolution(None, &json!("a"), ok), Ok(()), "{ok:?}");
        }
        for bad in [-0.1, 1.1, f64::NAN, f64::INFINITY, f64::NEG_INFINITY, -0.000001] {
            let errors = check_resolution(None, &json!("a"), Some(bad)).unwrap_err();
            assert_eq!(errors.len(), 1, "{bad}");
            assert_eq!(errors[0].path, "/confidence");
            assert_eq!(summary(&errors), "confidence must be between 0 and 1");
        }
        // Schema and confidence errors are reported together.
        let schema = CompiledSchema::compile(&json!({"type": "string"})).unwrap();
        let errors = check_resolution(Some(&schema), &json!(3), Some(2.0)).unwrap_err();
        let paths: Vec<&str> = errors.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["/answer", "/confidence"]);
        assert_eq!(
            summary(&errors),
            "the answer does not match the escalation's output_schema (1 error), and confidence must be between 0 and 1"
        );
    }

    #[test]
    fn long_messages_are_cut() {
        let schema = CompiledSchema::compile(&json!({"type": "integer"})).unwrap();
        let errors = check_resolution(Some(&schema), &json!("y".repeat(10_000)), None).unwrap_err();
        assert!(errors[0].message.chars().count() <= MAX_MESSAGE_CHARS + 1);
        assert!(errors[0].message.ends_with('…'));
    }
}
