//! `GET /domains`: the built-in catalogue plus every domain declared by the
//! caller's experts and the platform-wide ones.

use actix_web::{web, HttpResponse};
use serde::Serialize;
use switchboard_actors::model::{Domain, TenantId};
use utoipa::ToSchema;

use crate::error::AppError;
use crate::http::auth::EscalationKey;
use crate::startup::AppState;

/// (slug, name, description) of the built-in catalogue.
const CATALOGUE: &[(&str, &str, &str)] = &[
    (
        "healthcare.rcm",
        "Revenue cycle management",
        "Medical coding (CPT, ICD-10), claims, denials and prior authorisation",
    ),
    ("healthcare.clinical", "Clinical review", "Clinical questions reviewed by licensed practitioners"),
    ("legal.compliance", "Compliance", "Regulatory compliance, policies and audits"),
    ("legal.contracts", "Contracts", "Contract review, clauses and redlines"),
    ("finance.accounting", "Accounting", "Bookkeeping, reconciliation and reporting"),
    ("finance.tax", "Tax", "Tax treatment, filings and jurisdictions"),
    ("insurance.claims", "Claims", "Insurance claims assessment and adjudication"),
    ("insurance.underwriting", "Underwriting", "Risk assessment and policy underwriting"),
    ("security.incident", "Incident response", "Security alerts triage and incident handling"),
    ("engineering.code_review", "Code review", "Source code review and architecture questions"),
    ("hr.employment", "Employment", "Hiring, employment law and workplace policies"),
    ("support.escalations", "Customer support", "Customer cases an agent could not settle"),
];

#[derive(Serialize, ToSchema)]
pub struct DomainView {
    #[schema(example = "healthcare.rcm")]
    pub slug: String,
    #[schema(example = "healthcare")]
    pub category: String,
    #[schema(example = "Revenue cycle management")]
    pub name: String,
    pub description: String,
}

#[derive(Serialize, ToSchema)]
#[schema(example = json!({"domains": [
    {
        "slug": "healthcare.rcm",
        "category": "healthcare",
        "name": "Revenue cycle management",
        "description": "Medical coding (CPT, ICD-10), claims, denials and prior authorisation"
    },
    {
        "slug": "legal.compliance",
        "category": "legal",
        "name": "Compliance",
        "description": "Regulatory compliance, policies and audits"
    }
]}))]
pub struct DomainsResponse {
    pub domains: Vec<DomainView>,
}

/// "code_review" → "Code review".
fn humanize(part: &str) -> String {
    let words = part.replace(['_', '-'], " ");
    let mut chars = words.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// The catalogue and every declared domain.
#[utoipa::path(
    get,
    path = "/domains",
    tag = "escalation: domains",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Sorted by slug", body = DomainsResponse),
        (status = 401, description = "Missing or invalid API key", body = crate::http::openapi::DetailError),
    )
)]
pub async fn list(state: web::Data<AppState>, caller: EscalationKey) -> Result<HttpResponse, AppError> {
    let mut tenants = vec![TenantId(caller.tenant.id.clone())];
    if let Some(op) = state.store.operator_tenant().await?.map(|t| t.id).filter(|op| *op != caller.tenant.id)
    {
        tenants.push(TenantId(op));
    }
    let declared = state.store.declared_domains(tenants).await?;
    let mut domains: Vec<DomainView> = CATALOGUE
        .iter()
        .map(|(slug, name, description)| DomainView {
            slug: slug.to_string(),
            category: slug.split('.').next().unwrap_or(slug).to_string(),
            name: name.to_string(),
            description: description.to_string(),
        })
        .collect();
    for d in declared {
        if CATALOGUE.iter().any(|(slug, _, _)| *slug == d.as_str()) {
            continue;
        }
        domains.push(view_of_declared(&d));
    }
    domains.sort_by(|a, b| a.slug.cmp(&b.slug));
    Ok(HttpResponse::Ok().json(DomainsResponse { domains }))
}

fn view_of_declared(d: &Domain) -> DomainView {
    let last = d.as_str().rsplit('.').next().unwrap_or(d.as_str());
    DomainView {
        slug: d.as_str().to_string(),
        category: d.category().to_string(),
        name: humanize(last),
        description: format!("Declared by an expert ({})", humanize(d.category())),
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/domains").route(web::get().to(list)));
}
