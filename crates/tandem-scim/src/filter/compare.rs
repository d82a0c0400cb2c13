//! Comparing one attribute value with a filter operand, by the attribute's type (RFC 7644 §3.4.2.2).

use std::cmp::Ordering;

use serde_json::Value;

use super::ast::{CompValue, CompareOp};
use crate::datetime::parse_instant;
use crate::schema::{AttrType, AttributeDef};

/// Whether `candidate op operand` holds. Comparisons a type does not support (e.g. `gt` on a boolean) are false.
pub(crate) fn compare(candidate: &Value, op: CompareOp, operand: &CompValue, def: Option<&AttributeDef>) -> bool {
    if op == CompareOp::Ne {
        return !compare(candidate, CompareOp::Eq, operand, def);
    }
    let ty = def.map_or_else(|| inferred_type(candidate), |d| d.ty);
    let case_exact = def.is_some_and(|d| d.case_exact);
    match ty {
        AttrType::Boolean => compare_bool(candidate, op, operand),
        AttrType::Integer | AttrType::Decimal => compare_number(candidate, op, operand),
        AttrType::DateTime => compare_date_time(candidate, op, operand),
        AttrType::String | AttrType::Reference | AttrType::Binary => compare_text(candidate, op, operand, case_exact),
        AttrType::Complex => false,
    }
}

fn inferred_type(value: &Value) -> AttrType {
    match value {
        Value::Bool(_) => AttrType::Boolean,
        Value::Number(_) => AttrType::Decimal,
        Value::String(_) => AttrType::String,
        _ => AttrType::Complex,
    }
}

