//! Which attributes an update changed, for the provisioning log's
//! attribute-level reasons. Names only, never values: the log must not
//! become a copy of the directory.

use serde_json::{json, Map, Value};

/// The attributes that differ between two stored documents, as
/// `{"attribute", "reason": "added" | "changed" | "removed"}`. A complex
/// attribute (`name`, an extension) is compared one level down
/// (`name.givenName`, `urn:…:User:department`), unless more than
/// [`NAMED_PER_ATTRIBUTE`] of its attributes changed: then it is named once,
/// `changed`, so that the log entry and the event stay small whatever a
/// custom extension holds; a multi-valued one as a whole (`emails`). `id`,
/// `meta` and `schemas` are not the IdP's data.
pub fn changed_attributes(before: &Value, after: &Value) -> Vec<Value> {
    let mut out = Vec::new();
    if let (Some(b), Some(a)) = (before.as_object(), after.as_object()) {
        compare(b, a, None, &mut out);
    }
    out
}

/// Most changed sub-attributes named one by one under one attribute.
const NAMED_PER_ATTRIBUTE: usize = 20;

fn compare(before: &Map<String, Value>, after: &Map<String, Value>, parent: Option<&str>, out: &mut Vec<Value>) {
    // Names match ignoring case, as SCIM's attribute names and schema URNs
    // do (a custom extension keeps the spelling it was sent with, and a PUT
    // may spell a name otherwise); one is named as `after` spells it.
    let mut names: std::collections::BTreeMap<String, (Option<&String>, Option<&String>)> =
        std::collections::BTreeMap::new();
    for k in before.keys() {
        names.entry(k.to_ascii_lowercase()).or_default().0 = Some(k);
    }
    for k in after.keys() {
        names.entry(k.to_ascii_lowercase()).or_default().1 = Some(k);
    }
    for (before_key, after_key) in names.into_values() {
        let Some(name) = after_key.or(before_key) else { continue };
        if parent.is_none() && matches!(name.as_str(), "id" | "meta" | "schemas") {
            continue;
        }
        let (b, a) = (
            before_key.and_then(|k| before.get(k)).filter(|v| !v.is_null()),
            after_key.and_then(|k| after.get(k)).filter(|v| !v.is_null()),
        );
        if b == a {
            continue;
        }
        let full = match parent {
            None => name.clone(),
            Some(p) if p.get(..4).is_some_and(|s| s.eq_ignore_ascii_case("urn:")) => format!("{p}:{name}"),
            Some(p) => format!("{p}.{name}"),
        };
        match (b, a) {
            (Some(Value::Object(bo)), Some(Value::Object(ao))) if parent.is_none() => {
                let mut inner = Vec::new();
                compare(bo, ao, Some(name), &mut inner);
                if inner.len() > NAMED_PER_ATTRIBUTE {
                    out.push(json!({"attribute": full, "reason": "changed"}));
                } else {
                    out.append(&mut inner);
                }
            }
            (None, Some(_)) => out.push(json!({"attribute": full, "reason": "added"})),
            (Some(_), None) => out.push(json!({"attribute": full, "reason": "removed"})),
            _ => out.push(json!({"attribute": full, "reason": "changed"})),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

    #[test]
    fn names_what_changed_one_level_into_complex_attributes() {
        let before = json!({"userName": "a@x", "active": true, "name": {"givenName": "A", "familyName": "B"},
            "emails": [{"value": "a@x"}], ENTERPRISE: {"department": "R&D"}, "meta": {"version": "1"}});
        let after = json!({"userName": "a@x", "active": false, "name": {"givenName": "A", "familyName": "C"},
            "emails": [{"value": "a@y"}], "title": "Boss", ENTERPRISE: {}, "meta": {"version": "2"}});
        assert_eq!(
            changed_attributes(&before, &after),
            vec![
                json!({"attribute": "active", "reason": "changed"}),
                json!({"attribute": "emails", "reason": "changed"}),
                json!({"attribute": "name.familyName", "reason": "changed"}),
                json!({"attribute": "title", "reason": "added"}),
                json!({"attribute": format!("{ENTERPRISE}:department"), "reason": "removed"}),
            ]
        );
    }

    #[test]
    fn an_extension_of_many_changes_is_named_once() {
        let custom = "urn:example:acme:2.0:User";
        let before: Map<String, Value> = (0..30).map(|i| (format!("a{i}"), json!(i))).collect();
        let after: Map<String, Value> = (0..30).map(|i| (format!("a{i}"), json!(i + 1))).collect();
        assert_eq!(
            changed_attributes(&json!({custom: before.clone()}), &json!({custom: after})),
            vec![json!({"attribute": custom, "reason": "changed"})]
        );
        let mut few = before.clone();
        few.insert("a1".to_owned(), json!("x"));
        assert_eq!(
            changed_attributes(&json!({custom: before}), &json!({custom: few})),
            vec![json!({"attribute": format!("{custom}:a1"), "reason": "changed"})]
        );
    }

    /// A name spelled otherwise is the same attribute: a new spelling alone
    /// changes nothing, and a new value is one change, not a removal and an addition.
    #[test]
    fn names_match_ignoring_case() {
        let custom = "urn:example:acme:2.0:User";
        let before = json!({custom: {"costCenter": "42", "Region": "EU"}});
        assert!(changed_attributes(&before, &json!({custom: {"CostCenter": "42", "region": "EU"}})).is_empty());
        assert_eq!(
            changed_attributes(&before, &json!({"URN:example:acme:2.0:User": {"costcenter": "43", "Region": "EU"}})),
            vec![json!({"attribute": "URN:example:acme:2.0:User:costcenter", "reason": "changed"})]
        );
    }

    #[test]
    fn the_same_document_changes_nothing_and_null_is_absent() {
        let doc = json!({"userName": "a@x", "name": {"givenName": "A"}});
        assert!(changed_attributes(&doc, &doc).is_empty());
        assert!(changed_attributes(&json!({"title": null}), &json!({})).is_empty());
        assert_eq!(
            changed_attributes(&json!({"name": {"givenName": "A"}}), &json!({})),
            vec![json!({"attribute": "name", "reason": "removed"})]
        );
    }
}
