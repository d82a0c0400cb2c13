//! Applying parsed PATCH operations to a stored resource, all or nothing.

use serde_json::{Map, Value};

use super::edit::{remove, write, Mode};
use super::parse::{PatchOpKind, PatchOperation};
use super::target::{resolve_target, Target};
use crate::custom;
use crate::error::ScimError;
use crate::keys::{classify_in_schema, classify_key, KeyTarget};
use crate::path::parse_path;
use crate::resource::normalize;
use crate::schema::{resolve, Mutability, ResolvedAttr, ResourceType};

/// Applies the operations in order to a stored resource in canonical form (see [`normalize`]).
///
/// All or nothing: on error `resource` is unchanged. Read-only attributes the stored resource
/// carries (`id`, `meta`, User `groups`) are kept as they were; everything else is re-normalised,
/// so the result satisfies [`normalize`] (for instance `userName` is still present). Errors from
/// an operation have its index in front of the detail: `Operations[1]: id is read-only`.
pub fn apply_patch(resource: &mut Value, ops: &[PatchOperation], rt: ResourceType) -> Result<(), ScimError> {
    let mut work =
        resource.as_object().cloned().ok_or_else(|| ScimError::invalid_syntax("resource must be a JSON object"))?;
    let mut spent = 0usize;
    for (idx, op) in ops.iter().enumerate() {
        // An operation on a multi-valued attribute goes through its values
        // (a filter, the duplicate check of an add): bounded per request, so
        // that many operations on a resource of many values cannot hold the
        // writer (and, on SQLite, an HTTP worker) for seconds.
        // A filtered path compares each of its terms with each value.
        let held = values_held(&work);
        let terms = op.path.as_ref().and_then(|p| p.filter.as_ref()).map_or(1, |f| f.comparisons().max(1));
        // Without a path, each key of the value with a filter (`emails[type
        // eq "work"].value`) goes through the values too, and may add one.
        // (A path naming the core schema is read as none.)
        let pathless = op.path.as_ref().is_none_or(|p| whole_core(rt, p));
        let filtered_keys = match (&op.value, pathless) {
            (Some(Value::Object(entries)), true) => entries.keys().filter(|k| k.contains('[')).count(),
            _ => 0,
        };
        spent = spent
            .saturating_add(held.saturating_mul(terms))
            .saturating_add(filtered_keys.saturating_mul(held.saturating_add(filtered_keys)))
            .saturating_add(op.value.as_ref().and_then(Value::as_array).map_or(1, Vec::len));
        if spent > PATCH_WORK_LIMIT {
            return Err(ScimError::too_many(format!(
                "Operations[{idx}]: this PATCH of {} operations would go through more than {PATCH_WORK_LIMIT} values \
                 of multi-valued attributes (the resource holds {held}); send its operations in several requests",
                ops.len()
            )));
        }
        apply_one(&mut work, op, rt).map_err(|e| e.with_prefix(&format!("Operations[{idx}]: ")))?;
    }
    // The custom extensions the operations left are declared, so that
    // `normalize` reads each as a whole extension (see `crate::custom`).
    let held = custom::held(rt, &work);
    if !held.is_empty() {
        if let Some(Value::Array(schemas)) = work.get_mut("schemas") {
            schemas.extend(held.into_iter().map(Value::from));
        } else {
            work.insert("schemas".to_owned(), Value::Array(held.into_iter().map(Value::from).collect()));
        }
    }
    let kept: Vec<(&'static str, Value)> = work
        .iter()
        .filter_map(|(key, value)| {
            let found = resolve(rt, None, key, None)?;
            (found.attr.mutability == Mutability::ReadOnly).then(|| (found.attr.name, value.clone()))
        })
        .collect();
    let mut patched = normalize(rt, Value::Object(work))?;
    if let Some(map) = patched.as_object_mut() {
        for (name, value) in kept {
            map.insert(name.to_owned(), value);
        }
    }
    *resource = patched;
    Ok(())
}

/// Most values of multi-valued attributes one PATCH may go through: the
/// values the resource holds when each operation starts, times the
/// comparisons of the operation's path filter (one without), summed over
/// its operations, plus the values the operations bring. Entra ID and Okta
/// send a few operations per request (a group's members change on a path
/// that does not come here); five hundred operations on a user of a
/// thousand emails, or forty on a group of twenty thousand members taken as
/// a document, stay within it.
pub const PATCH_WORK_LIMIT: usize = 1_000_000;

/// The values of multi-valued attributes `work` holds, its extensions' included.
fn values_held(work: &Map<String, Value>) -> usize {
    work.values()
        .map(|v| match v {
            Value::Array(items) => items.len(),
            Value::Object(inner) => inner.values().filter_map(Value::as_array).map(Vec::len).sum(),
            _ => 0,
        })
        .sum()
}

/// The attributes PATCH `ops` name that are not kept (see
/// [`crate::resource::ignored_attributes`]): a path to an attribute that a
/// known schema does not define, or under a URN that names no custom
/// extension, or a value filter on a custom extension's attribute, is
/// applied as nothing; so are such keys of a path-less value.
pub fn ignored_in_patch(rt: ResourceType, ops: &[PatchOperation]) -> Vec<String> {
    let mut out = Vec::new();
    for op in ops {
        match &op.path {
            None => out.extend(op.value.iter().flat_map(|v| crate::resource::normalize::ignored_keys(rt, v, true))),
            Some(path) => match whole_extension(rt, path) {
                Some(urn) => {
                    if let Some(value) = &op.value {
                        let mut wrapped = Map::new();
                        wrapped.insert(urn.to_string(), value.clone());
                        out.extend(crate::resource::ignored_attributes(rt, &Value::Object(wrapped)));
                    }
                }
                None => match custom::path_key(rt, path, op.value.as_ref(), &[]) {
                    Ok(Some(custom::CustomKey::Schema(urn))) => {
                        out.extend(op.value.iter().flat_map(|v| custom::unnamed(&urn, v)))
                    }
                    Ok(None) if matches!(resolve_target(rt, path), Ok(None)) => out.push(path.attr.to_string()),
                    _ => {}
                },
            },
        }
    }
    out
}

/// The URN a path names when it names a schema as a whole (no filter, no
/// sub-attribute): `urn:…:enterprise:2.0:User` is read as the attribute
/// `User` under `urn:…:enterprise:2.0`.
fn whole_schema(path: &crate::path::PatchPath) -> Option<String> {
    if path.filter.is_some() || path.sub_after_filter.is_some() || path.attr.sub_attr.is_some() {
        return None;
    }
    Some(format!("{}:{}", path.attr.urn.as_deref()?, path.attr.attr))
}

/// The extension schema a path names as a whole (`urn:…:enterprise:2.0:User`), if it does.
fn whole_extension(rt: ResourceType, path: &crate::path::PatchPath) -> Option<&'static str> {
    rt.extension(&whole_schema(path)?).map(|s| s.id)
}

