//! The SCIM error type: an HTTP status, an optional RFC 7644 §3.12 `scimType` and a readable detail.

use serde_json::{json, Value};

use crate::schema::ERROR_SCHEMA;

/// A SCIM protocol error, rendered to clients as an RFC 7644 §3.12 error response.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct ScimError {
    /// HTTP status code of the response.
    pub status: u16,
    /// The RFC 7644 §3.12 `scimType` keyword, when one applies.
    pub scim_type: Option<&'static str>,
    /// Human-readable explanation naming what was wrong.
    pub detail: String,
}

impl ScimError {
    /// Builds an error from its parts.
    pub fn new(status: u16, scim_type: Option<&'static str>, detail: impl Into<String>) -> Self {
        Self { status, scim_type, detail: detail.into() }
    }

    /// 400 `invalidFilter`: the filter syntax was invalid or the comparison is unsupported.
    pub fn invalid_filter(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidFilter"), detail)
    }

    /// 400 `invalidPath`: a PATCH path (or an attribute name) is invalid.
    pub fn invalid_path(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidPath"), detail)
    }

    /// 400 `invalidValue`: a value is missing, of the wrong type or not allowed.
    pub fn invalid_value(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidValue"), detail)
    }

    /// 400 `invalidSyntax`: the request body is not of the expected structure.
    pub fn invalid_syntax(detail: impl Into<String>) -> Self {
        Self::new(400, Some("invalidSyntax"), detail)
    }

    /// 400 `noTarget`: a PATCH path selected nothing to operate on.
    pub fn no_target(detail: impl Into<String>) -> Self {
        Self::new(400, Some("noTarget"), detail)
    }

    /// 400 `mutability`: the operation would change a read-only or immutable attribute.
    pub fn mutability(detail: impl Into<String>) -> Self {
        Self::new(400, Some("mutability"), detail)
    }

    /// 409 `uniqueness`: a value that must be unique is already taken.
    pub fn uniqueness(detail: impl Into<String>) -> Self {
        Self::new(409, Some("uniqueness"), detail)
    }

    /// 404 without a `scimType`: the resource does not exist.
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(404, None, detail)
    }

    /// 400 `tooMany`: the query would return more results than the server allows.
    pub fn too_many(detail: impl Into<String>) -> Self {
        Self::new(400, Some("tooMany"), detail)
    }

    /// Returns the same error with `prefix` put in front of its detail.
    pub fn with_prefix(mut self, prefix: &str) -> Self {
        self.detail = format!("{prefix}{}", self.detail);
        self
    }

    /// Renders the RFC 7644 §3.12 error body; `status` is a string as the RFC's examples show.
    pub fn to_json(&self) -> Value {
        let mut body = json!({
            "schemas": [ERROR_SCHEMA],
            "status": self.status.to_string(),
            "detail": self.detail,
        });
        if let (Some(kind), Some(map)) = (self.scim_type, body.as_object_mut()) {
            map.insert("scimType".to_owned(), Value::from(kind));
        }
        body
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_json_carries_status_as_string_and_scim_type() {
        let err = ScimError::invalid_filter("bad filter");
        assert_eq!(
            err.to_json(),
            json!({
                "schemas": ["urn:ietf:params:scim:api:messages:2.0:Error"],
                "status": "400",
                "scimType": "invalidFilter",
                "detail": "bad filter"
            })
        );
    }

    #[test]
    fn not_found_has_no_scim_type_in_json() {
        let body = ScimError::not_found("User 42 not found").to_json();
        assert_eq!(body["status"], "404");
        assert!(body.get("scimType").is_none());
    }

    #[test]
    fn constructors_use_rfc_status_and_keyword() {
        let cases = [
            (ScimError::invalid_path("x"), 400, "invalidPath"),
            (ScimError::invalid_value("x"), 400, "invalidValue"),
            (ScimError::invalid_syntax("x"), 400, "invalidSyntax"),
            (ScimError::no_target("x"), 400, "noTarget"),
            (ScimError::mutability("x"), 400, "mutability"),
            (ScimError::uniqueness("x"), 409, "uniqueness"),
            (ScimError::too_many("x"), 400, "tooMany"),
        ];
        for (err, status, kind) in cases {
            assert_eq!(err.status, status);
            assert_eq!(err.scim_type, Some(kind));
        }
    }

    #[test]
    fn display_is_the_detail() {
        assert_eq!(ScimError::invalid_value("userName is required").to_string(), "userName is required");
    }

    #[test]
    fn prefix_is_prepended_to_detail() {
        let err = ScimError::invalid_value("bad").with_prefix("Operations[1]: ");
        assert_eq!(err.detail, "Operations[1]: bad");
    }
}
