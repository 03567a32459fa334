//! The resolve form an escalation's `output_schema` describes, and the answer
//! read back from it.
//!
//! A schema becomes a tree of fields: objects with `properties` become
//! fieldsets, strings text inputs, numbers and integers numeric inputs,
//! booleans and `enum`s choices, arrays of scalars one item per line (arrays
//! of an `enum` a set of checkboxes), anything else (`oneOf`, `$ref`, free
//! objects, arrays of objects) a JSON text area. Constraints such as
//! `pattern` or `minimum` are shown as hints and judged by the Quality Gate
//! alone, so a refused answer comes back with its errors next to the fields
//! they name (a field's name is its JSON pointer below the resolution).

use std::collections::BTreeMap;

use maud::{html, Markup};
use serde_json::{Map, Value};

use super::Form;
use crate::error::FieldError;

/// The deepest nesting drawn as fields; deeper parts are JSON text areas.
const MAX_DEPTH: usize = 8;
/// The most properties one fieldset draws; a larger object is a JSON text area.
const MAX_PROPERTIES: usize = 200;

#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Text {
        input_type: &'static str,
    },
    Number {
        integer: bool,
    },
    Boolean,
    Choice(Vec<Value>),
    /// An array of scalars, one per line.
    Lines(Box<Kind>),
    /// An array of `enum` values, as checkboxes.
    Choices(Vec<Value>),
    Json,
}