/// Whether a path names the resource type's core schema as a whole
/// (`urn:ietf:params:scim:schemas:core:2.0:User`).
fn whole_core(rt: ResourceType, path: &crate::path::PatchPath) -> bool {
    whole_schema(path).is_some_and(|urn| rt.is_core_urn(&urn))
}

/// Whether a PATCH value is nothing: `null` or an empty object.
fn is_nothing(value: &Value) -> bool {
    value.is_null() || value.as_object().is_some_and(Map::is_empty)
}

/// What an `add` or `replace` writes (its value, required) and how.
fn written(op: &PatchOperation) -> Result<(Value, Mode), ScimError> {
    let value = op
        .value
        .clone()
        .ok_or_else(|| ScimError::invalid_value(format!("value is required for {}", op.op.as_str())))?;
    Ok((value, if op.op == PatchOpKind::Add { Mode::Add } else { Mode::Replace }))
}

fn apply_one(work: &mut Map<String, Value>, op: &PatchOperation, rt: ResourceType) -> Result<(), ScimError> {
    // A path naming the core schema is read as no path: its value's keys
    // name the attributes (`{"active": false}` deactivates).
    if op.path.as_ref().is_some_and(|p| whole_core(rt, p)) {
        if op.op == PatchOpKind::Remove {
            return Err(ScimError::invalid_path("the core schema cannot be removed; remove its attributes"));
        }
        let (value, mode) = written(op)?;
        return write_pathless(work, rt, value, mode);
    }
    // A path naming a whole extension schema acts on all of its attributes.
    if let Some(urn) = op.path.as_ref().and_then(|p| whole_extension(rt, p)) {
        let existing = work.keys().find(|k| k.eq_ignore_ascii_case(urn)).cloned();
        match op.op {
            PatchOpKind::Remove => {
                if let Some(k) = existing {
                    work.remove(&k);
                }
                return Ok(());
            }
            PatchOpKind::Add | PatchOpKind::Replace => {
                let (value, mode) = written(op)?;
                // A replace sets the attributes its value names and leaves
                // the others (RFC 7644 §3.5.2.3, as for a complex attribute);
                // a replace with nothing (`null`, `{}`) removes the extension.
                if mode == Mode::Replace && is_nothing(&value) {
                    if let Some(k) = existing {
                        work.remove(&k);
                    }
                    return Ok(());
                }
                let mut wrapped = Map::new();
                wrapped.insert(urn.to_string(), value);
                return write_pathless(work, rt, Value::Object(wrapped), mode);
            }
        }
    }
    // A path under a custom extension is applied without a schema.
    let custom_key = match &op.path {
        Some(path) => custom::path_key(rt, path, op.value.as_ref(), &custom::held(rt, work))?,
        None => None,
    };
    if let Some(key) = custom_key {
        if op.op == PatchOpKind::Remove {
            custom::remove(work, &key, op.value.clone());
            return Ok(());
        }
        let (value, mode) = written(op)?;
        // A replace of the whole extension sets the attributes its value
        // names and leaves the others, as for the enterprise extension; a
        // replace with nothing removes it.
        if mode == Mode::Replace && matches!(key, custom::CustomKey::Schema(_)) && is_nothing(&value) {
            custom::remove(work, &key, None);
            return Ok(());
        }
        return custom::write(rt, work, &key, value, mode);
    }
    if op.op == PatchOpKind::Remove {
        let path = op.path.as_ref().ok_or_else(|| ScimError::no_target("remove needs a path"))?;
        return match resolve_target(rt, path)? {
            Some(target) => {
                target.check_writable()?;
                remove(work, &target, op.value.clone())
            }
            None => Ok(()),
        };
    }
    let (value, mode) = written(op)?;
    match &op.path {
        Some(path) => match resolve_target(rt, path)? {
            Some(target) => {
                target.check_writable()?;
                write(work, &target, value, mode)
            }
            None => Ok(()),
        },
        None => write_pathless(work, rt, value, mode),
    }
}

