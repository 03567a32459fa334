//! `/v1/customers`: a tenant's customer records, created or matched by an
//! identifier (`POST`) and read by id (`GET`), with an `sk_live_` key or the
//! JWT. The same find-or-create serves the message path
//! ([`customer_for_message`]): customers are created on the fly from a
//! message's `customer_id` or `identity`.

use std::sync::{Arc, Mutex};

use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::api_keys::rfc3339;
use super::{envelope, key_or_jwt};
use crate::error::AppError;
use crate::http::extract::Json;
use crate::identity::model::Email;
use crate::identity::tokens::new_id;
use crate::startup::AppState;
use crate::store::customers::{change_customer, insert_customer, CustomerRow};
use crate::store::{now_ms, StoreError, WriteRequest};

/// Prefix of customer ids.
pub const CUSTOMER_ID_PREFIX: &str = "cust_";
const MAX_NAME_CHARS: usize = 200;
const MAX_EXTERNAL_ID_CHARS: usize = 200;
const MAX_METADATA_BYTES: usize = 16 * 1024;
const MAX_TAGS: usize = 50;
const MAX_TAG_CHARS: usize = 100;
/// Rounds of match-then-write an upsert gets when concurrent writers keep
/// beating it to the row (each lost round re-reads what they wrote).
const UPSERT_ATTEMPTS: usize = 5;

/// What a caller says about a customer: identifiers to match it by, and the
/// fields to set on it. Raw input: [`upsert_customer`] validates it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CustomerInput {
    /// A `cust_` id of the tenant; matched first, and 404 when unknown.
    pub id: Option<String>,
    /// The caller's own id for the customer, 1–200 characters; unique in the tenant.
    pub external_id: Option<String>,
    pub email: Option<String>,
    /// E.164: `+` and 8–15 digits.
    pub phone: Option<String>,
    /// 1–200 characters.
    pub name: Option<String>,
    /// Merged key by key into the stored metadata; a `null` value removes its
    /// key. At most 16 KiB serialised, before and after the merge.
    pub metadata: Option<Map<String, Value>>,
    /// Replaces the stored tags: at most 50, each 1–100 characters.
    pub tags: Option<Vec<String>>,
}

/// A [`CustomerInput`] that passed validation: identifiers normalised.
#[derive(Debug, Clone)]
struct Wanted {
    id: Option<String>,
    external_id: Option<String>,
    email: Option<String>,
    phone: Option<String>,
    name: Option<String>,
    metadata: Option<Map<String, Value>>,
    tags: Option<Vec<String>>,
}

fn bad(message: impl Into<String>) -> AppError {
    AppError::BadRequest(message.into())
}

fn parse_external_id(field: &str, raw: &str) -> Result<String, AppError> {
    let id = raw.trim();
    let chars = id.chars().count();
    if chars == 0 || chars > MAX_EXTERNAL_ID_CHARS || id.chars().any(char::is_control) {
        return Err(bad(format!(
            "{field} must be 1–{MAX_EXTERNAL_ID_CHARS} characters without control characters"
        )));
    }
    Ok(id.to_string())
}

fn parse_email(raw: &str) -> Result<String, AppError> {
    if raw.trim().is_empty() {
        return Err(bad("email must not be empty"));
    }
    Email::parse(raw).map(|e| e.as_str().to_string()).map_err(AppError::BadRequest)
}