#[derive(Debug, Clone)]
struct Field {
    /// JSON pointer from the resolution body, e.g. `/answer/address/city`; the form name without its `/`.
    pointer: String,
    label: String,
    required: bool,
    description: Option<String>,
    hints: Vec<String>,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Node {
    Group { field: Field, children: Vec<Node> },
    Input(Field),
}

/// The form of a schema (none: a free answer, text or JSON).
#[derive(Debug, Clone)]
pub struct SchemaForm {
    root: Node,
}

fn escape_pointer(token: &str) -> String {
    token.replace('~', "~0").replace('/', "~1")
}

fn unescape_pointer(token: &str) -> String {
    token.replace("~1", "/").replace("~0", "~")
}

/// The schema's type, ignoring `null` in a list of types.
fn type_of(schema: &Map<String, Value>) -> Option<&str> {
    match schema.get("type")? {
        Value::String(t) => Some(t.as_str()),
        Value::Array(types) => {
            let named: Vec<&str> = types.iter().filter_map(Value::as_str).filter(|t| *t != "null").collect();
            (named.len() == 1).then(|| named[0])
        }
        _ => None,
    }
}

fn choices(schema: &Map<String, Value>) -> Option<Vec<Value>> {
    if let Some(Value::Array(values)) = schema.get("enum") {
        if !values.is_empty() && values.len() <= 100 && values.iter().all(|v| !v.is_object() && !v.is_array())
        {
            return Some(values.clone());
        }
    }
    schema.get("const").filter(|v| !v.is_object() && !v.is_array()).map(|v| vec![v.clone()])
}

fn scalar_kind(schema: &Map<String, Value>) -> Option<Kind> {
    if let Some(values) = choices(schema) {
        return Some(Kind::Choice(values));
    }
    Some(match type_of(schema)? {
        "string" => Kind::Text {
            input_type: match schema.get("format").and_then(Value::as_str) {
                Some("email") => "email",
                Some("uri") => "url",
                Some("date") => "date",
                _ => "text",
            },
        },
        "number" => Kind::Number { integer: false },
        "integer" => Kind::Number { integer: true },
        "boolean" => Kind::Boolean,
        _ => return None,
    })
}

fn hints_of(schema: &Map<String, Value>) -> Vec<String> {
    let mut hints = Vec::new();
    let num = |k: &str| schema.get(k).and_then(Value::as_f64);
    if let Some(p) = schema.get("pattern").and_then(Value::as_str) {
        hints.push(format!("pattern {p}"));
    }
    if let Some(f) = schema.get("format").and_then(Value::as_str) {
        hints.push(format!("format {f}"));
    }
    for (key, text) in [
        ("minLength", "at least {} characters"),
        ("maxLength", "at most {} characters"),
        ("minimum", "at least {}"),
        ("maximum", "at most {}"),
        ("exclusiveMinimum", "more than {}"),
        ("exclusiveMaximum", "less than {}"),
        ("minItems", "at least {} items"),
        ("maxItems", "at most {} items"),
    ] {
        if let Some(n) = num(key) {
            hints.push(text.replace("{}", &n.to_string()));
        }
    }
    if schema.get("uniqueItems") == Some(&Value::Bool(true)) {
        hints.push("no repeated items".into());
    }
    hints
}

fn plan(schema: &Value, pointer: String, label: String, required: bool, depth: usize) -> Node {
    let empty = Map::new();
    let object = schema.as_object().unwrap_or(&empty);
    let description = object.get("description").and_then(Value::as_str).map(str::to_string);
    let label = object.get("title").and_then(Value::as_str).map(str::to_string).unwrap_or(label);
    let field = |kind| Field {
        pointer: pointer.clone(),
        label: label.clone(),
        required,
        description: description.clone(),
        hints: hints_of(object),
        kind,
    };
    let properties = object.get("properties").and_then(Value::as_object);
    if let (Some("object"), Some(properties)) = (type_of(object).or(properties.map(|_| "object")), properties)
    {
        if depth < MAX_DEPTH && properties.len() <= MAX_PROPERTIES {
            let required_names: Vec<&str> = object
                .get("required")
                .and_then(Value::as_array)
                .map(|r| r.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            let children = properties
                .iter()
                .map(|(name, sub)| {
                    plan(
                        sub,
                        format!("{pointer}/{}", escape_pointer(name)),
                        name.clone(),
                        required_names.contains(&name.as_str()),
                        depth + 1,
                    )
                })
                .collect();
            return Node::Group { field: field(Kind::Json), children };
        }
        return Node::Input(field(Kind::Json));
    }
    if type_of(object) == Some("array") && choices(object).is_none() {
        let items = object.get("items").and_then(Value::as_object);
        let kind = match items {
            Some(items) => match (choices(items), scalar_kind(items)) {
                (Some(values), _) => Kind::Choices(values),
                (None, Some(kind)) => Kind::Lines(Box::new(kind)),
                (None, None) => Kind::Json,
            },
            None => Kind::Json,
        };
        return Node::Input(field(kind));
    }
    Node::Input(field(scalar_kind(object).unwrap_or(Kind::Json)))
}

impl SchemaForm {
    /// The form for answers of `schema`; without one, a single free answer.
    pub fn new(schema: Option<&Value>) -> SchemaForm {
        let root = match schema {
            Some(schema) => plan(schema, "/answer".into(), "Answer".into(), true, 0),
            None => Node::Input(Field {
                pointer: "/answer".into(),
                label: "Answer".into(),
                required: true,
                description: Some("Text, or JSON for a structured answer.".into()),
                hints: Vec::new(),
                kind: Kind::Json,
            }),
        };
        SchemaForm { root }
    }

    /// The answer the form's fields make, and the fields that could not be read
    /// (JSON that does not parse). Empty optional fields are left out; a number
    /// that is not one is passed on as text for the Quality Gate to name.
    pub fn read(&self, form: &Form, free_text: bool) -> (Value, Vec<FieldError>) {
        let mut errors = Vec::new();
        let answer = read_node(&self.root, form, &mut errors, free_text).unwrap_or(match &self.root {
            Node::Group { .. } => Value::Object(Map::new()),
            Node::Input(_) => Value::Null,
        });
        (answer, errors)
    }

    /// The fields, filled with `form`'s values and showing `errors` next to the fields they name.
    pub fn render(&self, form: &Form, errors: &[FieldError]) -> Markup {
        let placed = place_errors(errors);
        let mut index = 0;
        render_node(&self.root, form, &placed, &mut index, true)
    }

    /// Where each error is shown: the `id` of its field, if the form has one.
    pub fn anchor_of(&self, error: &FieldError) -> Option<String> {
        let key = error_key(error);
        let mut index = 0;
        find_anchor(&self.root, &key, &mut index)
    }
}

fn name_of(pointer: &str) -> &str {
    pointer.trim_start_matches('/')
}

fn parse_scalar(kind: &Kind, raw: &str) -> Value {
    match kind {
        Kind::Number { integer } => {
            let t = raw.trim();
            if *integer {
                if let Ok(n) = t.parse::<i64>() {
                    return Value::from(n);
                }
            }
            match t.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
                Some(n) => Value::Number(n),
                None => Value::String(raw.to_string()),
            }
        }
        Kind::Boolean => match raw.trim() {
            "true" => Value::Bool(true),
            "false" => Value::Bool(false),
            _ => Value::String(raw.to_string()),
        },
        Kind::Choice(_) | Kind::Choices(_) => {
            serde_json::from_str(raw).unwrap_or_else(|_| Value::String(raw.to_string()))
        }
        _ => Value::String(raw.to_string()),
    }
}

fn read_node(node: &Node, form: &Form, errors: &mut Vec<FieldError>, free_text: bool) -> Option<Value> {
    match node {
        Node::Group { children, field } => {
            let mut object = Map::new();
            for child in children {
                let f = match child {
                    Node::Group { field, .. } | Node::Input(field) => field,
                };
                if let Some(v) = read_node(child, form, errors, free_text) {
                    let name = f.pointer.rsplit('/').next().map(unescape_pointer).unwrap_or_default();
                    object.insert(name, v);
                }
            }
            (!object.is_empty() || field.required).then_some(Value::Object(object))
        }
        Node::Input(field) => {
            let name = name_of(&field.pointer);
            match &field.kind {
                Kind::Choices(_) => {
                    let picked: Vec<Value> =
                        form.all(name).iter().map(|raw| parse_scalar(&field.kind, raw)).collect();
                    (!picked.is_empty() || field.required).then_some(Value::Array(picked))
                }
                Kind::Lines(item) => {
                    let raw = form.get(name).unwrap_or_default();
                    let items: Vec<Value> = raw
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(|l| parse_scalar(item, l))
                        .collect();
                    (!items.is_empty() || field.required).then_some(Value::Array(items))
                }
                Kind::Json => {
                    let raw = form.get(name).unwrap_or_default();
                    if raw.trim().is_empty() {
                        return None;
                    }
                    match serde_json::from_str::<Value>(raw) {
                        Ok(v) => Some(v),
                        Err(_) if free_text => Some(Value::String(raw.to_string())),
                        Err(e) => {
                            errors.push(FieldError {
                                path: field.pointer.clone(),
                                message: format!("not valid JSON: {e}"),
                            });
                            None
                        }
                    }
                }
                kind => {
                    let raw = form.get(name).unwrap_or_default();
                    (!raw.is_empty()).then(|| parse_scalar(kind, raw))
                }
            }
        }
    }
}

/// The pointer an error belongs to: a missing required property is shown at
/// the property, not at the object that lacks it.
fn error_key(error: &FieldError) -> String {
    let m = &error.message;
    if let Some(rest) = m.strip_prefix('"') {
        if let Some(name) = rest.strip_suffix("\" is a required property") {
            if let Ok(name) = serde_json::from_str::<String>(&format!("\"{name}\"")) {
                return format!("{}/{}", error.path, escape_pointer(&name));
            }
        }
    }
    error.path.clone()
}

fn place_errors(errors: &[FieldError]) -> BTreeMap<String, Vec<String>> {
    let mut placed: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in errors {
        placed.entry(error_key(e)).or_default().push(e.message.clone());
    }
    placed
}

/// Errors a field shows: its own, and for a list or JSON field those about its items.
fn errors_for<'a>(field: &Field, placed: &'a BTreeMap<String, Vec<String>>) -> Vec<&'a str> {
    let inside = matches!(field.kind, Kind::Lines(_) | Kind::Choices(_) | Kind::Json);
    placed
        .iter()
        .filter(|(key, _)| {
            *key == &field.pointer || (inside && key.starts_with(&format!("{}/", field.pointer)))
        })
        .flat_map(|(_, messages)| messages.iter().map(String::as_str))
        .collect()
}

