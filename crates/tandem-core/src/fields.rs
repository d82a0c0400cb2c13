//! Field-by-field reading of a JSON request body that collects *every*
//! problem instead of stopping at the first one, so an `InvalidFields` error
//! names all bad fields at once.
//!
//! serde's derive stops at the first error and words it for programmers, so
//! management requests are read through this small reader instead.

use serde::Serialize;
use serde_json::{Map, Value};

/// One field that was missing or wrong, with what was expected.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct FieldError {
    /// Dotted path of the field, e.g. `idp.client_id` or `email_domain_allowlist[1]`.
    pub field: String,
    /// What is wrong with it, in words an integrator can act on.
    pub message: String,
}

/// Reads fields from a JSON object and remembers what was wrong.
pub struct FieldReader<'a> {
    prefix: String,
    object: Option<&'a Map<String, Value>>,
    errors: Vec<FieldError>,
    known: Vec<&'static str>,
    /// Fields found of the wrong type: no later check adds to their error
    /// (`"issuer": 0` is not also "required").
    mistyped: Vec<String>,
}

impl<'a> FieldReader<'a> {
    /// Starts reading `value`, which must be a JSON object; `prefix` is put
    /// before every field name (empty for the top level).
    pub fn new(value: &'a Value, prefix: &str) -> Self {
        let mut reader = FieldReader {
            prefix: prefix.to_string(),
            object: value.as_object(),
            errors: Vec::new(),
            known: Vec::new(),
            mistyped: Vec::new(),
        };
        if reader.object.is_none() {
            let name = if prefix.is_empty() { "body" } else { prefix };
            reader.errors.push(FieldError {
                field: name.to_string(),
                message: format!("must be a JSON object, got {}", kind(value)),
            });
        }
        reader
    }

    /// The full path of a field.
    pub fn path(&self, name: &str) -> String {
        if self.prefix.is_empty() {
            name.to_string()
        } else {
            format!("{}.{}", self.prefix, name)
        }
    }

    /// Records a problem with a field (none more for a field of the wrong type).
    pub fn error(&mut self, name: &str, message: impl Into<String>) {
        let field = self.path(name);
        if self.mistyped.contains(&field) {
            return;
        }
        self.errors.push(FieldError { field, message: message.into() });
    }

    /// Records a field of the wrong type.
    fn type_error(&mut self, name: &str, message: String) {
        self.error(name, message);
        self.mistyped.push(self.path(name));
    }

    /// The raw value of a field; `None` when absent or JSON `null`.
    pub fn raw(&mut self, name: &'static str) -> Option<&'a Value> {
        self.known.push(name);
        match self.object.and_then(|o| o.get(name)) {
            None | Some(Value::Null) => None,
            Some(v) => Some(v),
        }
    }

    /// Whether the field is present at all (even as `null`).
    pub fn present(&self, name: &str) -> bool {
        self.object.is_some_and(|o| o.contains_key(name))
    }

    /// A string field; a non-string is recorded as an error.
    pub fn string(&mut self, name: &'static str) -> Option<String> {
        match self.raw(name)? {
            Value::String(s) => Some(s.clone()),
            other => {
                let msg = format!("must be a string, got {}", kind(other));
                self.type_error(name, msg);
                None
            }
        }
    }

    /// A string field that must be present and non-blank.
    pub fn required_string(&mut self, name: &'static str) -> Option<String> {
        let present = self.present(name);
        match self.string(name) {
            Some(s) if !s.trim().is_empty() => Some(s),
            Some(_) => {
                self.error(name, "must not be empty");
                None
            }
            None => {
                if !present || self.object.and_then(|o| o.get(name)).is_some_and(Value::is_null) {
                    self.error(name, "is required");
                }
                None
            }
        }
    }

    /// A boolean field.
    pub fn bool(&mut self, name: &'static str) -> Option<bool> {
        match self.raw(name)? {
            Value::Bool(b) => Some(*b),
            other => {
                let msg = format!("must be true or false, got {}", kind(other));
                self.type_error(name, msg);
                None
            }
        }
    }

    /// A non-negative integer field.
    pub fn u64(&mut self, name: &'static str) -> Option<u64> {
        match self.raw(name)? {
            Value::Number(n) if n.as_u64().is_some() => n.as_u64(),
            other => {
                let msg = format!("must be a non-negative integer, got {}", kind(other));
                self.type_error(name, msg);
                None
            }
        }
    }

    /// An array of strings.
    pub fn string_list(&mut self, name: &'static str) -> Option<Vec<String>> {
        match self.raw(name)? {
            Value::Array(items) => {
                let mut out = Vec::with_capacity(items.len());
                let mut ok = true;
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => out.push(s.clone()),
                        other => {
                            ok = false;
                            let msg = format!("must be a string, got {}", kind(other));
                            self.type_error(&format!("{name}[{i}]"), msg);
                        }
                    }
                }
                ok.then_some(out)
            }
            other => {
                let msg = format!("must be an array of strings, got {}", kind(other));
                self.type_error(name, msg);
                None
            }
        }
    }

    /// Records every key of the object that no getter asked for.
    pub fn reject_unknown(&mut self) {
        let Some(object) = self.object else { return };
        let unknown: Vec<String> = object.keys().filter(|k| !self.known.contains(&k.as_str())).cloned().collect();
        for key in unknown {
            self.error(&key, "is not a known field");
        }
    }

    /// Adds the problems a nested reader found.
    pub fn absorb(&mut self, other: FieldReader<'_>) {
        self.errors.extend(other.errors);
        self.mistyped.extend(other.mistyped);
    }

    /// Whether nothing was wrong so far.
    pub fn is_ok(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems found, in the order they were found.
    pub fn into_errors(self) -> Vec<FieldError> {
        self.errors
    }
}

