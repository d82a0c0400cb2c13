//! The edits behind PATCH `add`, `replace` and `remove` (RFC 7644 §3.5.2.1–3) on a resource JSON object.

use serde_json::{Map, Value};

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

/// The elements of a multi-valued attribute by their `value` text (folded
/// unless `value` is case-exact): [`same_element`] can only hold between
/// elements with equal keys, so a PATCH adding or removing many values
/// compares each with the few sharing its key instead of with every
/// element (an add of n values to n was n² comparisons). Elements whose
/// `value` is not text are compared with every such element, as before.
struct ValueIndex {
    case_exact: bool,
    keyed: std::collections::HashMap<String, Vec<usize>>,
    others: Vec<usize>,
}

impl ValueIndex {
    fn new(def: &AttributeDef) -> ValueIndex {
        let case_exact = def.sub_attribute("value").is_some_and(|s| s.case_exact);
        ValueIndex { case_exact, keyed: std::collections::HashMap::new(), others: Vec::new() }
    }

    fn key(&self, element: &Value) -> Option<String> {
        let text = member_ci(element, "value")?.as_str()?;
        Some(if self.case_exact { text.to_owned() } else { text.to_lowercase() })
    }

    fn insert(&mut self, element: &Value, idx: usize) {
        match self.key(element) {
            Some(k) => self.keyed.entry(k).or_default().push(idx),
            None => self.others.push(idx),
        }
    }

    /// The indexes that may hold an element the same as `candidate`, in order.
    fn candidates(&self, candidate: &Value) -> Vec<usize> {
        // Each list holds its indexes in ascending order (they are added so).
        let (mut found, sorted) = match self.key(candidate) {
            Some(k) => (self.keyed.get(&k).cloned().unwrap_or_default(), true),
            // Without a text `value`: compared with everything, as before.
            None => (self.keyed.values().flatten().copied().collect::<Vec<_>>(), self.keyed.len() <= 1),
        };
        let merge = !found.is_empty() && !self.others.is_empty();
        found.extend(&self.others);
        if merge || !sorted {
            found.sort_unstable();
        }
        found
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
        let found = index
            .candidates(&addition)
            .into_iter()
            .find(|i| items.get(*i).is_some_and(|e| same_element(e, &addition, attr)));
        match found {
            Some(idx) => {
                if let (Some(existing), Value::Object(extra)) = (items.get_mut(idx), &addition) {
                    // Its key stays: the values are the same (folded, where not case-exact).
                    merge_into(existing, extra, attr, label)?;
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
                                .candidates(item)
                                .into_iter()
                                .any(|i| doomed.get(i).is_some_and(|d| same_element(item, d, attr)))
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