fn field_id(pointer: &str, index: usize) -> String {
    let clean: String =
        name_of(pointer).chars().map(|c| if c.is_ascii_alphanumeric() { c } else { '-' }).take(60).collect();
    format!("f{index}-{clean}")
}

fn claims(field: &Field, key: &str) -> bool {
    key == field.pointer
        || (matches!(field.kind, Kind::Lines(_) | Kind::Choices(_) | Kind::Json)
            && key.starts_with(&format!("{}/", field.pointer)))
}

fn find_anchor(node: &Node, key: &str, index: &mut usize) -> Option<String> {
    let me = *index;
    *index += 1;
    match node {
        Node::Group { field, children } => {
            for child in children {
                if let Some(found) = find_anchor(child, key, index) {
                    return Some(found);
                }
            }
            (key == field.pointer).then(|| field_id(&field.pointer, me))
        }
        Node::Input(field) => claims(field, key).then(|| field_id(&field.pointer, me)),
    }
}

fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn render_node(
    node: &Node,
    form: &Form,
    placed: &BTreeMap<String, Vec<String>>,
    index: &mut usize,
    root: bool,
) -> Markup {
    let me = *index;
    *index += 1;
    match node {
        Node::Group { field, children } => {
            let id = field_id(&field.pointer, me);
            let own: Vec<&String> =
                placed.get(&field.pointer).map(|m| m.iter().collect()).unwrap_or_default();
            html! {
                fieldset.group id=(id) {
                    legend { (field.label) @if field.required && !root { span.req aria-hidden="true" { " *" } } }
                    @if let Some(d) = &field.description { p.hint { (d) } }
                    @for m in &own { p.field-error role="alert" { (m) } }
                    @for child in children { (render_node(child, form, placed, index, false)) }
                }
            }
        }
        Node::Input(field) => {
            render_input(field, form, &errors_for(field, placed), &field_id(&field.pointer, me))
        }
    }
}

