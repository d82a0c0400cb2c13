//! Reading values out of canonical resources, and the ListResponse envelope.

use serde_json::{json, Map, Value};

use crate::json::member_ci;
use crate::schema::LIST_RESPONSE;

/// The `value`s of a canonical User's `emails` (its addresses, as sent).
pub fn email_values(resource: &Value) -> impl Iterator<Item = &str> {
    resource
        .get("emails")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| e.get("value").and_then(Value::as_str))
}

fn non_null(value: &Value) -> Option<&Value> {
    (!value.is_null()).then_some(value)
}

/// The first value of a (sub-)attribute of a canonical resource, for filling index columns:
/// `value_at(&res, None, "userName", None)`,
/// `value_at(&res, Some(ENTERPRISE_USER_SCHEMA), "manager", Some("value"))`.
///
/// `container` is the extension URN holding the attribute. Names ignore case. For a multi-valued
/// attribute this is the first element, or the first element's sub-attribute that is set;
/// `null` counts as absent.
pub fn value_at<'a>(resource: &'a Value, container: Option<&str>, attr: &str, sub: Option<&str>) -> Option<&'a Value> {
    let holder = match container {
        Some(urn) => member_ci(resource, urn)?,
        None => resource,
    };
    let value = member_ci(holder, attr)?;
    match (value, sub) {
        (Value::Array(items), None) => items.iter().find_map(non_null),
        (Value::Array(items), Some(sub)) => items.iter().find_map(|item| member_ci(item, sub).and_then(non_null)),
        (other, Some(sub)) => member_ci(other, sub).and_then(non_null),
        (other, None) => non_null(other),
    }
}

/// Like [`value_at`], but for a multi-valued attribute prefers the element marked `"primary": true`.
pub fn primary_value_at<'a>(
    resource: &'a Value,
    container: Option<&str>,
    attr: &str,
    sub: Option<&str>,
) -> Option<&'a Value> {
    let holder = match container {
        Some(urn) => member_ci(resource, urn)?,
        None => resource,
    };
    if let Some(Value::Array(items)) = member_ci(holder, attr) {
        let primary = items.iter().find(|item| member_ci(item, "primary") == Some(&Value::Bool(true)));
        if let Some(item) = primary {
            let picked = match sub {
                Some(sub) => member_ci(item, sub).and_then(non_null),
                None => non_null(item),
            };
            if picked.is_some() {
                return picked;
            }
        }
    }
    value_at(resource, container, attr, sub)
}

/// `{"schemas":[ListResponse],"totalResults":N,"startIndex":S,"itemsPerPage":len,"Resources":[…]}` (RFC 7644 §3.4.2).
/// The resources are moved in: `json!` would serialise them into a copy
/// (a deep clone of every resource, ~12 % of a lookup's instructions).
pub fn list_response(total_results: u64, start_index: u64, resources: Vec<Value>) -> Value {
    let mut list = Map::new();
    list.insert("schemas".into(), json!([LIST_RESPONSE]));
    list.insert("totalResults".into(), Value::from(total_results));
    list.insert("startIndex".into(), Value::from(start_index));
    list.insert("itemsPerPage".into(), Value::from(resources.len()));
    list.insert("Resources".into(), Value::Array(resources));
    Value::Object(list)
}

/// [`list_response`] written out, around resources already written as JSON
/// text (see [`default_view`](super::default_view)): the same bytes
/// `to_text(&list_response(…))` writes for the same resources.
pub fn list_response_text(total_results: u64, start_index: u64, resources: &[String]) -> String {
    let size = resources.iter().map(|r| r.len() + 1).sum::<usize>() + 160;
    let mut text = String::with_capacity(size);
    text.push_str("{\"Resources\":[");
    for (i, r) in resources.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        text.push_str(r);
    }
    // Keys in the order a `serde_json::Map` keeps them: bytewise.
    text.push_str(&format!(
        "],\"itemsPerPage\":{},\"schemas\":[\"{LIST_RESPONSE}\"],\"startIndex\":{start_index},\"totalResults\":{total_results}}}",
        resources.len()
    ));
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::to_text;

    #[test]
    fn the_written_list_response_is_the_value_written_out() {
        let items = [json!({"id": "a", "userName": "x\"y"}), json!({"id": "b"})];
        for n in 0..=items.len() {
            let texts: Vec<String> = items[..n].iter().map(to_text).collect();
            assert_eq!(
                list_response_text(12, 3, &texts),
                to_text(&list_response(12, 3, items[..n].to_vec())),
                "{n} resources"
            );
        }
    }
}