/// E.164: a `+`, then 8–15 digits, the first not 0. No spaces or dashes.
fn parse_phone(raw: &str) -> Result<String, AppError> {
    let phone = raw.trim();
    let valid = phone.strip_prefix('+').is_some_and(|digits| {
        (8..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0')
    });
    if !valid {
        return Err(bad(format!(
            "phone {raw:?} is not in E.164 format: `+` then 8–15 digits, e.g. +15551234567"
        )));
    }
    Ok(phone.to_string())
}

fn parse_name(raw: &str) -> Result<String, AppError> {
    let name = raw.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > MAX_NAME_CHARS {
        return Err(bad(format!("name must be 1–{MAX_NAME_CHARS} characters")));
    }
    Ok(name.to_string())
}

fn parse_tags(raw: Vec<String>) -> Result<Vec<String>, AppError> {
    let mut tags: Vec<String> = Vec::new();
    for tag in raw {
        let tag = tag.trim();
        let chars = tag.chars().count();
        if chars == 0 || chars > MAX_TAG_CHARS {
            return Err(bad(format!("each tag must be 1–{MAX_TAG_CHARS} characters")));
        }
        if !tags.iter().any(|t| t == tag) {
            tags.push(tag.to_string());
        }
    }
    if tags.len() > MAX_TAGS {
        return Err(bad(format!("at most {MAX_TAGS} tags")));
    }
    Ok(tags)
}

fn check_metadata_size(metadata: &Map<String, Value>, what: &str) -> Result<String, AppError> {
    let text = serde_json::to_string(metadata).map_err(AppError::internal)?;
    if text.len() > MAX_METADATA_BYTES {
        return Err(bad(format!("{what} is larger than 16 KiB serialised")));
    }
    Ok(text)
}

/// `metadata` as a JSON object (or absent when `null`), else 400.
fn metadata_object(raw: Option<Value>) -> Result<Option<Map<String, Value>>, AppError> {
    match raw {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Object(m)) => Ok(Some(m)),
        Some(_) => Err(bad("metadata must be a JSON object")),
    }
}

/// Merges `patch` into `into` key by key; a `null` removes its key.
fn merge_metadata(into: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (k, v) in patch {
        if v.is_null() {
            into.shift_remove(k);
        } else {
            into.insert(k.clone(), v.clone());
        }
    }
}

impl Wanted {
    fn parse(input: CustomerInput) -> Result<Wanted, AppError> {
        let metadata = input.metadata;
        if let Some(m) = &metadata {
            check_metadata_size(m, "metadata")?;
        }
        Ok(Wanted {
            id: input.id.map(|id| id.trim().to_string()),
            external_id: input
                .external_id
                .as_deref()
                .map(|e| parse_external_id("external_id", e))
                .transpose()?,
            email: input.email.as_deref().map(parse_email).transpose()?,
            phone: input.phone.as_deref().map(parse_phone).transpose()?,
            name: input.name.as_deref().map(parse_name).transpose()?,
            metadata,
            tags: input.tags.map(parse_tags).transpose()?,
        })
    }

    fn has_identifier(&self) -> bool {
        self.id.is_some() || self.external_id.is_some() || self.email.is_some() || self.phone.is_some()
    }

    /// A customer matched by email or phone is this one unless it already
    /// carries another external id: then it is another customer of the caller's.
    fn compatible(&self, row: &CustomerRow) -> bool {
        self.external_id.is_none() || row.external_id.is_none() || row.external_id == self.external_id
    }

    fn new_row(&self, tenant_id: &str, now: i64) -> Result<CustomerRow, AppError> {
        let mut metadata = Map::new();
        if let Some(patch) = &self.metadata {
            merge_metadata(&mut metadata, patch);
        }
        Ok(CustomerRow {
            id: new_id(CUSTOMER_ID_PREFIX),
            tenant_id: tenant_id.to_string(),
            external_id: self.external_id.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            name: self.name.clone(),
            tags: serde_json::to_string(self.tags.as_deref().unwrap_or_default())
                .map_err(AppError::internal)?,
            metadata: check_metadata_size(&metadata, "metadata")?,
            created_at: now,
            updated_at: now,
        })
    }

    /// `current` with the given fields set; equal to it when nothing changes.
    fn apply_to(&self, current: &CustomerRow, now: i64) -> Result<CustomerRow, AppError> {
        let mut next = current.clone();
        for (field, value) in [
            (&mut next.external_id, &self.external_id),
            (&mut next.email, &self.email),
            (&mut next.phone, &self.phone),
            (&mut next.name, &self.name),
        ] {
            if value.is_some() {
                field.clone_from(value);
            }
        }
        if let Some(tags) = &self.tags {
            next.tags = serde_json::to_string(tags).map_err(AppError::internal)?;
        }
        if let Some(patch) = &self.metadata {
            let before = stored_metadata(current)?;
            let mut after = before.clone();
            merge_metadata(&mut after, patch);
            // Unchanged content keeps its text, so a repeated identity writes nothing.
            if after != before {
                next.metadata = check_metadata_size(&after, "the merged metadata")?;
            }
        }
        if next != *current {
            next.updated_at = now.max(current.updated_at);
        }
        Ok(next)
    }
}