/// A path-less `add`/`replace`: each key of the value object names what it changes. Keys that
/// are `schemas`, read-only attributes (Okta repeats `id` and `meta`), attributes a known schema
/// does not define, or unknown names are ignored, as `normalize` ignores them in a POST or PUT
/// body; a custom extension's attributes are written without a schema.
fn write_pathless(work: &mut Map<String, Value>, rt: ResourceType, value: Value, mode: Mode) -> Result<(), ScimError> {
    let Value::Object(entries) = value else {
        return Err(ScimError::invalid_value("value must be an object when no path is given"));
    };
    let held = custom::held(rt, work);
    for (key, value) in entries {
        if key.contains('[') {
            let path = parse_path(&key)?;
            // A value filter on a custom attribute is refused as in a path.
            custom::path_key(rt, &path, Some(&value), &held)?;
            if let Some(target) = resolve_target(rt, &path)? {
                target.check_writable()?;
                write(work, &target, value, mode)?;
            }
            continue;
        }
        match classify_key(rt, &key) {
            KeyTarget::Schemas | KeyTarget::UnknownInSchema => {}
            KeyTarget::Foreign => {
                if let Some(custom) = custom::classify(rt, &key, &value, &held) {
                    custom::write(rt, work, &custom, value, mode)?;
                }
            }
            KeyTarget::Attr(found) => write_found(work, found, value, mode)?,
            KeyTarget::Schema(schema) => {
                let inner = match value {
                    Value::Object(inner) => inner,
                    Value::Null => continue,
                    _ => return Err(ScimError::invalid_value(format!("{} must be an object", schema.id))),
                };
                for (name, value) in inner {
                    // Some clients repeat `schemas` inside the extension object.
                    if name.eq_ignore_ascii_case("schemas") {
                        continue;
                    }
                    if let KeyTarget::Attr(found) = classify_in_schema(rt, schema, &name) {
                        write_found(work, found, value, mode)?;
                    }
                }
            }
        }
    }
    Ok(())
}

fn write_found(work: &mut Map<String, Value>, found: ResolvedAttr, value: Value, mode: Mode) -> Result<(), ScimError> {
    let target = Target::from_resolved(found);
    if target.is_read_only() {
        return Ok(());
    }
    write(work, &target, value, mode)
}
