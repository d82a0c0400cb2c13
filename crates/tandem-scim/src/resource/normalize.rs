//! Canonicalising a client-supplied resource (POST/PUT body, or a patched resource) for storage.

use serde_json::{Map, Value};

use crate::custom;
use crate::error::ScimError;
use crate::json::{is_present, member_ci};
use crate::keys::{classify_in_schema, classify_key, KeyTarget};
use crate::patch::edit::{write, Mode};
use crate::patch::target::Target;
use crate::schema::{Mutability, ResolvedAttr, ResourceType};

/// Canonicalises a client-supplied resource (a POST/PUT body, or a patched resource) for storage.
///
/// - Attribute names take their schema spelling at every level, ignoring case; this covers the
///   extension URN key, URN-qualified keys (`urn:…:enterprise:2.0:User:department`) and dotted
///   keys (`name.givenName`).
/// - Values are coerced as PATCH values are (`"False"` → `false`, a manager id string →
///   `{"value": id}`, …); `null`, empty arrays and empty objects mean "absent".
/// - Read-only attributes (`id`, `meta`, User `groups`) and read-only sub-attributes (the manager's
///   `displayName`) are dropped, and so is `password`, which is never stored.
/// - Attributes of a custom extension (a schema URN Tandem does not define, such as Entra ID's
///   `urn:…:CustomExtensionName:2.0:User`) are kept as sent, without a schema (see
///   `crate::custom`), up to [`MAX_CUSTOM_BYTES`](crate::custom::MAX_CUSTOM_BYTES) per resource
///   (each custom write checks what the resource then holds).
/// - Other unknown attributes are dropped: unqualified ones, and attributes a known schema does not
///   define (an admin's custom attribute under the enterprise URN). Refusing them would refuse the
///   whole request, a deactivation sent with them included.
/// - Required attributes are checked (User `userName`, Group `displayName`), and every Group
///   member needs a `value`.
/// - `schemas` becomes the core schema plus each extension that holds data, custom ones included.
///
/// Errors are 400 `invalidValue` (or `invalidSyntax` for a non-object) naming the attribute, e.g.
/// `userName is required`, `active must be a boolean, got "maybe"`,
/// `emails must be an array of objects`, `name must be an object`.
pub fn normalize(rt: ResourceType, input: Value) -> Result<Value, ScimError> {
    let Value::Object(entries) = input else {
        return Err(ScimError::invalid_syntax("resource must be a JSON object"));
    };
    let declared = declared_schemas(&entries);
    let mut out = Map::new();
    for (key, value) in entries {
        match classify_key(rt, &key) {
            KeyTarget::Schemas | KeyTarget::UnknownInSchema => {}
            KeyTarget::Foreign => {
                if let Some(custom) = custom::classify(rt, &key, &value, &declared) {
                    custom::write(rt, &mut out, &custom, value, Mode::Replace)?;
                }
            }
            KeyTarget::Attr(found) => store(&mut out, found, value)?,
            KeyTarget::Schema(schema) => {
                let inner = match value {
                    Value::Object(inner) => inner,
                    Value::Null => continue,
                    _ => return Err(ScimError::invalid_value(format!("{} must be an object", schema.id))),
                };
                for (name, value) in inner {
                    if let KeyTarget::Attr(found) = classify_in_schema(rt, schema, &name) {
                        store(&mut out, found, value)?;
                    }
                }
            }
        }
    }
    check_required(rt, &out)?;
    check_key_lengths(rt, &out)?;
    check_core_size(rt, &out)?;
    if rt == ResourceType::Group {
        check_members(&out)?;
    }
    let mut schemas = vec![Value::from(rt.core_schema().id)];
    for ext in rt.extensions() {
        if out.get(ext.id).is_some_and(is_present) {
            schemas.push(Value::from(ext.id));
        }
    }
    schemas.extend(custom::held(rt, &out).into_iter().map(Value::from));
    out.insert("schemas".to_owned(), Value::Array(schemas));
    Ok(Value::Object(out))
}

/// The attributes of a POST or PUT body, or of a path-less PATCH value, that
/// [`normalize`] drops as unknown: those a known schema does not define,
/// unqualified names no schema has, and URN-qualified names that are
/// neither a known schema's nor a custom extension's (a custom extension's
/// attributes are kept, but for names no attribute can have). Dropping them
/// keeps the request; listing them lets the provisioning log say what was
/// not kept. (Read-only attributes and `password` are dropped by design,
/// and not listed.)
pub fn ignored_attributes(rt: ResourceType, input: &Value) -> Vec<String> {
    ignored_keys(rt, input, false)
}

/// [`ignored_attributes`] of a body (`pathless`: a path-less PATCH value,
/// whose keys may be paths such as `emails[type eq "work"].value`).
pub(crate) fn ignored_keys(rt: ResourceType, input: &Value, pathless: bool) -> Vec<String> {
    let Value::Object(entries) = input else { return Vec::new() };
    let declared = if pathless { Vec::new() } else { declared_schemas(entries) };
    let mut out = Vec::new();
    for (key, value) in entries {
        match classify_key(rt, key) {
            // A path key of a path-less PATCH value is applied as a path
            // (nothing, when it names no attribute; an error when it does not parse).
            _ if pathless && key.contains('[') => {
                let path = crate::path::parse_path(key);
                if path.is_ok_and(|p| matches!(crate::patch::target::resolve_target(rt, &p), Ok(None))) {
                    out.push(key.clone());
                }
            }
            KeyTarget::Foreign => match custom::classify(rt, key, value, &declared) {
                Some(custom::CustomKey::Schema(urn)) => out.extend(custom::unnamed(&urn, value)),
                Some(custom::CustomKey::Attr { .. }) => {}
                None => out.extend(unkept(key, value)),
            },
            KeyTarget::UnknownInSchema => out.extend(unkept(key, value)),
            KeyTarget::Schema(schema) => {
                if let Value::Object(inner) = value {
                    for name in inner.keys().filter(|n| !n.eq_ignore_ascii_case("schemas")) {
                        if !matches!(classify_in_schema(rt, schema, name), KeyTarget::Attr(_)) {
                            out.push(format!("{}:{name}", schema.id));
                        }
                    }
                }
            }
            KeyTarget::Schemas | KeyTarget::Attr(_) => {}
        }
    }
    out
}

