//! Case-insensitive access to JSON object keys, since SCIM attribute names ignore case (RFC 7643 §2.1).

use serde_json::{Map, Value};

/// The value under `key`, preferring an exact match, else the first key equal ignoring ASCII case.
pub(crate) fn get_ci<'a>(map: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    map.get(key).or_else(|| map.iter().find(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v))
}

/// Like [`get_ci`] on a value that may not be an object.
pub(crate) fn member_ci<'a>(value: &'a Value, key: &str) -> Option<&'a Value> {
    value.as_object().and_then(|map| get_ci(map, key))
}

/// Removes every spelling of `key` and returns the value of the exact spelling, else of the first other one.
pub(crate) fn take_ci(map: &mut Map<String, Value>, key: &str) -> Option<Value> {
    let exact = map.remove(key);
    let others: Vec<String> = map.keys().filter(|k| k.eq_ignore_ascii_case(key)).cloned().collect();
    let mut first_other = None;
    for other in others {
        let value = map.remove(&other);
        if first_other.is_none() {
            first_other = value;
        }
    }
    exact.or(first_other)
}

/// `value` as JSON text. `serde_json::to_string` writes straight into one
/// buffer; `Value`'s `Display` (`to_string()`) goes through `fmt::Formatter`
/// a piece at a time, which took twice the instructions to write a lookup's
/// response. A `Value` always serialises (its keys are strings,
/// its numbers finite), so the fallback is never taken.
pub fn to_text(value: &Value) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| String::from("null"))
}

/// Whether a value counts as present for `pr`: not null, not `""`, not `[]`, not `{}`.
pub(crate) fn is_present(value: &Value) -> bool {
    match value {
        Value::Null => false,
        Value::String(s) => !s.is_empty(),
        Value::Array(items) => items.iter().any(is_present),
        Value::Object(map) => map.values().any(is_present),
        Value::Bool(_) | Value::Number(_) => true,
    }
}

/// A short rendering of a value for error messages, e.g. `"maybe"` or `42`.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Object(_) => "an object".to_owned(),
        Value::Array(_) => "an array".to_owned(),
        other => {
            let text = other.to_string();
            if text.chars().count() > 64 {
                let cut: String = text.chars().take(61).collect();
                format!("{cut}...")
            } else {
                text
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn map(value: Value) -> Map<String, Value> {
        value.as_object().unwrap().clone()
    }

    #[test]
    fn exact_key_wins_over_other_spellings() {
        let m = map(json!({"username": "a", "userName": "b"}));
        assert_eq!(get_ci(&m, "userName"), Some(&json!("b")));
        assert!(get_ci(&m, "USERNAME").is_some());
        assert_eq!(get_ci(&m, "nope"), None);
    }

    #[test]
    fn take_removes_every_spelling() {
        let mut m = map(json!({"Active": true, "ACTIVE": false, "x": 1}));
        assert!(take_ci(&mut m, "active").is_some());
        assert_eq!(m.len(), 1);
    }

    #[test]
    fn presence_ignores_null_empty_string_array_and_object() {
        for absent in [json!(null), json!(""), json!([]), json!({}), json!([null]), json!({"a": null})] {
            assert!(!is_present(&absent), "{absent}");
        }
        for present in [json!(false), json!(0), json!("x"), json!([{"value": "a"}])] {
            assert!(is_present(&present), "{present}");
        }
    }

    #[test]
    fn long_values_are_shortened_in_messages() {
        let long = Value::from("x".repeat(100));
        assert!(describe(&long).ends_with("..."));
        assert_eq!(describe(&json!({"a": 1})), "an object");
    }
}