fn stored_metadata(row: &CustomerRow) -> Result<Map<String, Value>, AppError> {
    serde_json::from_str(&row.metadata)
        .map_err(|e| AppError::internal(format!("customer {} has bad metadata: {e}", row.id)))
}

fn stored_tags(row: &CustomerRow) -> Result<Vec<String>, AppError> {
    serde_json::from_str(&row.tags)
        .map_err(|e| AppError::internal(format!("customer {} has bad tags: {e}", row.id)))
}

/// The customer `wanted` names: by id, then external id, then email, then phone.
async fn find_match(
    state: &AppState,
    tenant_id: &str,
    wanted: &Wanted,
) -> Result<Option<CustomerRow>, AppError> {
    let store = &state.store;
    if let Some(id) = &wanted.id {
        return match store.customer(tenant_id, id).await? {
            Some(row) => Ok(Some(row)),
            None => Err(AppError::NotFound(format!("customer {id} not found"))),
        };
    }
    if let Some(external_id) = &wanted.external_id {
        if let Some(row) = store.customer_by_external_id(tenant_id, external_id).await? {
            return Ok(Some(row));
        }
    }
    if let Some(email) = &wanted.email {
        if let Some(row) = store.customer_by_email(tenant_id, email).await?.filter(|r| wanted.compatible(r)) {
            return Ok(Some(row));
        }
    }
    if let Some(phone) = &wanted.phone {
        if let Some(row) = store.customer_by_phone(tenant_id, phone).await?.filter(|r| wanted.compatible(r)) {
            return Ok(Some(row));
        }
    }
    Ok(None)
}