/// A JSON value's kind in words, for error messages.
pub fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Where in `value` a string or a key first holds the NUL character
/// (U+0000), as a path in the style of [`FieldError::field`]
/// (`members[2].display`; `$` for `value` itself); `None` when none does.
/// No identifier, name or address Tandem stores may hold one: PostgreSQL
/// refuses it in text. Walks without allocating until it finds one (it
/// runs over every JSON request body).
pub fn nul_at(value: &Value) -> Option<String> {
    /// The path below `value`, each step with its separator (`.key`, `[i]`).
    fn below(value: &Value) -> Option<String> {
        match value {
            Value::String(s) => s.contains('\0').then(String::new),
            Value::Array(items) => {
                items.iter().enumerate().find_map(|(i, item)| below(item).map(|rest| format!("[{i}]{rest}")))
            }
            Value::Object(map) => map.iter().find_map(|(key, item)| {
                let step = || format!(".{}", key.replace('\0', "\\u0000"));
                if key.contains('\0') {
                    Some(step())
                } else {
                    below(item).map(|rest| step() + &rest)
                }
            }),
            _ => None,
        }
    }
    below(value).map(|path| match path.strip_prefix('.') {
        Some(rest) => rest.to_string(),
        None if path.is_empty() => "$".to_string(),
        None => path,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_first_nul_is_found_by_its_path() {
        use super::nul_at;
        use serde_json::json;
        assert_eq!(nul_at(&json!({"userName": "a@b.c", "emails": [{"value": "x"}]})), None);
        assert_eq!(
            nul_at(&json!({"emails": [{"value": "x"}, {"value": "a\u{0}b"}]})).as_deref(),
            Some("emails[1].value")
        );
        assert_eq!(nul_at(&json!({"a\u{0}": 1})).as_deref(), Some("a\\u0000"));
        assert_eq!(nul_at(&json!("\u{0}")).as_deref(), Some("$"));
        assert_eq!(nul_at(&json!(["\u{0}"])).as_deref(), Some("[0]"));
        assert_eq!(
            nul_at(&json!({"Operations": [{"value": {"members": [{"value": "g\u{0}"}]}}]})).as_deref(),
            Some("Operations[0].value.members[0].value")
        );
    }

    use super::*;
    use serde_json::json;

    #[test]
    fn collects_every_bad_field_not_just_the_first() {
        let body = json!({"a": 1, "b": "x", "c": [1, "y"], "d": "z"});
        let mut r = FieldReader::new(&body, "");
        assert_eq!(r.string("a"), None);
        assert_eq!(r.bool("b"), None);
        assert_eq!(r.string_list("c"), None);
        assert_eq!(r.required_string("missing"), None);
        r.reject_unknown();
        let fields: Vec<String> = r.into_errors().into_iter().map(|e| e.field).collect();
        assert_eq!(fields, ["a", "b", "c[0]", "missing", "d"]);
    }

    #[test]
    fn nested_reader_prefixes_field_names() {
        let body = json!({"client_id": 5});
        let mut r = FieldReader::new(&body, "idp");
        r.required_string("client_id");
        assert_eq!(r.into_errors()[0].field, "idp.client_id");
    }

    #[test]
    fn a_non_object_body_is_one_error() {
        let body = json!([1, 2]);
        let r = FieldReader::new(&body, "");
        let errors = r.into_errors();
        assert_eq!(errors[0].field, "body");
        assert!(errors[0].message.contains("an array"));
    }

    #[test]
    fn blank_required_string_is_rejected() {
        let body = json!({"customer_id": "  "});
        let mut r = FieldReader::new(&body, "");
        assert_eq!(r.required_string("customer_id"), None);
        assert_eq!(r.into_errors()[0].message, "must not be empty");
    }
}
