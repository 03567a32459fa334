//! The engine's vocabulary: ids, priorities, statuses and domains, parsed at
//! the edge (the server's handlers) so the actors never re-check them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl $name {
            /// A new, time-ordered id.
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl Default for $name {
            fn default() -> Self {
                Self::new()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    };
}

uuid_id!(
    /// An escalation (a case): a UUID.
    EscalationId
);
uuid_id!(
    /// An expert: a UUID.
    ExpertId
);

/// A tenant, as the server names it (a UUID string). Opaque to the engine.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TenantId(pub String);

impl fmt::Display for TenantId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How soon a case needs an answer. Orders most urgent first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    Urgent,
    Standard,
    Batch,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Priority::Urgent, Priority::Standard, Priority::Batch];

    pub fn as_str(&self) -> &'static str {
        match self {
            Priority::Urgent => "urgent",
            Priority::Standard => "standard",
            Priority::Batch => "batch",
        }
    }

    pub fn parse(s: &str) -> Option<Priority> {
        Priority::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Where a case is in its life. `pending → routed → in_review → resolved`,
/// or `expired` / `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EscalationStatus {
    Pending,
    Routed,
    InReview,
    Resolved,
    Expired,
    Cancelled,
}

impl EscalationStatus {
    pub const ALL: [EscalationStatus; 6] = [
        EscalationStatus::Pending,
        EscalationStatus::Routed,
        EscalationStatus::InReview,
        EscalationStatus::Resolved,
        EscalationStatus::Expired,
        EscalationStatus::Cancelled,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            EscalationStatus::Pending => "pending",
            EscalationStatus::Routed => "routed",
            EscalationStatus::InReview => "in_review",
            EscalationStatus::Resolved => "resolved",
            EscalationStatus::Expired => "expired",
            EscalationStatus::Cancelled => "cancelled",
        }
    }

    pub fn parse(s: &str) -> Option<EscalationStatus> {
        EscalationStatus::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Still waiting for an answer: has an actor, timers and a place in routing.
    pub fn is_open(&self) -> bool {
        matches!(self, EscalationStatus::Pending | EscalationStatus::Routed | EscalationStatus::InReview)
    }
}

/// What an expert says about their availability. Capacity is tracked apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpertStatus {
    Available,
    Busy,
    Offline,
}

impl ExpertStatus {
    pub const ALL: [ExpertStatus; 3] = [ExpertStatus::Available, ExpertStatus::Busy, ExpertStatus::Offline];

    pub fn as_str(&self) -> &'static str {
        match self {
            ExpertStatus::Available => "available",
            ExpertStatus::Busy => "busy",
            ExpertStatus::Offline => "offline",
        }
    }

    pub fn parse(s: &str) -> Option<ExpertStatus> {
        ExpertStatus::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpertTier {
    Standard,
    Senior,
    Principal,
}

impl ExpertTier {
    pub const ALL: [ExpertTier; 3] = [ExpertTier::Standard, ExpertTier::Senior, ExpertTier::Principal];

    pub fn as_str(&self) -> &'static str {
        match self {
            ExpertTier::Standard => "standard",
            ExpertTier::Senior => "senior",
            ExpertTier::Principal => "principal",
        }
    }

    pub fn parse(s: &str) -> Option<ExpertTier> {
        ExpertTier::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// Why an expert gave a case back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    NeedMoreContext,
    OutOfScope,
    ConflictOfInterest,
    TooBusy,
    Other,
}

impl DeclineReason {
    pub const ALL: [DeclineReason; 5] = [
        DeclineReason::NeedMoreContext,
        DeclineReason::OutOfScope,
        DeclineReason::ConflictOfInterest,
        DeclineReason::TooBusy,
        DeclineReason::Other,
    ];

    pub fn as_str(&self) -> &'static str {
        match self {
            DeclineReason::NeedMoreContext => "need_more_context",
            DeclineReason::OutOfScope => "out_of_scope",
            DeclineReason::ConflictOfInterest => "conflict_of_interest",
            DeclineReason::TooBusy => "too_busy",
            DeclineReason::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<DeclineReason> {
        DeclineReason::ALL.into_iter().find(|p| p.as_str() == s)
    }
}

/// An expert domain: a lowercase dotted slug, `category.name` (more dots allowed).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Domain(String);

impl Domain {
    pub const MAX_LEN: usize = 100;

    pub fn parse(raw: &str) -> Result<Domain, String> {
        let s = raw.trim();
        if s.is_empty() {
            return Err("domain is required".into());
        }
        if s.len() > Self::MAX_LEN {
            return Err(format!("domain is longer than {} characters", Self::MAX_LEN));
        }
        let parts: Vec<&str> = s.split('.').collect();
        let part_ok = |p: &&str| {
            !p.is_empty()
                && p.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
                && p.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
        };
        if parts.len() < 2 || !parts.iter().all(part_ok) {
            return Err(format!(
                "domain {raw:?} must be a lowercase dotted slug like \"healthcare.rcm\" (letters, digits, '-' and '_')"
            ));
        }
        Ok(Domain(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The part before the first dot.
    pub fn category(&self) -> &str {
        self.0.split('.').next().unwrap_or(&self.0)
    }
}

impl fmt::Display for Domain {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_dotted_lowercase_slugs() {
        assert!(Domain::parse("healthcare.rcm").is_ok());
        assert!(Domain::parse("legal.compliance.eu").is_ok());
        assert_eq!(Domain::parse("  finance.tax_2 ").unwrap().as_str(), "finance.tax_2");
        assert_eq!(Domain::parse("healthcare.rcm").unwrap().category(), "healthcare");
        for bad in ["", "healthcare", "Healthcare.rcm", "a..b", ".a.b", "a.b.", "a b.c", "a.-b", "é.b"] {
            assert!(Domain::parse(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn priority_orders_most_urgent_first() {
        assert!(Priority::Urgent < Priority::Standard && Priority::Standard < Priority::Batch);
        assert_eq!(Priority::parse("batch"), Some(Priority::Batch));
        assert_eq!(Priority::parse("high"), None);
    }
}