/// Finds the tenant's customer `input` names (by `id`, then `external_id`,
/// then email, then phone) and sets the given fields on it, or creates one.
/// Returns the customer as stored and whether it was created. Invalid input
/// and input without any identifier are 400; an unknown `id` is 404; an
/// `external_id` that another customer holds is 409. Concurrent calls for the
/// same `external_id` create one customer: the losers answer with it.
pub async fn upsert_customer(
    state: &AppState,
    tenant_id: &str,
    input: CustomerInput,
) -> Result<(CustomerRow, bool), AppError> {
    let wanted = Wanted::parse(input)?;
    if !wanted.has_identifier() {
        return Err(bad("a customer needs at least one of external_id, email or phone"));
    }
    for _ in 0..UPSERT_ATTEMPTS {
        let now = now_ms();
        let Some(current) = find_match(state, tenant_id, &wanted).await? else {
            let row = wanted.new_row(tenant_id, now)?;
            match state.store.submit(WriteRequest(vec![insert_customer(row.clone())])).await {
                Ok(()) => return Ok((row, true)),
                // A concurrent create took this external_id first: match it next round.
                Err(StoreError::Duplicate(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        };
        let next = wanted.apply_to(&current, now)?;
        if next == current {
            return Ok((current, false));
        }
        if let Some(external_id) =
            next.external_id.as_deref().filter(|e| current.external_id.as_deref() != Some(e))
        {
            let holder = state.store.customer_by_external_id(tenant_id, external_id).await?;
            if holder.is_some_and(|h| h.id != current.id) {
                return Err(AppError::Conflict(format!(
                    "external_id {external_id:?} belongs to another customer"
                )));
            }
        }
        // Applied again to the row as it is at commit, so concurrent merges all land.
        let change = {
            let wanted = wanted.clone();
            move |row: &CustomerRow| wanted.apply_to(row, now).map_err(|e| e.to_string())
        };
        let changed = Arc::new(Mutex::new(None));
        let write = change_customer(tenant_id.to_string(), current.id.clone(), change, changed.clone());
        match state.store.submit(WriteRequest(vec![write])).await {
            Ok(()) => {
                let row = changed.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
                return row
                    .map(|row| (row, false))
                    .ok_or_else(|| AppError::internal("customer change left no row"));
            }
            // Another customer took this external_id meanwhile: match again.
            Err(StoreError::Duplicate(_)) => continue,
            Err(e) => return Err(e.into()),
        }
    }
    Err(AppError::Conflict("the customer kept changing concurrently; try again".into()))
}

/// A reference to a customer from a message: an existing `cust_` id of the
/// tenant is that customer, anything else is the caller's external id.
enum CustomerRef {
    Id(String),
    External(String),
}

async fn resolve_ref(
    state: &AppState,
    tenant_id: &str,
    field: &str,
    raw: &str,
) -> Result<CustomerRef, AppError> {
    let reference = parse_external_id(field, raw)?;
    if reference.starts_with(CUSTOMER_ID_PREFIX)
        && state.store.customer(tenant_id, &reference).await?.is_some()
    {
        return Ok(CustomerRef::Id(reference));
    }
    Ok(CustomerRef::External(reference))
}

/// An `identity` field that must be a string when present (`null` is absent).
fn identity_text(key: &str, value: &Value) -> Result<Option<String>, AppError> {
    match value {
        Value::Null => Ok(None),
        Value::String(s) => Ok(Some(s.clone())),
        _ => Err(bad(format!("identity.{key} must be a string"))),
    }
}

/// The customer a message is from: its `customer_id` (an existing `cust_` id
/// of the tenant, else the caller's external id) and/or its `identity` object
/// (`email`, `phone`, `name`, `external_id` or `id`; an object `metadata` is
/// merged into the customer's metadata, and any other key is stored there
/// too), found or created as by [`upsert_customer`]. `None` when the message
/// names no customer. An `identity` that is not an object, or names nobody
/// (no identifier), or two references that disagree, are 400.
pub async fn customer_for_message(
    state: &AppState,
    tenant_id: &str,
    customer_id: Option<&str>,
    identity: Option<&Value>,
) -> Result<Option<CustomerRow>, AppError> {
    let identity = match identity {
        None | Some(Value::Null) => None,
        Some(Value::Object(m)) => Some(m),
        Some(_) => return Err(bad("identity must be a JSON object")),
    };
    if customer_id.is_none() && identity.is_none() {
        return Ok(None);
    }
    let mut input = CustomerInput::default();
    let mut refs: Vec<(&str, CustomerRef)> = Vec::new();
    if let Some(raw) = customer_id {
        refs.push(("customer_id", resolve_ref(state, tenant_id, "customer_id", raw).await?));
    }
    if let Some(identity) = identity {
        let mut metadata = Map::new();
        for (key, value) in identity {
            match (key.as_str(), value) {
                ("email", _) => input.email = identity_text(key, value)?,
                ("phone", _) => input.phone = identity_text(key, value)?,
                ("name", _) => input.name = identity_text(key, value)?,
                ("external_id" | "id", _) => {
                    if let Some(raw) = identity_text(key, value)? {
                        let field = if key == "id" { "identity.id" } else { "identity.external_id" };
                        refs.push((field, resolve_ref(state, tenant_id, field, &raw).await?));
                    }
                }
                ("metadata", Value::Object(m)) => merge_metadata(&mut metadata, m),
                _ => {
                    metadata.insert(key.clone(), value.clone());
                }
            }
        }
        if !metadata.is_empty() {
            input.metadata = Some(metadata);
        }
    }
    for (field, reference) in refs {
        let (slot, value, kind) = match reference {
            CustomerRef::Id(id) => (&mut input.id, id, "customer"),
            CustomerRef::External(e) => (&mut input.external_id, e, "external id"),
        };
        match slot {
            Some(earlier) if *earlier != value => {
                return Err(bad(format!("{field} names another {kind} than the message's other reference")));
            }
            _ => *slot = Some(value),
        }
    }
    if input.id.is_none() && input.external_id.is_none() && input.email.is_none() && input.phone.is_none() {
        return Err(bad("identity needs at least one of email, phone, external_id or id"));
    }
    upsert_customer(state, tenant_id, input).await.map(|(row, _)| Some(row))
}

/// The tenant a `/v1/customers` caller acts for: an `sk_live_` key's when an
/// `X-API-Key` header is sent (with its Origin rules and the tenant's rate
/// limits), else the JWT's (see [`AgentTenant::of`]). Any member may read and
/// write customers: no role is checked.
pub async fn caller_tenant(state: &AppState, req: &HttpRequest) -> Result<String, AppError> {
    Ok(key_or_jwt(state, req).await?.0.id)
}

#[derive(Deserialize, ToSchema)]
#[schema(example = json!({
    "email": "jane@example.com",
    "phone": "+15551234567",
    "name": "Jane Doe",
    "external_id": "shopify_cust_123",
    "metadata": {"plan": "pro"},
    "tags": ["vip"]
}))]
pub struct CreateCustomerRequest {
    /// Matched after `external_id`; stored lower case.
    #[schema(example = "jane@example.com")]
    pub email: Option<String>,
    /// E.164; matched after email.
    #[schema(example = "+15551234567")]
    pub phone: Option<String>,
    /// Display name, 1–200 characters.
    #[schema(example = "Jane Doe")]
    pub name: Option<String>,
    /// Your system's id for this customer, 1–200 characters; matched first.
    #[schema(example = "shopify_cust_123")]
    pub external_id: Option<String>,
    /// Custom attributes, merged key by key into a matched customer's (`null` removes a key); at most 16 KiB.
    #[schema(value_type = Option<Object>, example = json!({"plan": "pro"}))]
    pub metadata: Option<Value>,
    /// Replaces the customer's tags: at most 50, each 1–100 characters.
    #[schema(example = json!(["vip"]))]
    pub tags: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
#[serde(rename_all = "camelCase")]
#[schema(example = json!({
    "id": "cust_0193a1c2d4e57f6ab8c9d0e1f2a3b4c5",
    "email": "jane@example.com",
    "phone": "+15551234567",
    "name": "Jane Doe",
    "externalId": "shopify_cust_123",
    "tags": ["vip"],
    "metadata": {"plan": "pro"},
    "createdAt": "2026-02-25T21:44:11Z",
    "updatedAt": "2026-02-25T21:44:11Z"
}))]
pub struct CustomerView {
    #[schema(example = "cust_0193a1c2d4e57f6ab8c9d0e1f2a3b4c5")]
    pub id: String,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub name: Option<String>,
    pub external_id: Option<String>,
    pub tags: Vec<String>,
    #[schema(value_type = Object)]
    pub metadata: Map<String, Value>,
    pub created_at: String,
    pub updated_at: String,
}