/// An unknown key as the provisioning log names it: an object under a URN attribute by attribute.
fn unkept(key: &str, value: &Value) -> Vec<String> {
    match value {
        Value::Object(inner) if key.starts_with("urn:") && !inner.is_empty() => {
            inner.keys().filter(|n| !n.eq_ignore_ascii_case("schemas")).map(|n| format!("{key}:{n}")).collect()
        }
        _ => vec![key.to_owned()],
    }
}

/// The URNs a body lists in `schemas`.
fn declared_schemas(entries: &Map<String, Value>) -> Vec<String> {
    let listed = entries.iter().find(|(k, _)| k.eq_ignore_ascii_case("schemas")).map(|(_, v)| v);
    listed.and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).map(str::to_owned).collect()
}

fn store(out: &mut Map<String, Value>, found: ResolvedAttr, value: Value) -> Result<(), ScimError> {
    let target = Target::from_resolved(found);
    if target.is_read_only() || found.attr.mutability == Mutability::WriteOnly {
        return Ok(());
    }
    write(out, &target, value, Mode::Replace)
}

fn check_required(rt: ResourceType, out: &Map<String, Value>) -> Result<(), ScimError> {
    for attr in rt.core_schema().attributes.iter().filter(|a| a.required) {
        if !out.get(attr.name).is_some_and(is_present) {
            return Err(ScimError::invalid_value(format!("{} is required", attr.name)));
        }
        if out.get(attr.name).and_then(Value::as_str).is_some_and(|s| s.trim().is_empty()) {
            return Err(ScimError::invalid_value(format!("{} must not be blank", attr.name)));
        }
    }
    Ok(())
}

/// Most bytes in an attribute a resource is looked up by. They are indexed,
/// and PostgreSQL refuses an index entry over ~2.7 kB (with the
/// connection's id beside it); no IdP sends names near this long.
pub const MAX_KEY_BYTES: usize = 1024;

/// The attributes a resource is looked up by (`userName`, `externalId`, a
/// group's `displayName`) are at most [`MAX_KEY_BYTES`] long.
fn check_key_lengths(rt: ResourceType, out: &Map<String, Value>) -> Result<(), ScimError> {
    let keys: &[&str] = match rt {
        ResourceType::User => &["userName", "externalId"],
        ResourceType::Group => &["displayName", "externalId"],
    };
    for name in keys {
        if let Some(len) = out.get(*name).and_then(Value::as_str).map(str::len).filter(|l| *l > MAX_KEY_BYTES) {
            return Err(ScimError::invalid_value(format!(
                "{name} is {len} bytes long; at most {MAX_KEY_BYTES} are allowed"
            )));
        }
    }
    Ok(())
}

/// Most bytes (of names and text) a resource's attributes take, its
/// custom extensions (held to their own limit) and a group's members (kept
/// apart, paged) aside. An IdP's user takes a few KiB; without a bound one
/// connection's key could store users as large as a request body, which
/// every read of them (a list page of a thousand, a login's join) would
/// hold in memory several times over.
pub const MAX_CORE_BYTES: usize = 64 * 1024;

fn check_core_size(rt: ResourceType, out: &Map<String, Value>) -> Result<(), ScimError> {
    let counted = out.iter().filter(|(k, _)| {
        let members = rt == ResourceType::Group && k.as_str() == "members";
        !(members || crate::custom::is_custom_urn(rt, k))
    });
    let sizes: Vec<(&String, usize)> = counted.map(|(k, v)| (k, k.len() + text_bytes(v))).collect();
    let total: usize = sizes.iter().map(|(_, n)| n).sum();
    if total <= MAX_CORE_BYTES {
        return Ok(());
    }
    let (largest, its) = sizes.iter().max_by_key(|(_, n)| *n).map_or(("", 0), |(k, n)| (k.as_str(), *n));
    Err(ScimError::invalid_value(format!(
        "the resource's attributes take {total} bytes ({largest} {its}); at most {MAX_CORE_BYTES} are kept per resource \
         (custom extensions and a group's members apart)"
    )))
}

/// The bytes of names and text in a JSON value (other values count 8).
fn text_bytes(v: &Value) -> usize {
    match v {
        Value::String(s) => s.len(),
        Value::Array(a) => a.iter().map(text_bytes).sum(),
        Value::Object(o) => o.iter().map(|(k, v)| k.len() + text_bytes(v)).sum(),
        _ => 8,
    }
}

/// A group member is identified by its `value`; one without it cannot be stored.
fn check_members(out: &Map<String, Value>) -> Result<(), ScimError> {
    let members = out.get("members").and_then(Value::as_array);
    for (idx, member) in members.into_iter().flatten().enumerate() {
        if !member_ci(member, "value").is_some_and(is_present) {
            return Err(ScimError::invalid_value(format!("members[{idx}].value is required")));
        }
    }
    Ok(())
}
