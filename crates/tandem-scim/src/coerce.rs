//! Coercing client-supplied JSON to the shape and type an attribute definition demands.
//!
//! Leniency for real identity providers: booleans sent as `"True"`/`"false"` strings, numbers sent
//! as strings, numbers given for string attributes, a single value given for a multi-valued
//! attribute, a one-element array given for a single-valued one, and a plain string given for a
//! single-valued complex attribute with a `value` sub-attribute (the enterprise `manager`).
//! `null` means "no value" and comes back as `None`.

use serde_json::{Map, Number, Value};

use crate::datetime::parse_instant;
use crate::error::ScimError;
use crate::json::describe;
use crate::schema::{AttrType, AttributeDef, Mutability};

/// Coerces a whole attribute value (array for multi-valued attributes); `None` when nothing remains.
pub(crate) fn coerce_attr(def: &AttributeDef, value: Value, label: &str) -> Result<Option<Value>, ScimError> {
    if def.multi_valued {
        let items = match value {
            Value::Null => return Ok(None),
            Value::Array(items) => items,
            single => vec![single],
        };
        let mut out = Vec::with_capacity(items.len());
        for (idx, item) in items.into_iter().enumerate() {
            if let Some(done) = coerce_element(def, item, label, idx)? {
                out.push(done);
            }
        }
        return Ok((!out.is_empty()).then_some(Value::Array(out)));
    }
    let single = match value {
        Value::Array(mut items) if items.len() <= 1 => match items.pop() {
            Some(only) => only,
            None => return Ok(None),
        },
        Value::Array(_) => {
            return Err(ScimError::invalid_value(format!("{label} must be a single value, got an array")))
        }
        other => other,
    };
    if def.ty == AttrType::Complex {
        return coerce_single_complex(def, single, label);
    }
    coerce_simple(def, single, label)
}

/// Coerces one element of a multi-valued attribute; `idx` only names it in errors.
pub(crate) fn coerce_element(
    def: &AttributeDef,
    value: Value,
    label: &str,
    idx: usize,
) -> Result<Option<Value>, ScimError> {
    if def.ty != AttrType::Complex {
        return coerce_simple(def, value, &format!("{label}[{idx}]"));
    }
    match value {
        Value::Null => Ok(None),
        Value::Object(map) => coerce_complex(def, map, &format!("{label}[{idx}]")),
        _ => Err(ScimError::invalid_value(format!("{label} must be an array of objects"))),
    }
}

fn has_value_sub(def: &AttributeDef) -> bool {
    def.sub_attribute("value").is_some()
}

fn coerce_single_complex(def: &AttributeDef, value: Value, label: &str) -> Result<Option<Value>, ScimError> {
    let map = match value {
        Value::Null => return Ok(None),
        Value::Object(map) => map,
        Value::String(s) if has_value_sub(def) => {
            let mut map = Map::new();
            map.insert("value".to_owned(), Value::String(s));
            map
        }
        _ => return Err(ScimError::invalid_value(format!("{label} must be an object"))),
    };
    let coerced = coerce_complex(def, map, label)?;
    // A `value`-keyed complex attribute without a value (`{"value": ""}`) means "no manager".
    if has_value_sub(def) {
        let keeps_value = coerced.as_ref().and_then(|v| v.get("value")).is_some_and(|v| v.as_str() != Some(""));
        if !keeps_value {
            return Ok(None);
        }
    }
    Ok(coerced)
}

/// Canonicalises sub-attribute names, drops unknown and read-only ones, coerces the rest.
fn coerce_complex(def: &AttributeDef, map: Map<String, Value>, label: &str) -> Result<Option<Value>, ScimError> {
    let mut out = Map::new();
    let has_display = map.keys().any(|k| k.eq_ignore_ascii_case("display"));
    for (key, value) in map {
        // Microsoft's test collection names a member's `display` `displayName`.
        let key = if !has_display && key.eq_ignore_ascii_case("displayName") && def.sub_attribute("display").is_some() {
            "display".to_owned()
        } else {
            key
        };
        let Some(sub) = def.sub_attribute(&key) else {
            continue;
        };
        if sub.mutability == Mutability::ReadOnly {
            continue;
        }
        if let Some(done) = coerce_simple(sub, value, &format!("{label}.{}", sub.name))? {
            out.insert(sub.name.to_owned(), done);
        }
    }
    Ok((!out.is_empty()).then_some(Value::Object(out)))
}