/// The wire form of a customer.
pub fn view(row: &CustomerRow) -> Result<CustomerView, AppError> {
    Ok(CustomerView {
        id: row.id.clone(),
        email: row.email.clone(),
        phone: row.phone.clone(),
        name: row.name.clone(),
        external_id: row.external_id.clone(),
        tags: stored_tags(row)?,
        metadata: stored_metadata(row)?,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

/// Create a customer, or update the one that matches by `external_id`, then
/// email, then phone.
#[utoipa::path(
    post, path = "/v1/customers", tag = "agent: customers",
    security(("api_key" = []), ("bearer" = [])),
    request_body = CreateCustomerRequest,
    responses(
        (status = 201, description = "Created: `{success, data: CustomerView}`", body = crate::http::openapi::Envelope<CustomerView>),
        (status = 200, description = "Matched an existing customer, updated with the given fields", body = crate::http::openapi::Envelope<CustomerView>),
        (status = 400, description = "Invalid field, or none of external_id, email, phone", body = crate::http::openapi::EnvelopeError),
        (status = 401, description = "Missing or invalid X-API-Key or JWT", body = crate::http::openapi::EnvelopeError),
        (status = 403, description = "Origin not allowed for the key, or not a member of X-Tenant-Id", body = crate::http::openapi::EnvelopeError),
        (status = 409, description = "external_id belongs to another customer", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn create(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    // Who is calling comes before what they sent: an unauthenticated request is 401 whatever its body.
    let tenant_id = caller_tenant(&state, &req).await?;
    let body = Json::<CreateCustomerRequest>::from_request(&req, &mut payload.into_inner()).await?.0;
    if body.external_id.is_none() && body.email.is_none() && body.phone.is_none() {
        return Err(bad("give at least one of external_id, email or phone"));
    }
    let input = CustomerInput {
        id: None,
        external_id: body.external_id,
        email: body.email,
        phone: body.phone,
        name: body.name,
        metadata: metadata_object(body.metadata)?,
        tags: body.tags,
    };
    let (row, created) = upsert_customer(&state, &tenant_id, input).await?;
    let status = if created { StatusCode::CREATED } else { StatusCode::OK };
    Ok(envelope(status, view(&row)?))
}

/// One customer of the caller's tenant, with all identifiers, tags and metadata.
#[utoipa::path(
    get, path = "/v1/customers/{id}", tag = "agent: customers",
    security(("api_key" = []), ("bearer" = [])),
    params(("id" = String, Path, description = "Customer id (`cust_...`)")),
    responses(
        (status = 200, description = "`{success, data: CustomerView}`", body = crate::http::openapi::Envelope<CustomerView>),
        (status = 401, description = "Missing or invalid X-API-Key or JWT", body = crate::http::openapi::EnvelopeError),
        (status = 403, description = "Origin not allowed for the key, or not a member of X-Tenant-Id", body = crate::http::openapi::EnvelopeError),
        (status = 404, description = "Not found or another tenant's", body = crate::http::openapi::EnvelopeError),
    )
)]
pub async fn get(
    state: web::Data<AppState>,
    req: HttpRequest,
    id: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let tenant_id = caller_tenant(&state, &req).await?;
    let row = state
        .store
        .customer(&tenant_id, &id)
        .await?
        .ok_or_else(|| AppError::NotFound("customer not found".into()))?;
    Ok(envelope(StatusCode::OK, view(&row)?))
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/customers").route(web::post().to(create)))
        .service(web::resource("/customers/{id}").route(web::get().to(get)));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row() -> CustomerRow {
        CustomerRow {
            id: "cust_1".into(),
            tenant_id: "t".into(),
            external_id: None,
            email: Some("jane@example.com".into()),
            phone: None,
            name: Some("Jane".into()),
            tags: "[]".into(),
            metadata: r#"{"plan":"free","seats":3}"#.into(),
            created_at: 1_000,
            updated_at: 1_000,
        }
    }

    fn wanted(input: CustomerInput) -> Wanted {
        Wanted::parse(input).unwrap()
    }

    #[test]
    fn phones_must_be_e164() {
        for good in ["+15551234567", "+4930123456", " +447911123456 ", "+123456789012345"] {
            assert!(parse_phone(good).is_ok(), "{good}");
        }
        for bad in ["15551234567", "+1555", "+1234567890123456", "+1 555 123 4567", "+0123456789", "+", ""] {
            assert!(parse_phone(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn metadata_merges_key_by_key_and_null_removes() {
        let w = wanted(CustomerInput {
            metadata: Some(
                json!({"plan": "pro", "seats": null, "locale": "en"}).as_object().unwrap().clone(),
            ),
            ..Default::default()
        });
        let next = w.apply_to(&row(), 2_000).unwrap();
        assert_eq!(
            stored_metadata(&next).unwrap(),
            *json!({"plan": "pro", "locale": "en"}).as_object().unwrap()
        );
        assert_eq!(next.updated_at, 2_000);
        assert_eq!(next.name.as_deref(), Some("Jane"), "untouched");
    }

    #[test]
    fn an_input_that_changes_nothing_is_the_row_itself() {
        let w = wanted(CustomerInput {
            email: Some(" Jane@Example.com ".into()),
            metadata: Some(json!({"plan": "free"}).as_object().unwrap().clone()),
            ..Default::default()
        });
        assert_eq!(w.apply_to(&row(), 2_000).unwrap(), row());
    }

    #[test]
    fn oversized_or_malformed_fields_are_refused() {
        let big = json!({"blob": "x".repeat(MAX_METADATA_BYTES)}).as_object().unwrap().clone();
        for input in [
            CustomerInput { metadata: Some(big), ..Default::default() },
            CustomerInput { name: Some("n".repeat(MAX_NAME_CHARS + 1)), ..Default::default() },
            CustomerInput { name: Some("  ".into()), ..Default::default() },
            CustomerInput { external_id: Some("e".repeat(MAX_EXTERNAL_ID_CHARS + 1)), ..Default::default() },
            CustomerInput { external_id: Some(" ".into()), ..Default::default() },
            CustomerInput { email: Some("not-an-email".into()), ..Default::default() },
            CustomerInput { email: Some("".into()), ..Default::default() },
            CustomerInput { tags: Some(vec!["".into()]), ..Default::default() },
        ] {
            assert!(matches!(Wanted::parse(input.clone()), Err(AppError::BadRequest(_))), "{input:?}");
        }
    }

    #[test]
    fn a_match_with_another_external_id_is_another_customer() {
        let mut other = row();
        other.external_id = Some("y".into());
        let w = wanted(CustomerInput { external_id: Some("x".into()), ..Default::default() });
        assert!(!w.compatible(&other));
        assert!(w.compatible(&row()));
        let by_email = wanted(CustomerInput { email: Some("jane@example.com".into()), ..Default::default() });
        assert!(by_email.compatible(&other));
    }
}