fn render_input(field: &Field, form: &Form, errors: &[&str], id: &str) -> Markup {
    let name = name_of(&field.pointer);
    let raw = form.get(name).unwrap_or_default();
    let hint_id = format!("{id}-hint");
    let err_id = format!("{id}-error");
    let mut described = Vec::new();
    if field.description.is_some() || !field.hints.is_empty() || matches!(field.kind, Kind::Lines(_)) {
        described.push(hint_id.clone());
    }
    if !errors.is_empty() {
        described.push(err_id.clone());
    }
    let described = (!described.is_empty()).then(|| described.join(" "));
    let invalid = (!errors.is_empty()).then_some("true");
    let label = html! {
        (field.label)
        @if field.required { span.req aria-hidden="true" { " *" } span.sr { " (required)" } }
    };
    let hint = html! {
        @if described.as_deref().is_some_and(|d| d.contains(&hint_id)) {
            p.hint id=(hint_id) {
                @if let Some(d) = &field.description { (d) " " }
                @if let Kind::Lines(_) = field.kind { "One item per line. " }
                @if !field.hints.is_empty() { span.constraints { (field.hints.join("; ")) } }
            }
        }
    };
    let error = html! {
        @if !errors.is_empty() {
            p.field-error id=(err_id) {
                @for (i, m) in errors.iter().enumerate() { @if i > 0 { br; } (m) }
            }
        }
    };
    let control = match &field.kind {
        Kind::Text { input_type } => html! {
            input id=(id) type=(input_type) name=(name) value=(raw) aria-describedby=[described.as_deref()] aria-invalid=[invalid] autocomplete="off";
        },
        Kind::Number { integer } => html! {
            input id=(id) type="text" inputmode=(if *integer { "numeric" } else { "decimal" }) name=(name) value=(raw) aria-describedby=[described.as_deref()] aria-invalid=[invalid] autocomplete="off";
        },
        Kind::Boolean => html! {
            select id=(id) name=(name) aria-describedby=[described.as_deref()] aria-invalid=[invalid] {
                option value="" selected[raw.is_empty()] { "— choose —" }
                option value="true" selected[raw == "true"] { "Yes (true)" }
                option value="false" selected[raw == "false"] { "No (false)" }
            }
        },
        Kind::Choice(values) => html! {
            select id=(id) name=(name) aria-describedby=[described.as_deref()] aria-invalid=[invalid] {
                option value="" selected[raw.is_empty()] { "— choose —" }
                @for v in values {
                    @let json = v.to_string();
                    option value=(json) selected[raw == json] { (value_text(v)) }
                }
            }
        },
        Kind::Choices(values) => {
            let picked = form.all(name);
            html! {
                fieldset.choices id=(id) aria-describedby=[described.as_deref()] aria-invalid=[invalid] {
                    legend { (label) }
                    @for (i, v) in values.iter().enumerate() {
                        @let json = v.to_string();
                        label.check {
                            input type="checkbox" id={ (id) "-" (i) } name=(name) value=(json) checked[picked.contains(&json)];
                            " " (value_text(v))
                        }
                    }
                }
            }
        }
        Kind::Lines(_) => html! {
            textarea id=(id) name=(name) rows="4" aria-describedby=[described.as_deref()] aria-invalid=[invalid] { (raw) }
        },
        Kind::Json => html! {
            textarea.code id=(id) name=(name) rows="5" spellcheck="false" aria-describedby=[described.as_deref()] aria-invalid=[invalid] { (raw) }
        },
    };
    let is_group = matches!(field.kind, Kind::Choices(_));
    html! {
        div.field.invalid[!errors.is_empty()] {
            @if !is_group { label for=(id) { (label) } }
            (control)
            (hint)
            (error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn form(pairs: &[(&str, &str)]) -> Form {
        let body: String = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish();
        Form::parse(body.as_bytes())
    }

    fn schema() -> Value {
        json!({
            "type": "object",
            "required": ["code", "amount"],
            "properties": {
                "code": {"type": "string", "pattern": "^[A-Z][0-9]{2}$"},
                "amount": {"type": "number", "minimum": 0},
                "count": {"type": "integer"},
                "approved": {"type": "boolean"},
                "tier": {"enum": ["gold", "silver", 3]},
                "tags": {"type": "array", "items": {"type": "string"}},
                "flags": {"type": "array", "items": {"enum": ["a", "b"]}},
                "address": {"type": "object", "required": ["city"], "properties": {"city": {"type": "string"}, "zip": {"type": ["string", "null"]}}},
                "extra": {"oneOf": [{"type": "string"}, {"type": "number"}]},
                "a/b": {"type": "string"}
            }
        })
    }

    #[test]
    fn every_kind_is_read_back_into_the_answer() {
        let f = SchemaForm::new(Some(&schema()));
        let (answer, errors) = f.read(
            &form(&[
                ("answer/code", "A12"),
                ("answer/amount", "12.5"),
                ("answer/count", "3"),
                ("answer/approved", "false"),
                ("answer/tier", "3"),
                ("answer/tags", "x\n\n y \n"),
                ("answer/flags", "\"b\""),
                ("answer/address/city", "Lyon"),
                ("answer/extra", "7"),
                ("answer/a~1b", "slash"),
            ]),
            false,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            answer,
            json!({"code": "A12", "amount": 12.5, "count": 3, "approved": false, "tier": 3, "tags": ["x", "y"],
                   "flags": ["b"], "address": {"city": "Lyon"}, "extra": 7, "a/b": "slash"})
        );
    }

    #[test]
    fn empty_fields_are_left_out_and_bad_numbers_pass_as_text() {
        let f = SchemaForm::new(Some(&schema()));
        let (answer, errors) = f.read(&form(&[("answer/amount", "ten"), ("answer/tags", "")]), false);
        assert!(errors.is_empty());
        assert_eq!(answer, json!({"amount": "ten"}));
        let (_, errors) = f.read(&form(&[("answer/extra", "{not json")]), false);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].path, "/answer/extra");
    }

    #[test]
    fn without_a_schema_the_answer_is_json_or_text() {
        let f = SchemaForm::new(None);
        assert_eq!(f.read(&form(&[("answer", "{\"a\": 1}")]), true).0, json!({"a": 1}));
        assert_eq!(f.read(&form(&[("answer", "plain words")]), true).0, json!("plain words"));
    }

    #[test]
    fn errors_are_placed_at_the_fields_they_name() {
        let f = SchemaForm::new(Some(&schema()));
        let errors = vec![
            FieldError { path: "/answer".into(), message: "\"code\" is a required property".into() },
            FieldError { path: "/answer/amount".into(), message: "-1 is less than the minimum of 0".into() },
            FieldError { path: "/answer/tags/1".into(), message: "1 is not of type \"string\"".into() },
            FieldError { path: "/answer/address".into(), message: "\"city\" is a required property".into() },
        ];
        let html = f.render(&form(&[("answer/amount", "-1")]), &errors).into_string();
        for e in &errors {
            let anchor = f.anchor_of(e).expect("every error has a field");
            let at =
                html.find(&format!("id=\"{anchor}-error\"")).unwrap_or_else(|| panic!("{anchor} in {html}"));
            assert!(html[at..].contains(&e.message.replace('"', "&quot;")), "{}", e.message);
        }
        assert_eq!(f.anchor_of(&errors[0]).unwrap(), "f1-answer-code");
        assert!(html.contains("value=\"-1\""), "values are kept");
        assert!(html.contains("pattern ^[A-Z][0-9]{2}$"), "constraints are hints");
        assert!(!html.contains("pattern=\""), "the Quality Gate judges, not the browser");
    }
}
