//! The identity model's types, parsed at the edge: ids, emails, roles, plans,
//! identity modes and the tenant container's status.

use std::fmt;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub String);

        impl $name {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

id_type!(
    /// A tenant: a UUID.
    TenantId
);
id_type!(
    /// A user: `usr_...`.
    UserId
);
id_type!(
    /// A membership: `mem_...`.
    MembershipId
);
id_type!(
    /// An API key's id: `key_...`.
    ApiKeyId
);

impl TenantId {
    pub fn new() -> Self {
        TenantId(uuid::Uuid::new_v4().to_string())
    }
}

impl Default for TenantId {
    fn default() -> Self {
        Self::new()
    }
}

/// A normalised email address: trimmed, lower-cased, plausibly shaped.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, String> {
        let email = raw.trim().to_ascii_lowercase();
        if email.is_empty() {
            return Err("email is required".into());
        }
        if email.len() > 254 || email.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(format!("{raw:?} is not an email address"));
        }
        match email.split_once('@') {
            Some((local, domain))
                if !local.is_empty()
                    && !domain.contains('@')
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.') =>
            {
                Ok(Email(email))
            }
            _ => Err(format!("{raw:?} is not an email address")),
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A member's role in a tenant, lowest first: the order is the privilege order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
pub enum Role {
    Viewer,
    Contributor,
    Manager,
    Owner,
}

impl Role {
    pub fn parse(raw: &str) -> Result<Role, String> {
        match raw {
            "Viewer" => Ok(Role::Viewer),
            "Contributor" => Ok(Role::Contributor),
            "Manager" => Ok(Role::Manager),
            "Owner" => Ok(Role::Owner),
            _ => Err(format!("unknown role {raw:?}: use Viewer, Contributor, Manager or Owner")),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Role::Viewer => "Viewer",
            Role::Contributor => "Contributor",
            Role::Manager => "Manager",
            Role::Owner => "Owner",
        }
    }
}

/// A tenant's plan; the Escalation API calls it `tier`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Plan {
    Free,
    Starter,
    Pro,
    Enterprise,
}

impl Plan {
    pub fn parse(raw: &str) -> Result<Plan, String> {
        match raw {
            "free" => Ok(Plan::Free),
            "starter" => Ok(Plan::Starter),
            "pro" => Ok(Plan::Pro),
            "enterprise" => Ok(Plan::Enterprise),
            _ => Err(format!("unknown plan {raw:?}: use free, starter, pro or enterprise")),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            Plan::Free => "free",
            Plan::Starter => "starter",
            Plan::Pro => "pro",
            Plan::Enterprise => "enterprise",
        }
    }

    /// Escalations per day and per month; `None` is unlimited. Starter has free's limits.
    pub fn escalation_limits(&self) -> (Option<u64>, Option<u64>) {
        match self {
            Plan::Free | Plan::Starter => (Some(10), Some(100)),
            Plan::Pro => (Some(500), Some(10_000)),
            Plan::Enterprise => (None, None),
        }
    }

    /// Plans only a super-admin may grant.
    pub fn needs_super_admin(&self) -> bool {
        matches!(self, Plan::Pro | Plan::Enterprise)
    }
}

/// How an Agent API key treats the caller's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum IdentityMode {
    Anonymous,
    Identified,
    Required,
}

impl IdentityMode {
    pub fn parse(raw: &str) -> Result<IdentityMode, String> {
        match raw {
            "anonymous" => Ok(IdentityMode::Anonymous),
            "identified" => Ok(IdentityMode::Identified),
            "required" => Ok(IdentityMode::Required),
            _ => Err(format!("unknown identity_mode {raw:?}: use anonymous, identified or required")),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            IdentityMode::Anonymous => "anonymous",
            IdentityMode::Identified => "identified",
            IdentityMode::Required => "required",
        }
    }
}

/// The lifecycle of a tenant's container.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TenantStatus {
    Draft,
    Deploying,
    Running,
    Stopped,
    Error,
}

impl TenantStatus {
    pub fn parse(raw: &str) -> Result<TenantStatus, String> {
        match raw {
            "draft" => Ok(TenantStatus::Draft),
            "deploying" => Ok(TenantStatus::Deploying),
            "running" => Ok(TenantStatus::Running),
            "stopped" => Ok(TenantStatus::Stopped),
            "error" => Ok(TenantStatus::Error),
            _ => Err(format!("unknown tenant status {raw:?}")),
        }
    }

    pub fn as_str(&self) -> &'static str {
        match self {
            TenantStatus::Draft => "draft",
            TenantStatus::Deploying => "deploying",
            TenantStatus::Running => "running",
            TenantStatus::Stopped => "stopped",
            TenantStatus::Error => "error",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_or_refused() {
        assert_eq!(Email::parse("  Dev@Example.COM ").unwrap().as_str(), "dev@example.com");
        for bad in
            ["", "dev", "dev@", "@example.com", "dev@example", "a b@example.com", "a@b@c.com", "dev@.com"]
        {
            assert!(Email::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn roles_are_ordered_by_privilege() {
        assert!(Role::Viewer < Role::Contributor);
        assert!(Role::Contributor < Role::Manager);
        assert!(Role::Manager < Role::Owner);
        assert!(Role::parse("owner").is_err());
        assert_eq!(Role::parse("Manager").unwrap(), Role::Manager);
    }

    #[test]
    fn plan_limits_follow_the_spec() {
        assert_eq!(Plan::Free.escalation_limits(), (Some(10), Some(100)));
        assert_eq!(Plan::Starter.escalation_limits(), (Some(10), Some(100)));
        assert_eq!(Plan::Pro.escalation_limits(), (Some(500), Some(10_000)));
        assert_eq!(Plan::Enterprise.escalation_limits(), (None, None));
    }
}
