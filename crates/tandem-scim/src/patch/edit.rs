//! The edits behind PATCH `add`, `replace` and `remove` (RFC 7644 §3.5.2.1–3) on a resource JSON object.

use serde_json::{Map, Value};
use std::collections::{BTreeSet, HashMap};

use super::target::Target;
use crate::coerce::{coerce_attr, coerce_element, coerce_simple};
use crate::error::ScimError;
use crate::filter::{matches_element, CompValue, CompareOp, Filter};
use crate::json::{member_ci, take_ci};
use crate::schema::{AttrType, AttributeDef, Mutability};

/// Whether a write adds to what is there or replaces it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Mode {
    Add,
    Replace,
}

/// Runs `edit` on the object holding the target's attribute: the resource itself or its extension
/// object, which is created when missing and dropped when left empty.
fn with_container<R>(
    root: &mut Map<String, Value>,
    container: Option<&str>,
    edit: impl FnOnce(&mut Map<String, Value>) -> R,
) -> R {
    let Some(urn) = container else {
        return edit(root);
    };
    let mut object = match take_ci(root, urn) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let result = edit(&mut object);
    if !object.is_empty() {
        root.insert(urn.to_owned(), Value::Object(object));
    }
    result
}

fn take_array(map: &mut Map<String, Value>, name: &str) -> Vec<Value> {
    match take_ci(map, name) {
        Some(Value::Array(items)) => items,
        None | Some(Value::Null) => Vec::new(),
        Some(single) => vec![single],
    }
}

fn put_array(map: &mut Map<String, Value>, name: &str, items: Vec<Value>) {
    let kept: Vec<Value> = items.into_iter().filter(|item| !item.as_object().is_some_and(Map::is_empty)).collect();
    if !kept.is_empty() {
        map.insert(name.to_owned(), Value::Array(kept));
    }
}

fn text_equal(a: &Value, b: &Value, case_exact: bool) -> bool {
    match (a.as_str(), b.as_str()) {
        (Some(x), Some(y)) if !case_exact => x.to_lowercase() == y.to_lowercase(),
        _ => a == b,
    }
}

/// Whether `candidate` denotes the same value as `existing`: equal `value` (and `type` when both
/// have one), or, for values without a `value` sub-attribute, equal JSON.
pub(crate) fn same_element(existing: &Value, candidate: &Value, def: &AttributeDef) -> bool {
    match (member_ci(existing, "value"), member_ci(candidate, "value")) {
        (Some(a), Some(b)) => {
            let case_exact = def.sub_attribute("value").is_some_and(|s| s.case_exact);
            let types_agree = match (member_ci(existing, "type"), member_ci(candidate, "type")) {
                (Some(x), Some(y)) => text_equal(x, y, false),
                _ => true,
            };
            text_equal(a, b, case_exact) && types_agree
        }
        _ => existing == candidate,
    }
}

/// The elements of a multi-valued attribute by what [`same_element`]
/// compares, so that a PATCH adding or removing many values finds the
/// element the same as each one in constant time instead of comparing it
/// with every element (an add of n values to n was n² comparisons, and a
/// PATCH holds the write lock):
/// - an element with a `value`, by that value (text folded unless `value`
///   is case-exact; anything else as canonical JSON), then by its `type`
///   (folded), or no type, which agrees with every type;
/// - an element without one, by its whole canonical JSON.
///
/// Each set holds indexes in ascending order, so the first element the
/// same as a candidate is the least index among the sets it may be in.
struct ValueIndex {
    case_exact: bool,
    valued: HashMap<String, ValueBucket>,
    whole: HashMap<String, BTreeSet<usize>>,
}

/// The elements of one `value`: all of them, and by type.
#[derive(Default)]
struct ValueBucket {
    all: BTreeSet<usize>,
    by_type: HashMap<Option<String>, BTreeSet<usize>>,
}

/// Where an element is kept in a [`ValueIndex`].
#[derive(PartialEq, Eq)]
enum IndexKey {
    Valued(String, Option<String>),
    Whole(String),
}