fn ordering_satisfies(ordering: Ordering, op: CompareOp) -> bool {
    match op {
        CompareOp::Eq => ordering == Ordering::Equal,
        CompareOp::Ne => ordering != Ordering::Equal,
        CompareOp::Gt => ordering == Ordering::Greater,
        CompareOp::Ge => ordering != Ordering::Less,
        CompareOp::Lt => ordering == Ordering::Less,
        CompareOp::Le => ordering != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn lenient_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn compare_bool(candidate: &Value, op: CompareOp, operand: &CompValue) -> bool {
    let wanted = match operand {
        CompValue::Bool(b) => Some(*b),
        CompValue::String(s) => lenient_bool(&Value::String(s.clone())),
        _ => None,
    };
    match (op, lenient_bool(candidate), wanted) {
        (CompareOp::Eq, Some(have), Some(want)) => have == want,
        _ => false,
    }
}

enum Num {
    Int(i128),
    Float(f64),
}

fn number_of(value: &Value) -> Option<Num> {
    let number = match value {
        Value::Number(n) => n.clone(),
        Value::String(s) => s.trim().parse::<serde_json::Number>().ok()?,
        _ => return None,
    };
    if let Some(i) = number.as_i64() {
        Some(Num::Int(i128::from(i)))
    } else if let Some(u) = number.as_u64() {
        Some(Num::Int(i128::from(u)))
    } else {
        number.as_f64().map(Num::Float)
    }
}

fn as_float(n: &Num) -> f64 {
    match n {
        // Precision loss only matters beyond 2^53, where float ordering is the best available.
        Num::Int(i) => *i as f64,
        Num::Float(f) => *f,
    }
}

fn compare_number(candidate: &Value, op: CompareOp, operand: &CompValue) -> bool {
    let wanted = match operand {
        CompValue::Number(n) => number_of(&Value::Number(n.clone())),
        CompValue::String(s) => number_of(&Value::String(s.clone())),
        _ => None,
    };
    let (Some(have), Some(want)) = (number_of(candidate), wanted) else {
        return false;
    };
    let ordering = match (&have, &want) {
        (Num::Int(a), Num::Int(b)) => Some(a.cmp(b)),
        _ => as_float(&have).partial_cmp(&as_float(&want)),
    };
    ordering.is_some_and(|o| ordering_satisfies(o, op))
}

fn operand_text(operand: &CompValue) -> Option<String> {
    match operand {
        CompValue::String(s) => Some(s.clone()),
        CompValue::Number(n) => Some(n.to_string()),
        CompValue::Bool(b) => Some(b.to_string()),
        CompValue::Null => None,
    }
}

fn compare_text(candidate: &Value, op: CompareOp, operand: &CompValue, case_exact: bool) -> bool {
    let have = match candidate {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return false,
    };
    let Some(want) = operand_text(operand) else {
        return false;
    };
    let (have, want) = if case_exact { (have, want) } else { (have.to_lowercase(), want.to_lowercase()) };
    match op {
        CompareOp::Co => have.contains(&want),
        CompareOp::Sw => have.starts_with(&want),
        CompareOp::Ew => have.ends_with(&want),
        _ => ordering_satisfies(have.cmp(&want), op),
    }
}

fn compare_date_time(candidate: &Value, op: CompareOp, operand: &CompValue) -> bool {
    if let (Value::String(have), CompValue::String(want)) = (candidate, operand) {
        if let (Some(a), Some(b)) = (parse_instant(have), parse_instant(want)) {
            return ordering_satisfies(a.cmp(&b), op);
        }
    }
    compare_text(candidate, op, operand, false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{resolve, ResourceType};
    use serde_json::json;

    fn s(text: &str) -> CompValue {
        CompValue::String(text.into())
    }

    fn def(attr: &str, sub: Option<&str>) -> Option<&'static AttributeDef> {
        let found = resolve(ResourceType::User, None, attr, sub).unwrap();
        Some(found.sub.unwrap_or(found.attr))
    }

    #[test]
    fn case_insensitive_strings_ignore_case() {
        assert!(compare(&json!("BJensen"), CompareOp::Eq, &s("bjensen"), def("userName", None)));
        assert!(compare(&json!("Barbara"), CompareOp::Sw, &s("BAR"), def("displayName", None)));
    }

    #[test]
    fn case_exact_strings_respect_case() {
        assert!(!compare(&json!("ABC"), CompareOp::Eq, &s("abc"), def("externalId", None)));
        assert!(compare(&json!("ABC"), CompareOp::Eq, &s("ABC"), def("externalId", None)));
    }

    #[test]
    fn strings_order_lexicographically() {
        assert!(compare(&json!("b"), CompareOp::Gt, &s("A"), def("title", None)));
        assert!(compare(&json!("a"), CompareOp::Le, &s("a"), def("title", None)));
    }

    #[test]
    fn date_times_compare_chronologically_across_offsets() {
        let created = def("meta", Some("created"));
        let have = json!("2011-05-13T06:42:34+02:00");
        assert!(compare(&have, CompareOp::Eq, &s("2011-05-13T04:42:34Z"), created));
        assert!(compare(&have, CompareOp::Gt, &s("2011-05-13T04:42:33.9Z"), created));
        assert!(!compare(&have, CompareOp::Lt, &s("2011-05-13T04:42:34Z"), created));
    }

    #[test]
    fn booleans_only_support_equality() {
        let active = def("active", None);
        assert!(compare(&json!(true), CompareOp::Eq, &CompValue::Bool(true), active));
        assert!(compare(&json!(false), CompareOp::Eq, &s("False"), active));
        assert!(!compare(&json!(true), CompareOp::Gt, &CompValue::Bool(false), active));
    }

    #[test]
    fn numbers_compare_numerically_without_schema() {
        let n = |v: i64| CompValue::Number(v.into());
        assert!(compare(&json!(10), CompareOp::Gt, &n(9), None));
        assert!(compare(&json!(2.5), CompareOp::Lt, &n(3), None));
        assert!(!compare(&json!(10), CompareOp::Co, &n(1), None));
    }

    #[test]
    fn number_operand_matches_string_attribute_by_its_text() {
        assert!(compare(&json!("12345"), CompareOp::Eq, &CompValue::Number(12345.into()), def("externalId", None)));
    }

    #[test]
    fn complex_values_never_compare() {
        assert!(!compare(&json!({"givenName": "a"}), CompareOp::Eq, &s("a"), def("name", None)));
    }
}
