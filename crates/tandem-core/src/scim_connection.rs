//! SCIM connection settings: key lifetime, rotation grace and the expiry
//! warning level shown to admins.

use crate::fields::{FieldError, FieldReader};
use crate::oidc_client::check_new_customer_id;
use chrono::{DateTime, Duration, Utc};
use serde::Serialize;
use serde_json::Value;

/// How close a SCIM key is to expiry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyWarningLevel {
    /// No expiry, or more than 30 days left.
    Ok,
    /// Fewer than 30 days left.
    Warning,
    /// Fewer than 7 days left.
    Critical,
    /// Already expired: provisioning is failing.
    Expired,
}

impl KeyWarningLevel {
    /// Every level, in order.
    pub const ALL: [KeyWarningLevel; 4] =
        [KeyWarningLevel::Ok, KeyWarningLevel::Warning, KeyWarningLevel::Critical, KeyWarningLevel::Expired];

    /// The level as the API writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyWarningLevel::Ok => "ok",
            KeyWarningLevel::Warning => "warning",
            KeyWarningLevel::Critical => "critical",
            KeyWarningLevel::Expired => "expired",
        }
    }
}

/// The warning level for a key expiring at `expires_at`, seen at `now`.
pub fn warning_level(expires_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> KeyWarningLevel {
    match expires_at {
        None => KeyWarningLevel::Ok,
        Some(at) if at <= now => KeyWarningLevel::Expired,
        Some(at) if at - now < Duration::days(7) => KeyWarningLevel::Critical,
        Some(at) if at - now < Duration::days(30) => KeyWarningLevel::Warning,
        Some(_) => KeyWarningLevel::Ok,
    }
}

/// The longest key lifetime accepted, in days (ten years).
pub const MAX_TTL_DAYS: u64 = 3650;

/// A key lifetime: a number of days, or explicitly none.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyTtl {
    /// The deployment's default.
    Default,
    /// Keys never expire.
    Never,
    /// Keys expire after this many days.
    Days(u64),
}

impl KeyTtl {
    /// The expiry of a key issued at `now`.
    pub fn expires_at(self, default_days: Option<u64>, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let days = match self {
            KeyTtl::Default => default_days,
            KeyTtl::Never => None,
            KeyTtl::Days(d) => Some(d),
        };
        days.map(|d| now + Duration::days(d as i64))
    }
}

/// A parsed create or patch request for a SCIM connection.
#[derive(Clone, Debug, PartialEq)]
pub struct ScimConnectionRequest {
    /// The customer id (required on create).
    pub customer_id: Option<String>,
    /// Lifetime of keys issued from now on.
    pub api_key_ttl: KeyTtl,
    /// What group writes naming unknown members get: `reject` (400) or
    /// `ignore` (the ids are dropped and noted in the provisioning log).
    pub unknown_group_members: Option<&'static str>,
}

/// The accepted values of `unknown_group_members`.
pub const UNKNOWN_MEMBER_MODES: [&str; 2] = ["reject", "ignore"];

/// Reads a create (`require_customer = true`) or patch request.
pub fn parse_request(body: &Value, require_customer: bool) -> Result<ScimConnectionRequest, Vec<FieldError>> {
    let mut r = FieldReader::new(body, "");
    if !r.is_ok() {
        return Err(r.into_errors());
    }
    let customer_id = if require_customer { r.required_string("customer_id") } else { r.string("customer_id") };
    if !require_customer && r.present("customer_id") && r.raw("customer_id").is_none() {
        r.error("customer_id", "cannot be removed: a connection is one customer's (give another customer ID)");
    }
    if let Some(c) = &customer_id {
        if let Err(m) = check_new_customer_id(c) {
            r.error("customer_id", m);
        }
    }
    let ttl = if r.present("api_key_ttl_days") && r.raw("api_key_ttl_days").is_none() {
        KeyTtl::Never
    } else {
        match r.u64("api_key_ttl_days") {
            None => KeyTtl::Default,
            Some(0) => {
                r.error("api_key_ttl_days", "must be at least 1 (use null for keys that never expire)");
                KeyTtl::Default
            }
            Some(d) if d > MAX_TTL_DAYS => {
                r.error("api_key_ttl_days", format!("must be at most {MAX_TTL_DAYS}"));
                KeyTtl::Default
            }
            Some(d) => KeyTtl::Days(d),
        }
    };
    let unknown_group_members = r.string("unknown_group_members").and_then(|m| {
        let found = UNKNOWN_MEMBER_MODES.iter().find(|x| **x == m).copied();
        if found.is_none() {
            r.error("unknown_group_members", "must be \"reject\" or \"ignore\"");
        }
        found
    });
    r.reject_unknown();
    if r.is_ok() {
        Ok(ScimConnectionRequest { customer_id, api_key_ttl: ttl, unknown_group_members })
    } else {
        Err(r.into_errors())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn warning_levels_follow_the_days_left() {
        let now = t("2026-01-01T00:00:00Z");
        assert_eq!(warning_level(None, now), KeyWarningLevel::Ok);
        assert_eq!(warning_level(Some(t("2026-03-01T00:00:00Z")), now), KeyWarningLevel::Ok);
        assert_eq!(warning_level(Some(t("2026-01-20T00:00:00Z")), now), KeyWarningLevel::Warning);
        assert_eq!(warning_level(Some(t("2026-01-05T00:00:00Z")), now), KeyWarningLevel::Critical);
        assert_eq!(warning_level(Some(t("2025-12-31T00:00:00Z")), now), KeyWarningLevel::Expired);
    }

    #[test]
    fn ttl_null_means_never_and_absent_means_default() {
        let now = t("2026-01-01T00:00:00Z");
        let never = parse_request(&json!({"customer_id": "a", "api_key_ttl_days": null}), true).unwrap();
        assert_eq!(never.api_key_ttl, KeyTtl::Never);
        assert_eq!(never.api_key_ttl.expires_at(Some(180), now), None);
        let default = parse_request(&json!({"customer_id": "a"}), true).unwrap();
        assert_eq!(default.api_key_ttl.expires_at(Some(180), now), Some(t("2026-06-30T00:00:00Z")));
    }

    #[test]
    fn bad_ttl_and_missing_customer_are_named() {
        let errs = parse_request(&json!({"api_key_ttl_days": "soon"}), true).unwrap_err();
        let fields: Vec<_> = errs.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["customer_id", "api_key_ttl_days"]);
        assert!(parse_request(&json!({"customer_id": "a", "api_key_ttl_days": 0}), true).is_err());
    }
}