fn type_error(label: &str, what: &str, value: &Value) -> ScimError {
    ScimError::invalid_value(format!("{label} must be {what}, got {}", describe(value)))
}

fn lenient_number(value: &Value) -> Option<Number> {
    match value {
        Value::Number(n) => Some(n.clone()),
        Value::String(s) => s.trim().parse::<Number>().ok(),
        _ => None,
    }
}

/// Coerces a value of a non-complex attribute or sub-attribute.
pub(crate) fn coerce_simple(def: &AttributeDef, value: Value, label: &str) -> Result<Option<Value>, ScimError> {
    if value.is_null() {
        return Ok(None);
    }
    let done = match def.ty {
        AttrType::String => match value {
            Value::String(_) => value,
            // A whole number is kept as its text (an employee number sent
            // unquoted). Any other was read as a float, whose text is not
            // what was sent (`123456789012345678901234567890` would be kept
            // as `1.2345678901234568e+29`, `-0` as `-0.0`): refused.
            Value::Number(n) if n.is_i64() || n.is_u64() => Value::String(n.to_string()),
            Value::Number(_) => {
                return Err(type_error(
                    label,
                    "a string (an unquoted number is taken only when it is a whole number within 64 bits; send \
                     it quoted)",
                    &value,
                ))
            }
            other => return Err(type_error(label, "a string", &other)),
        },
        AttrType::Reference | AttrType::Binary => match value {
            Value::String(_) => value,
            other => return Err(type_error(label, "a string", &other)),
        },
        AttrType::Boolean => match &value {
            Value::Bool(_) => value,
            Value::String(s) if s.eq_ignore_ascii_case("true") => Value::Bool(true),
            Value::String(s) if s.eq_ignore_ascii_case("false") => Value::Bool(false),
            other => return Err(type_error(label, "a boolean", other)),
        },
        AttrType::Integer => {
            let whole = lenient_number(&value)
                .and_then(|n| n.as_i64().map(Number::from).or_else(|| n.as_u64().map(Number::from)));
            match whole {
                Some(n) => Value::Number(n),
                None => return Err(type_error(label, "an integer", &value)),
            }
        }
        AttrType::Decimal => match lenient_number(&value) {
            Some(n) => Value::Number(n),
            None => return Err(type_error(label, "a number", &value)),
        },
        AttrType::DateTime => match &value {
            Value::String(s) if parse_instant(s).is_some() => value,
            other => return Err(type_error(label, "an RFC 3339 date-time", other)),
        },
        AttrType::Complex => return Err(ScimError::invalid_value(format!("{label} must be an object"))),
    };
    Ok(Some(done))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{resolve, ResourceType, ENTERPRISE_USER_SCHEMA};
    use serde_json::json;

    fn user_attr(name: &str) -> &'static AttributeDef {
        resolve(ResourceType::User, None, name, None).unwrap().attr
    }

    fn manager() -> &'static AttributeDef {
        resolve(ResourceType::User, Some(ENTERPRISE_USER_SCHEMA), "manager", None).unwrap().attr
    }

    /// A number for a string is kept as its text only when that text is
    /// the one sent: a whole number within 64 bits.
    #[test]
    fn a_number_for_a_string_is_taken_only_when_whole() {
        let user_name = user_attr("userName");
        assert_eq!(coerce_attr(user_name, json!(701), "userName").unwrap(), Some(json!("701")));
        assert_eq!(coerce_attr(user_name, json!(u64::MAX), "userName").unwrap(), Some(json!(u64::MAX.to_string())));
        for lossy in ["123456789012345678901234567890", "-0", "1e308", "1.50"] {
            let value: Value = serde_json::from_str(lossy).unwrap();
            let err = coerce_attr(user_name, value, "userName").unwrap_err();
            assert!(err.detail.contains("send it quoted"), "{lossy}: {}", err.detail);
        }
    }

    #[test]
    fn capitalised_boolean_strings_become_booleans() {
        assert_eq!(coerce_attr(user_attr("active"), json!("False"), "active").unwrap(), Some(json!(false)));
        assert_eq!(coerce_attr(user_attr("active"), json!("TRUE"), "active").unwrap(), Some(json!(true)));
    }

    #[test]
    fn non_boolean_for_active_names_the_attribute_and_value() {
        let err = coerce_attr(user_attr("active"), json!("maybe"), "active").unwrap_err();
        assert_eq!(err.detail, r#"active must be a boolean, got "maybe""#);
        assert_eq!(err.scim_type, Some("invalidValue"));
    }

    #[test]
    fn object_for_string_attribute_is_rejected() {
        let err = coerce_attr(user_attr("title"), json!({"a": 1}), "title").unwrap_err();
        assert_eq!(err.detail, "title must be a string, got an object");
    }

    #[test]
    fn number_for_string_attribute_becomes_its_text() {
        assert_eq!(coerce_attr(user_attr("title"), json!(7), "title").unwrap(), Some(json!("7")));
    }

    #[test]
    fn manager_given_as_plain_string_becomes_object() {
        assert_eq!(coerce_attr(manager(), json!("42"), "manager").unwrap(), Some(json!({"value": "42"})));
    }

    #[test]
    fn manager_with_empty_value_means_no_manager() {
        assert_eq!(coerce_attr(manager(), json!({"value": ""}), "manager").unwrap(), None);
        assert_eq!(coerce_attr(manager(), json!(null), "manager").unwrap(), None);
        assert_eq!(coerce_attr(manager(), json!(""), "manager").unwrap(), None);
    }

    #[test]
    fn manager_given_as_one_element_array_is_unwrapped() {
        let old_entra = json!([{"$ref": null, "value": "2819c223"}]);
        assert_eq!(coerce_attr(manager(), old_entra, "manager").unwrap(), Some(json!({"value": "2819c223"})));
    }

    #[test]
    fn sub_attribute_names_are_canonicalised_and_unknown_ones_dropped() {
        let got = coerce_attr(user_attr("name"), json!({"GIVENNAME": "Barbara", "nick": "B"}), "name").unwrap();
        assert_eq!(got, Some(json!({"givenName": "Barbara"})));
    }

    #[test]
    fn single_object_for_multi_valued_attribute_is_wrapped() {
        let got = coerce_attr(user_attr("emails"), json!({"value": "a@b.c", "Primary": "true"}), "emails").unwrap();
        assert_eq!(got, Some(json!([{"value": "a@b.c", "primary": true}])));
    }

    #[test]
    fn string_elements_of_emails_are_rejected() {
        let err = coerce_attr(user_attr("emails"), json!("a@b.c"), "emails").unwrap_err();
        assert_eq!(err.detail, "emails must be an array of objects");
    }

    #[test]
    fn name_must_be_an_object() {
        let err = coerce_attr(user_attr("name"), json!("Barbara Jensen"), "name").unwrap_err();
        assert_eq!(err.detail, "name must be an object");
    }

    #[test]
    fn element_sub_attribute_errors_name_the_index() {
        let err = coerce_attr(user_attr("emails"), json!([{"value": "a"}, {"primary": "yes"}]), "emails").unwrap_err();
        assert_eq!(err.detail, r#"emails[1].primary must be a boolean, got "yes""#);
    }

    #[test]
    fn read_only_sub_attributes_are_dropped() {
        let got = coerce_attr(manager(), json!({"value": "1", "displayName": "Boss"}), "manager").unwrap();
        assert_eq!(got, Some(json!({"value": "1"})));
    }

    #[test]
    fn several_values_for_single_valued_attribute_are_rejected() {
        let err = coerce_attr(user_attr("title"), json!(["a", "b"]), "title").unwrap_err();
        assert_eq!(err.detail, "title must be a single value, got an array");
    }

    #[test]
    fn integers_and_decimals_accept_numeric_strings() {
        let int = AttributeDef::new("n", AttrType::Integer, "");
        assert_eq!(coerce_simple(&int, json!("42"), "n").unwrap(), Some(json!(42)));
        assert!(coerce_simple(&int, json!("4.2"), "n").is_err());
        let dec = AttributeDef::new("d", AttrType::Decimal, "");
        assert_eq!(coerce_simple(&dec, json!("4.5"), "d").unwrap(), Some(json!(4.5)));
        assert!(coerce_simple(&dec, json!("x"), "d").is_err());
    }

    #[test]
    fn date_times_must_parse() {
        let dt = AttributeDef::new("t", AttrType::DateTime, "");
        assert!(coerce_simple(&dt, json!("2011-08-01T21:32:44.882Z"), "t").unwrap().is_some());
        let err = coerce_simple(&dt, json!("yesterday"), "t").unwrap_err();
        assert_eq!(err.detail, r#"t must be an RFC 3339 date-time, got "yesterday""#);
    }
}
