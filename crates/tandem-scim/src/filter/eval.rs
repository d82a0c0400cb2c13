//! In-memory filter evaluation against resource JSON (RFC 7644 §3.4.2.2 semantics).
//!
//! Names ignore case; strings compare case-insensitively unless the attribute is `caseExact`;
//! a multi-valued attribute matches when any value does; a multi-valued complex attribute named
//! without a sub-attribute compares its `value` sub-attribute. `eq null` holds when the attribute
//! is absent (or empty), `ne null` when present. `ne` is the negation of `eq`: it matches a resource
//! lacking the attribute, and for a multi-valued attribute it requires that no value be equal.
//! `pr` holds for a value that is not null, `""`, `[]` or `{}`.
//!
//! Ordering (`gt`, `ge`, `lt`, `le`): strings lexicographically (after case folding unless
//! `caseExact`), date-times chronologically with offsets normalised to UTC, numbers numerically;
//! on booleans and complex values it is false. `co`, `sw`, `ew` apply to strings only.
//! Attributes no schema defines (e.g. `schemas`) are looked up by name ignoring case, typed by
//! their JSON value, and compared ignoring case.

use serde_json::Value;

use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use super::compare::compare;
use crate::json::{is_present, member_ci};
use crate::schema::{resolve_in_path, AttributeDef, ResourceType};

/// Whether `resource` (JSON in canonical form) satisfies `filter`, with the semantics described
/// in this module. Used for PATCH value filters, and as the reference a SQL translation of
/// filters is tested against.
pub fn matches(filter: &Filter, resource: &Value, rt: ResourceType) -> bool {
    eval(filter, &Scope::Resource(resource, rt))
}

/// Evaluates the inner filter of a value path against one element of the multi-valued complex attribute `parent`.
pub fn matches_element(filter: &Filter, element: &Value, parent: &AttributeDef) -> bool {
    eval(filter, &Scope::Element(element, Some(parent)))
}

enum Scope<'a> {
    Resource(&'a Value, ResourceType),
    Element(&'a Value, Option<&'a AttributeDef>),
}

/// An attribute located in the JSON: its raw value and definitions, when known.
struct Located<'a> {
    value: Option<&'a Value>,
    attr: Option<&'a AttributeDef>,
    sub: Option<&'a AttributeDef>,
    sub_name: Option<&'a str>,
}

fn locate<'a>(scope: &Scope<'a>, path: &'a AttrPath) -> Located<'a> {
    match scope {
        Scope::Element(element, parent) => Located {
            value: member_ci(element, &path.attr),
            attr: parent.and_then(|p| p.sub_attribute(&path.attr)),
            sub: None,
            sub_name: path.sub_attr.as_deref(),
        },
        Scope::Resource(resource, rt) => {
            let resolved = resolve_in_path(*rt, path.urn.as_deref(), &path.attr, None);
            let container = match (resolved.and_then(|r| r.container), path.urn.as_deref()) {
                (Some(urn), _) => member_ci(resource, urn),
                (None, Some(urn)) if resolved.is_none() && !rt.is_core_urn(urn) => member_ci(resource, urn),
                _ => Some(*resource),
            };
            let attr = resolved.map(|r| r.attr);
            let name = attr.map_or(path.attr.as_str(), |a| a.name);
            let sub_name = path.sub_attr.as_deref();
            Located {
                value: container.and_then(|c| member_ci(c, name)),
                attr,
                sub: attr.zip(sub_name).and_then(|(a, s)| a.sub_attribute(s)),
                sub_name,
            }
        }
    }
}

fn elements(value: &Value) -> Vec<&Value> {
    match value {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    }
}

/// The values a comparison looks at, and the definition that types them.
fn candidates<'a>(found: &Located<'a>) -> (Vec<&'a Value>, Option<&'a AttributeDef>) {
    let Some(value) = found.value else {
        return (Vec::new(), found.sub.or(found.attr));
    };
    let (values, def): (Vec<&Value>, _) = match found.sub_name {
        Some(sub) => (elements(value).into_iter().filter_map(|el| member_ci(el, sub)).collect(), found.sub),
        None => {
            let items = elements(value);
            // A complex attribute compared as a whole compares its `value`:
            // each element's (`emails eq …`), or its one (`manager eq …`).
            let complex_items = found.attr.map_or_else(
                || value.is_array() && items.iter().all(|el| el.is_object()),
                |a| a.is_multi_complex() || a.compared_value().is_some(),
            );
            if complex_items {
                (
                    items.into_iter().filter_map(|el| member_ci(el, "value")).collect(),
                    found.attr.and_then(|a| a.sub_attribute("value")),
                )
            } else {
                (items, found.attr)
            }
        }
    };
    let flat = values.into_iter().flat_map(elements).filter(|v| !v.is_null()).collect();
    (flat, def)
}

fn eval(filter: &Filter, scope: &Scope<'_>) -> bool {
    match filter {
        Filter::And(l, r) => eval(l, scope) && eval(r, scope),
        Filter::Or(l, r) => eval(l, scope) || eval(r, scope),
        Filter::Not(inner) => !eval(inner, scope),
        Filter::Present(path) => {
            let found = locate(scope, path);
            match found.sub_name {
                Some(_) => candidates(&found).0.into_iter().any(is_present),
                None => found.value.is_some_and(is_present),
            }
        }
        Filter::Compare { path, op, value } => {
            let found = locate(scope, path);
            let (values, def) = candidates(&found);
            match (op, value) {
                (CompareOp::Eq, CompValue::Null) => !values.into_iter().any(is_present),
                (CompareOp::Ne, CompValue::Null) => values.into_iter().any(is_present),
                (_, CompValue::Null) => false,
                (CompareOp::Ne, operand) => !values.into_iter().any(|v| compare(v, CompareOp::Eq, operand, def)),
                (op, operand) => values.into_iter().any(|v| compare(v, *op, operand, def)),
            }
        }
        Filter::ValuePath { attr, filter } => match scope {
            Scope::Element(..) => false,
            Scope::Resource(..) => {
                let found = locate(scope, attr);
                found.value.is_some_and(|value| {
                    elements(value).into_iter().any(|el| eval(filter, &Scope::Element(el, found.attr)))
                })
            }
        },
    }
}