/// JSON text with object members in sorted order: equal for equal values
/// whatever order their members were written in.
fn canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(v, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// A key as [`text_equal`] compares: text, folded unless case-exact, or
/// any other JSON as itself (so `"5"` and `5` differ).
fn text_key(value: &Value, case_exact: bool) -> String {
    match value.as_str() {
        Some(text) if case_exact => format!("s{text}"),
        Some(text) => format!("s{}", text.to_lowercase()),
        None => {
            let mut out = String::from("j");
            canonical(value, &mut out);
            out
        }
    }
}

impl ValueIndex {
    fn new(def: &AttributeDef) -> ValueIndex {
        let case_exact = def.sub_attribute("value").is_some_and(|s| s.case_exact);
        ValueIndex { case_exact, valued: HashMap::new(), whole: HashMap::new() }
    }

    fn key(&self, element: &Value) -> IndexKey {
        match member_ci(element, "value") {
            Some(value) => IndexKey::Valued(
                text_key(value, self.case_exact),
                member_ci(element, "type").map(|t| text_key(t, false)),
            ),
            None => {
                let mut out = String::new();
                canonical(element, &mut out);
                IndexKey::Whole(out)
            }
        }
    }

    fn insert(&mut self, element: &Value, idx: usize) {
        self.insert_at(self.key(element), idx);
    }

    fn insert_at(&mut self, key: IndexKey, idx: usize) {
        match key {
            IndexKey::Valued(value, kind) => {
                let bucket = self.valued.entry(value).or_default();
                bucket.all.insert(idx);
                bucket.by_type.entry(kind).or_default().insert(idx);
            }
            IndexKey::Whole(json) => {
                self.whole.entry(json).or_default().insert(idx);
            }
        }
    }

    fn remove_at(&mut self, key: IndexKey, idx: usize) {
        match key {
            IndexKey::Valued(value, kind) => {
                if let Some(bucket) = self.valued.get_mut(&value) {
                    bucket.all.remove(&idx);
                    if let Some(set) = bucket.by_type.get_mut(&kind) {
                        set.remove(&idx);
                    }
                }
            }
            IndexKey::Whole(json) => {
                if let Some(set) = self.whole.get_mut(&json) {
                    set.remove(&idx);
                }
            }
        }
    }

    /// The least index of an element the same as `candidate`, if any.
    fn first_same(&self, candidate: &Value) -> Option<usize> {
        match self.key(candidate) {
            IndexKey::Whole(json) => self.whole.get(&json)?.first().copied(),
            IndexKey::Valued(value, kind) => {
                let bucket = self.valued.get(&value)?;
                match kind {
                    // Without a type it agrees with every element of its value.
                    None => bucket.all.first().copied(),
                    Some(_) => {
                        let typed = bucket.by_type.get(&kind).and_then(|s| s.first().copied());
                        let untyped = bucket.by_type.get(&None).and_then(|s| s.first().copied());
                        typed.into_iter().chain(untyped).min()
                    }
                }
            }
        }
    }
}

/// Sets one sub-attribute of an element; an immutable sub-attribute may only be set when unset.
fn set_sub(element: &mut Map<String, Value>, sub: &AttributeDef, value: Value, label: &str) -> Result<(), ScimError> {
    if sub.mutability == Mutability::Immutable {
        if let Some(old) = element.get(sub.name) {
            if !text_equal(old, &value, sub.case_exact) {
                return Err(ScimError::mutability(format!("{label}: {} is immutable", sub.name)));
            }
        }
    }
    element.insert(sub.name.to_owned(), value);
    Ok(())
}

fn merge_into(
    element: &mut Value,
    addition: &Map<String, Value>,
    def: &AttributeDef,
    label: &str,
) -> Result<(), ScimError> {
    if !element.is_object() {
        *element = Value::Object(Map::new());
    }
    if let Value::Object(map) = element {
        for (key, value) in addition {
            match def.sub_attribute(key) {
                Some(sub) => set_sub(map, sub, value.clone(), label)?,
                None => {
                    map.insert(key.clone(), value.clone());
                }
            }
        }
    }
    Ok(())
}

/// RFC 7644 §3.5.2: making one value primary makes the others non-primary.
fn enforce_single_primary(items: &mut [Value], touched: &[usize]) {
    let is_primary = |v: &Value| v.get("primary") == Some(&Value::Bool(true));
    let Some(winner) = touched.iter().copied().find(|&idx| items.get(idx).is_some_and(is_primary)) else {
        return;
    };
    for (idx, item) in items.iter_mut().enumerate() {
        if idx != winner && is_primary(item) {
            if let Some(map) = item.as_object_mut() {
                map.insert("primary".to_owned(), Value::Bool(false));
            }
        }
    }
}

/// Writes `value` at `target` (`add` or `replace`).
pub(crate) fn write(
    root: &mut Map<String, Value>,
    target: &Target<'_>,
    value: Value,
    mode: Mode,
) -> Result<(), ScimError> {
    let label = target.label();
    with_container(root, target.container, |map| match (target.filter, target.sub) {
        (Some(filter), sub) => write_filtered(map, target.attr, filter, sub, value, mode, &label),
        (None, Some(sub)) if target.attr.multi_valued => write_sub_everywhere(map, target.attr, sub, value, &label),
        (None, Some(sub)) => write_sub_single(map, target.attr, sub, value, &label),
        (None, None) => write_whole(map, target.attr, value, mode, &label),
    })
}

fn write_whole(
    map: &mut Map<String, Value>,
    attr: &AttributeDef,
    value: Value,
    mode: Mode,
    label: &str,
) -> Result<(), ScimError> {
    let coerced = coerce_attr(attr, value, label)?;
    let Some(new) = coerced else {
        if mode == Mode::Replace {
            take_ci(map, attr.name);
        }
        return Ok(());
    };
    if attr.multi_valued && mode == Mode::Add {
        let additions = match new {
            Value::Array(items) => items,
            single => vec![single],
        };
        return append(map, attr, additions, label);
    }
    let keyed_by_value = attr.sub_attribute("value").is_some();
    match (attr.ty, &new) {
        // A complex value with sub-attributes merges, unless it names a new `value` (a new manager).
        (AttrType::Complex, Value::Object(addition)) if !attr.multi_valued && !keyed_by_value => {
            let mut existing = take_ci(map, attr.name).unwrap_or(Value::Null);
            merge_into(&mut existing, addition, attr, label)?;
            map.insert(attr.name.to_owned(), existing);
        }
        (_, Value::Array(_)) if attr.multi_valued => {
            take_ci(map, attr.name);
            let mut new = new;
            if let Value::Array(items) = &mut new {
                // RFC 7643 §2.4: `primary: true` at most once; the first one sent wins.
                let all: Vec<usize> = (0..items.len()).collect();
                enforce_single_primary(items, &all);
            }
            map.insert(attr.name.to_owned(), new);
        }
        _ => {
            take_ci(map, attr.name);
            map.insert(attr.name.to_owned(), new);
        }
    }
    Ok(())
}

fn append(
    map: &mut Map<String, Value>,
    attr: &AttributeDef,
    additions: Vec<Value>,
    label: &str,
) -> Result<(), ScimError> {
    let mut items = take_array(map, attr.name);
    let mut index = ValueIndex::new(attr);
    for (idx, item) in items.iter().enumerate() {
        index.insert(item, idx);
    }
    let mut touched = Vec::new();
    for addition in additions {
        let found =
            index.first_same(&addition).filter(|i| items.get(*i).is_some_and(|e| same_element(e, &addition, attr)));
        match found {
            Some(idx) => {
                if let (Some(existing), Value::Object(extra)) = (items.get_mut(idx), &addition) {
                    // The value stays (folded, where not case-exact), but a
                    // type may be added: the element is kept under its new key.
                    let before = index.key(existing);
                    merge_into(existing, extra, attr, label)?;
                    let after = index.key(existing);
                    if after != before {
                        index.remove_at(before, idx);
                        index.insert_at(after, idx);
                    }
                }
                touched.push(idx);
            }
            None => {
                index.insert(&addition, items.len());
                items.push(addition);
                touched.push(items.len() - 1);
            }
        }
    }
    enforce_single_primary(&mut items, &touched);
    put_array(map, attr.name, items);
    Ok(())
}

/// `attr.sub` on a multi-valued attribute without a filter: every value gets the sub-attribute,
/// and when there is none yet a value holding just that sub-attribute is created.
fn write_sub_everywhere(
    map: &mut Map<String, Value>,
    attr: &AttributeDef,
    sub: &AttributeDef,
    value: Value,
    label: &str,
) -> Result<(), ScimError> {
    let coerced = coerce_simple(sub, value, label)?;
    let mut items = take_array(map, attr.name);
    if items.is_empty() {
        if let Some(v) = coerced {
            let mut element = Map::new();
            element.insert(sub.name.to_owned(), v);
            items.push(Value::Object(element));
        }
    } else {
        for item in &mut items {
            if let Value::Object(element) = item {
                match &coerced {
                    Some(v) => set_sub(element, sub, v.clone(), label)?,
                    None => {
                        take_ci(element, sub.name);
                    }
                }
            }
        }
        // `emails.primary` set to true on every value leaves it on the first.
        let all: Vec<usize> = (0..items.len()).collect();
        enforce_single_primary(&mut items, &all);
    }
    put_array(map, attr.name, items);
    Ok(())
}

fn write_sub_single(
    map: &mut Map<String, Value>,
    attr: &AttributeDef,
    sub: &AttributeDef,
    value: Value,
    label: &str,
) -> Result<(), ScimError> {
    let keyed_by_value = attr.sub_attribute("value").is_some();
    let coerced = coerce_simple(sub, value, label)?
        .filter(|v| !(keyed_by_value && sub.name == "value" && v.as_str() == Some("")));
    let mut object = match take_ci(map, attr.name) {
        Some(Value::Object(existing)) => existing,
        _ => Map::new(),
    };
    match coerced {
        Some(v) => set_sub(&mut object, sub, v, label)?,
        None => {
            take_ci(&mut object, sub.name);
        }
    }
    let complete = !object.is_empty() && (!keyed_by_value || object.contains_key("value"));
    if complete {
        map.insert(attr.name.to_owned(), Value::Object(object));
    }
    Ok(())
}

/// The `sub eq value` pairs of a filter made only of `eq` comparisons joined by `and`.
fn eq_pairs(filter: &Filter) -> Option<Vec<(String, Value)>> {
    match filter {
        Filter::Compare { path, op: CompareOp::Eq, value }
            if path.urn.is_none() && path.sub_attr.is_none() && *value != CompValue::Null =>
        {
            Some(vec![(path.attr.clone(), value.to_json())])
        }
        Filter::And(l, r) => {
            let mut pairs = eq_pairs(l)?;
            pairs.extend(eq_pairs(r)?);
            Some(pairs)
        }
        _ => None,
    }
}

/// Builds the value a filter describes, for writes through a filter that matched nothing.
fn element_from_filter(attr: &AttributeDef, filter: &Filter, label: &str) -> Result<Map<String, Value>, ScimError> {
    let pairs =
        eq_pairs(filter).ok_or_else(|| ScimError::no_target(format!("no value of {} matches {label}", attr.name)))?;
    let mut element = Map::new();
    for (name, value) in pairs {
        let sub = attr.sub_attribute(&name).ok_or_else(|| {
            ScimError::no_target(format!(
                "no value of {} matches {label}, and \"{name}\" is not a sub-attribute to create one with",
                attr.name
            ))
        })?;
        if let Some(v) = coerce_simple(sub, value, &format!("{}.{}", attr.name, sub.name))? {
            element.insert(sub.name.to_owned(), v);
        }
    }
    Ok(element)
}

/// Writes through a value filter. A `replace` without a sub-attribute puts
/// the value in place of each matching one (RFC 7644 §3.5.2.3: "the
/// matching records are replaced"), keeping what the filter's `eq` terms
/// pin when the value leaves it out; an `add` merges into them.
fn write_filtered(
    map: &mut Map<String, Value>,
    attr: &AttributeDef,
    filter: &Filter,
    sub: Option<&AttributeDef>,
    value: Value,
    mode: Mode,
    label: &str,
) -> Result<(), ScimError> {
    // The replacement is coerced once, then copied into every matching value.
    let replacement: Option<Value> = match sub {
        Some(sub) => coerce_simple(sub, value, label)?,
        None => coerce_element(attr, value, label, 0)?,
    };
    // An `add` of nothing (`null`, an empty value) adds nothing, as an add
    // without a filter; only `replace` and `remove` take values away.
    if mode == Mode::Add && replacement.is_none() {
        return Ok(());
    }
    let mut items = take_array(map, attr.name);
    let matched: Vec<usize> =
        items.iter().enumerate().filter(|(_, el)| matches_element(filter, el, attr)).map(|(idx, _)| idx).collect();
    let touched = if matched.is_empty() {
        let mut element = element_from_filter(attr, filter, label)?;
        match (sub, &replacement) {
            (Some(sub), Some(v)) => set_sub(&mut element, sub, v.clone(), label)?,
            (None, Some(Value::Object(addition))) => {
                let mut whole = Value::Object(element);
                merge_into(&mut whole, addition, attr, label)?;
                element = whole.as_object().cloned().unwrap_or_default();
            }
            _ => {}
        }
        items.push(Value::Object(element));
        vec![items.len() - 1]
    } else {
        for &idx in &matched {
            let Some(item) = items.get_mut(idx) else {
                continue;
            };
            match (sub, &replacement) {
                (Some(sub), Some(v)) => {
                    if let Value::Object(element) = item {
                        set_sub(element, sub, v.clone(), label)?;
                    }
                }
                (Some(sub), None) => {
                    if let Value::Object(element) = item {
                        take_ci(element, sub.name);
                    }
                }
                (None, Some(Value::Object(replacement))) if mode == Mode::Replace => {
                    // What the filter pins (`type eq "work"`) stays, unless the value says
                    // otherwise, and so does the `value` a value without one would drop
                    // (an email without its address).
                    let mut kept = element_from_filter(attr, filter, label).unwrap_or_default();
                    if let Some(v) = item.get("value").filter(|_| !replacement.contains_key("value")) {
                        kept.insert("value".to_owned(), v.clone());
                    }
                    let mut whole = Value::Object(kept);
                    merge_into(&mut whole, replacement, attr, label)?;
                    *item = whole;
                }
                (None, Some(Value::Object(addition))) => merge_into(item, addition, attr, label)?,
                (None, _) => *item = Value::Object(Map::new()),
            }
        }
        matched
    };
    enforce_single_primary(&mut items, &touched);
    put_array(map, attr.name, items);
    Ok(())
}

/// Removes what `target` selects. For a multi-valued attribute without filter, `value` (when
/// given) lists the values to remove, as Microsoft Entra sends for group members.
pub(crate) fn remove(
    root: &mut Map<String, Value>,
    target: &Target<'_>,
    value: Option<Value>,
) -> Result<(), ScimError> {
    let label = target.label();
    if target.filter.is_none() && target.sub.is_none() && target.attr.required {
        return Err(ScimError::invalid_value(format!("{label} is required and cannot be removed")));
    }
    with_container(root, target.container, |map| remove_in(map, target, value, &label))
}

fn remove_in(
    map: &mut Map<String, Value>,
    target: &Target<'_>,
    value: Option<Value>,
    label: &str,
) -> Result<(), ScimError> {
    let attr = target.attr;
    match (target.filter, target.sub) {
        (None, None) => {
            // A value lists what to remove (Entra's form); one that lists
            // nothing (`[]`, `[{}]`) removes nothing. Only a remove without
            // a value removes the whole attribute.
            let given = value.as_ref().is_some_and(|v| attr.multi_valued && !v.is_null());
            let listed = match value {
                Some(v) if given => coerce_attr(attr, v, label)?,
                _ => None,
            };
            match listed {
                Some(Value::Array(doomed)) => {
                    let items = take_array(map, attr.name);
                    let mut index = ValueIndex::new(attr);
                    for (idx, d) in doomed.iter().enumerate() {
                        index.insert(d, idx);
                    }
                    let kept = items
                        .into_iter()
                        .filter(|item| {
                            !index
                                .first_same(item)
                                .is_some_and(|i| doomed.get(i).is_some_and(|d| same_element(item, d, attr)))
                        })
                        .collect();
                    put_array(map, attr.name, kept);
                }
                _ if given => {}
                _ => {
                    take_ci(map, attr.name);
                }
            }
        }
        (None, Some(sub)) if attr.multi_valued => {
            let mut items = take_array(map, attr.name);
            for item in &mut items {
                if let Value::Object(element) = item {
                    take_ci(element, sub.name);
                }
            }
            put_array(map, attr.name, items);
        }
        (None, Some(sub)) => write_sub_single(map, attr, sub, Value::Null, label)?,
        (Some(filter), sub) => {
            let items = take_array(map, attr.name);
            let mut kept = Vec::with_capacity(items.len());
            for mut item in items {
                if !matches_element(filter, &item, attr) {
                    kept.push(item);
                    continue;
                }
                if let (Some(sub), Value::Object(element)) = (sub, &mut item) {
                    take_ci(element, sub.name);
                    kept.push(item);
                }
            }
            put_array(map, attr.name, kept);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::{same_element, ValueIndex};
    use crate::schema::{AttributeDef, USER};
    use serde_json::{json, Value};

    static EXACT_SUBS: [AttributeDef; 2] =
        [AttributeDef::string("value", "").case_exact(), AttributeDef::string("type", "")];

    /// Elements of every shape `same_element` tells apart: text values in
    /// two cases, a number and its text, null, no value; types likewise;
    /// with and without another member, written in either order.
    fn shapes() -> Vec<Value> {
        let values = [
            None,
            Some(json!("a@x")),
            Some(json!("A@X")),
            Some(json!("b@x")),
            Some(json!(5)),
            Some(json!("5")),
            Some(Value::Null),
        ];
        let types = [None, Some(json!("work")), Some(json!("WORK")), Some(json!("home")), Some(Value::Null)];
        let mut out = Vec::new();
        for v in &values {
            for t in &types {
                for display in [false, true] {
                    let mut m = serde_json::Map::new();
                    if display {
                        m.insert("display".into(), json!("d"));
                    }
                    if let Some(t) = t {
                        m.insert("type".into(), t.clone());
                    }
                    if let Some(v) = v {
                        m.insert("value".into(), v.clone());
                    }
                    out.push(Value::Object(m));
                }
            }
        }
        out.push(json!("bare"));
        out
    }

    /// The index finds what comparing with every element finds, first first.
    #[test]
    fn the_index_finds_the_first_element_a_linear_scan_finds() {
        for def in [USER.attribute("emails").unwrap(), &AttributeDef::complex("things", &EXACT_SUBS, "").multi()] {
            let all = shapes();
            // Every shape twice, in a scrambled order, so firsts are not trivially the least.
            let mut elements: Vec<Value> = all.iter().chain(all.iter()).cloned().collect();
            let n = elements.len();
            for i in 0..n {
                elements.swap(i, (i * 37 + 11) % n);
            }
            let mut index = ValueIndex::new(def);
            for (i, e) in elements.iter().enumerate() {
                index.insert(e, i);
            }
            for candidate in &all {
                let linear = elements.iter().position(|e| same_element(e, candidate, def));
                assert_eq!(index.first_same(candidate), linear, "{candidate} in {}", def.name);
            }
            // Members written in another order are the same element.
            let reordered: Value = serde_json::from_str(r#"{"value": "a@x", "display": "d", "type": "work"}"#).unwrap();
            let linear = elements.iter().position(|e| same_element(e, &reordered, def));
            assert_eq!(index.first_same(&reordered), linear);
        }
    }
}
