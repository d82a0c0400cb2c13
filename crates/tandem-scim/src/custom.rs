//! Attributes of schemas Tandem does not define: an identity provider's
//! custom extension, such as Entra ID's
//! `urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User:costCenter`
//! or an Okta attribute with an external namespace. Apps read them (a
//! role, a cost centre, a region) from the SCIM users Tandem hands them, so
//! they are kept as the IdP sent them.
//!
//! An IdP's admin makes these attributes up, so Tandem has no definition
//! for them, and they are kept without one: values as sent (no coercion,
//! since no type is known), names matched ignoring case (RFC 7643 §2.1),
//! `null` and empty values meaning absent, as for every attribute. A
//! schema-driven SCIM library needs each schema declared before it accepts
//! its attributes; keeping undeclared ones per connection is what an IdP
//! that maps custom attributes needs, so it is written here.
//!
//! Which key names a whole extension and which an attribute of one: RFC
//! 7643 §3.3 writes an extension's attributes in an object under its URN,
//! listed in `schemas`, and RFC 7644 §3.10 names an attribute by its
//! schema's URN, a colon and its name. `urn:…:CustomExtensionName:2.0:User`
//! could be either (an attribute `User` of `urn:…:2.0`). In order, a URN is
//! a whole extension when it is listed in the body's `schemas` or held by
//! the resource (for a PATCH), or ends in the resource type's name as
//! written (`:User`, `:Group`), as the extension URNs IdPs send do; else,
//! what precedes its last colon is the extension when that is listed, held
//! or ends in the type's name (`urn:…:2.0:User:address`, an attribute);
//! else an object under it is a whole extension, and any other value an
//! attribute of what precedes the last colon.
//!
//! Every write is bounded before the work it makes: a value of more than
//! [`MAX_CUSTOM_BYTES`] of JSON, or an object of more than
//! [`MAX_CUSTOM_ATTRIBUTES`] names, is refused before it is read, and the
//! resource's custom data is held to both after each write, so an add's
//! duplicate check (hashed) and the names' case-insensitive matching stay
//! linear in what a resource may hold.

use std::collections::HashSet;

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::attr_path::is_attr_name;
use crate::json::{is_present, to_text};
use crate::patch::edit::Mode;
use crate::path::PatchPath;
use crate::schema::{ResourceType, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, PATCH_OP, USER_SCHEMA};

/// Most bytes of custom extension data one resource keeps: its URNs and
/// the JSON text of their values. An IdP sends a few attributes; the
/// limit keeps a resource's stored document, which every read of it
/// parses or copies, from growing to the size of a request body.
pub const MAX_CUSTOM_BYTES: usize = 64 * 1024;

/// Most attributes the custom extensions of one resource hold together.
/// An IdP maps a few; Entra ID's directory extensions and Okta's profile
/// attributes stay well under it.
pub const MAX_CUSTOM_ATTRIBUTES: usize = 200;

/// Most bytes in a custom extension's URN.
const MAX_URN_BYTES: usize = 256;

/// What a key or path names under a custom extension.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum CustomKey {
    /// A whole extension, by its URN.
    Schema(String),
    /// An attribute of one, with an optional sub-attribute.
    Attr { urn: String, attr: String, sub: Option<String> },
}

/// Whether `urn` can name a custom extension of `rt`: `urn:` followed by
/// URN characters (RFC 8141, without `,`, `;`, `?` and `#`), at most 256
/// bytes, and not a schema SCIM or Tandem defines, a prefix of one, or a
/// name under one: SCIM 2.0's core schemas and messages
/// (`urn:ietf:params:scim:schemas:core…`, `urn:ietf:params:scim:api…`),
/// the enterprise extension, and SCIM 1.1's `urn:scim:…`.
pub fn is_custom_urn(rt: ResourceType, urn: &str) -> bool {
    const DEFINED: [&str; 4] = [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA, PATCH_OP];
    let has_prefix = urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    let reserved = |lower: &str| {
        lower.starts_with("urn:ietf:params:scim:schemas:core")
            || lower.starts_with("urn:ietf:params:scim:api")
            || lower.starts_with("urn:scim:")
            || DEFINED.iter().any(|d| {
                let d = d.to_ascii_lowercase();
                d == lower || d.starts_with(&format!("{lower}:")) || lower.starts_with(&format!("{d}:"))
            })
    };
    // Cheapest first: every key of a resource comes here, the enterprise extension's included.
    has_prefix
        && urn.len() > 4
        && urn.len() <= MAX_URN_BYTES
        && rt.extension(urn).is_none()
        && urn.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+=:@/".contains(&b))
        && !urn.ends_with(':')
        && !reserved(&urn.to_ascii_lowercase())
}

/// Whether `urn` ends in the resource type's name as written (`…:2.0:User`),
/// and what precedes it does not (in `…:User:User` the second is an attribute).
fn ends_in_type(rt: ResourceType, urn: &str) -> bool {
    let mut segments = urn.rsplit(':');
    segments.next() == Some(rt.name()) && segments.next() != Some(rt.name())
}

/// `attr` or `attr.sub`, each an RFC 7643 attribute name; never `schemas`,
/// which no attribute of an extension may be called (an extension's object
/// may repeat the resource's `schemas`, and it is skipped there).
fn split_name(name: &str) -> Option<(String, Option<String>)> {
    let mut parts = name.split('.');
    let attr = parts.next()?;
    let sub = parts.next();
    if parts.next().is_some()
        || !is_attr_name(attr)
        || sub.is_some_and(|s| !is_attr_name(s))
        || attr.eq_ignore_ascii_case("schemas")
    {
        return None;
    }
    Some((attr.to_owned(), sub.map(str::to_owned)))
}

/// Whether `urn` is a custom extension a body or resource names as one:
/// listed in `declared`, or ending in the resource type's name.
fn named_extension(rt: ResourceType, urn: &str, declared: &[String]) -> bool {
    is_custom_urn(rt, urn) && (declared.iter().any(|d| d.eq_ignore_ascii_case(urn)) || ends_in_type(rt, urn))
}

/// What a key of a body or of a path-less PATCH value that names nothing
/// Tandem defines names under a custom extension, if anything (the order is
/// in the module's comment). `declared`: the URNs the body lists in
/// `schemas`, or the resource holds.
pub(crate) fn classify(rt: ResourceType, key: &str, value: &Value, declared: &[String]) -> Option<CustomKey> {
    if named_extension(rt, key, declared) {
        // A value other than an object is refused by `write`, as for the enterprise extension.
        return Some(CustomKey::Schema(key.to_owned()));
    }
    let attribute = key.rsplit_once(':').and_then(|(urn, name)| {
        let (attr, sub) = split_name(name)?;
        is_custom_urn(rt, urn)
            .then(|| (named_extension(rt, urn, declared), CustomKey::Attr { urn: urn.to_owned(), attr, sub }))
    });
    match attribute {
        Some((true, attr)) => Some(attr),
        _ if value.is_object() && is_custom_urn(rt, key) => Some(CustomKey::Schema(key.to_owned())),
        Some((false, attr)) => Some(attr),
        None => None,
    }
}

/// What a PATCH path names under a custom extension, in the order of
/// [`classify`] (`held`: the resource's custom extensions; `value`: the
/// operation's). `Ok(None)` for a path outside custom extensions. A value
/// filter on a custom attribute (`urn:…:User:roles[value eq "a"]`) is 400
/// `invalidPath`: without a schema there is nothing to compare its values
/// by, and ignoring it would leave a value the IdP removed (a role) in
/// place.
pub(crate) fn path_key(
    rt: ResourceType,
    path: &PatchPath,
    value: Option<&Value>,
    held: &[String],
) -> Result<Option<CustomKey>, ScimError> {
    let Some(urn) = path.attr.urn.as_deref() else { return Ok(None) };
    let full = format!("{urn}:{}", path.attr.attr);
    if path.filter.is_some() {
        if is_custom_urn(rt, urn) || is_custom_urn(rt, &full) {
            return Err(ScimError::invalid_path(format!(
                "a value filter cannot select values of \"{full}\": a custom extension's attributes are kept \
                 without a schema to compare them by; write the attribute whole instead"
            )));
        }
        return Ok(None);
    }
    let whole = path.attr.sub_attr.is_none() && is_custom_urn(rt, &full);
    let attr = || {
        (is_custom_urn(rt, urn) && !path.attr.attr.eq_ignore_ascii_case("schemas")).then(|| CustomKey::Attr {
            urn: urn.to_owned(),
            attr: path.attr.attr.clone(),
            sub: path.attr.sub_attr.clone(),
        })
    };
    Ok(if whole && named_extension(rt, &full, held) {
        Some(CustomKey::Schema(full))
    } else if named_extension(rt, urn, held) {
        attr()
    } else if whole && value.is_none_or(Value::is_object) {
        Some(CustomKey::Schema(full))
    } else {
        attr()
    })
}

/// The URNs of the custom extensions `resource` holds.
pub(crate) fn held(rt: ResourceType, resource: &Map<String, Value>) -> Vec<String> {
    resource.keys().filter(|k| is_custom_urn(rt, k)).cloned().collect()
}

/// The names in a whole extension's object that no attribute can have
/// (neither `attr` nor `attr.sub` of RFC 7643 names), as `urn:name`: they
/// are not kept.
pub(crate) fn unnamed(urn: &str, value: &Value) -> Vec<String> {
    let Value::Object(entries) = value else { return Vec::new() };
    entries
        .keys()
        .filter(|n| !n.eq_ignore_ascii_case("schemas") && split_name(n).is_none())
        .map(|n| format!("{urn}:{n}"))
        .collect()
}

/// The spelling `map` already has for `name`, ignoring case, else `name`.
fn spelling(map: &Map<String, Value>, name: &str) -> String {
    map.keys().find(|k| k.eq_ignore_ascii_case(name)).cloned().unwrap_or_else(|| name.to_owned())
}

/// Runs `edit` on the extension object `urn` of `root` (created when
/// missing, kept under the spelling it has, dropped when left empty).
fn with_extension<R>(root: &mut Map<String, Value>, urn: &str, edit: impl FnOnce(&mut Map<String, Value>) -> R) -> R {
    let key = spelling(root, urn);
    let mut object = match root.remove(&key) {
        Some(Value::Object(map)) => map,
        _ => Map::new(),
    };
    let result = edit(&mut object);
    if !object.is_empty() {
        root.insert(key, Value::Object(object));
    }
    result
}

/// Puts `value` under `name` (its existing spelling kept), or removes `name` when `value` is absent.
fn put(map: &mut Map<String, Value>, name: &str, value: Value) {
    let key = spelling(map, name);
    map.remove(&key);
    set(map, key, value);
}

/// Puts `value` under `key` when it is present.
fn set(map: &mut Map<String, Value>, key: String, value: Value) {
    if is_present(&value) {
        map.insert(key, value);
    }
}

/// `new` written over `old`: replaced, or for an add, the elements of an
/// array not already in it appended, and an object's members merged in.
fn combine(old: Option<Value>, new: Value, mode: Mode) -> Value {
    match (mode, old, new) {
        (Mode::Add, Some(Value::Array(mut items)), new) => {
            let added = match new {
                Value::Array(more) => more,
                Value::Null => Vec::new(),
                one => vec![one],
            };
            // Compared by their JSON text (`Map` keeps keys sorted), hashed.
            let mut seen: HashSet<String> = items.iter().map(to_text).collect();
            for item in added {
                if seen.insert(to_text(&item)) {
                    items.push(item);
                }
            }
            Value::Array(items)
        }
        (Mode::Add, Some(Value::Object(mut members)), Value::Object(more)) => {
            for (name, value) in more {
                put(&mut members, &name, value);
            }
            Value::Object(members)
        }
        (_, _, new) => new,
    }
}

/// Writes `value` at `key` in a resource object: `Mode::Replace` sets it,
/// `Mode::Add` adds to what is there (see [`combine`]). A whole extension
/// takes each member of an object value in turn; names no attribute can
/// have are skipped. An absent value (`null`, empty) removes on a replace
/// and adds nothing on an add. Refused (400 `invalidValue`) before any
/// work: a value over [`MAX_CUSTOM_BYTES`] of JSON, an object of more than
/// [`MAX_CUSTOM_ATTRIBUTES`] names; and after it, a resource whose custom
/// data went over either (see [`check_size`]).
pub(crate) fn write(
    rt: ResourceType,
    root: &mut Map<String, Value>,
    key: &CustomKey,
    value: Value,
    mode: Mode,
) -> Result<(), ScimError> {
    let bytes = to_text(&value).len();
    if bytes > MAX_CUSTOM_BYTES {
        return Err(too_large(bytes));
    }
    if let (CustomKey::Schema(urn), Value::Object(entries)) = (key, &value) {
        if entries.len() > MAX_CUSTOM_ATTRIBUTES {
            return Err(too_many(&format!("{urn} names {}", entries.len())));
        }
    }
    write_unchecked(root, key, value, mode)?;
    check_size(rt, root)
}

fn write_unchecked(root: &mut Map<String, Value>, key: &CustomKey, value: Value, mode: Mode) -> Result<(), ScimError> {
    if mode == Mode::Add && !is_present(&value) {
        return Ok(());
    }
    match key {
        CustomKey::Schema(urn) => {
            let entries = match value {
                Value::Object(entries) => entries,
                Value::Null => return Ok(()),
                _ => return Err(ScimError::invalid_value(format!("{urn} must be an object"))),
            };
            for (name, value) in entries {
                if name.eq_ignore_ascii_case("schemas") {
                    continue;
                }
                if let Some((attr, sub)) = split_name(&name) {
                    write_unchecked(root, &CustomKey::Attr { urn: urn.clone(), attr, sub }, value, mode)?;
                }
            }
        }
        CustomKey::Attr { urn, attr, sub } => with_extension(root, urn, |ext| match sub {
            None => {
                let name = spelling(ext, attr);
                let old = ext.remove(&name);
                set(ext, name, combine(old, value, mode));
                Ok(())
            }
            Some(sub) => {
                let name = spelling(ext, attr);
                let mut object = match ext.remove(&name) {
                    Some(Value::Object(map)) => map,
                    None => Map::new(),
                    Some(other) => {
                        let held = crate::json::describe(&other);
                        ext.insert(name, other);
                        return Err(ScimError::invalid_value(format!(
                            "{urn}:{attr} holds {held}, not an object, so it has no sub-attribute \"{sub}\" to write; \
                             write {urn}:{attr} whole instead"
                        )));
                    }
                };
                let sub_name = spelling(&object, sub);
                let old = object.remove(&sub_name);
                set(&mut object, sub_name, combine(old, value, mode));
                set(ext, name, Value::Object(object));
                Ok(())
            }
        })?,
    }
    Ok(())
}

/// Removes what `key` names. With a `value`, an array keeps the elements
/// not in it (one value or an array of them), as an IdP removes some of a
/// multi-valued attribute's values; anything else is removed whole.
pub(crate) fn remove(root: &mut Map<String, Value>, key: &CustomKey, value: Option<Value>) {
    let (urn, attr, sub) = match key {
        CustomKey::Schema(urn) => {
            root.remove(&spelling(root, urn));
            return;
        }
        CustomKey::Attr { urn, attr, sub } => (urn, attr, sub),
    };
    let strip = |map: &mut Map<String, Value>, name: &str| {
        let name = spelling(map, name);
        let old = map.remove(&name);
        if let (Some(Value::Array(items)), Some(given)) = (old, value.as_ref()) {
            let gone: HashSet<String> = match given {
                Value::Array(list) => list.iter().map(to_text).collect(),
                one => HashSet::from([to_text(one)]),
            };
            set(map, name, Value::Array(items.into_iter().filter(|i| !gone.contains(&to_text(i))).collect()));
        }
    };
    with_extension(root, urn, |ext| match sub {
        None => strip(ext, attr),
        Some(sub) => {
            let name = spelling(ext, attr);
            match ext.remove(&name) {
                Some(Value::Object(mut object)) => {
                    strip(&mut object, sub);
                    set(ext, name, Value::Object(object));
                }
                Some(other) => {
                    ext.insert(name, other);
                }
                None => {}
            }
        }
    });
}

/// 400 `invalidValue` when the custom extensions of a resource hold more
/// than [`MAX_CUSTOM_BYTES`] or [`MAX_CUSTOM_ATTRIBUTES`].
fn check_size(rt: ResourceType, resource: &Map<String, Value>) -> Result<(), ScimError> {
    let custom = || resource.iter().filter(|(k, _)| is_custom_urn(rt, k));
    let bytes: usize = custom().map(|(k, v)| k.len() + to_text(v).len()).sum();
    if bytes > MAX_CUSTOM_BYTES {
        return Err(too_large(bytes));
    }
    let names: usize = custom().map(|(_, v)| v.as_object().map_or(1, Map::len)).sum();
    if names > MAX_CUSTOM_ATTRIBUTES {
        return Err(too_many(&format!("the custom extensions hold {names}")));
    }
    Ok(())
}

fn too_large(bytes: usize) -> ScimError {
    ScimError::invalid_value(format!(
        "custom extension attributes take {bytes} bytes of JSON; at most {MAX_CUSTOM_BYTES} are kept per resource"
    ))
}

fn too_many(what: &str) -> ScimError {
    ScimError::invalid_value(format!(
        "{what} attributes; at most {MAX_CUSTOM_ATTRIBUTES} custom extension attributes are kept per resource"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::parse_path;
    use serde_json::json;

    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";
    const RT: ResourceType = ResourceType::User;

    fn attr(urn: &str, attr: &str, sub: Option<&str>) -> CustomKey {
        CustomKey::Attr { urn: urn.to_owned(), attr: attr.to_owned(), sub: sub.map(str::to_owned) }
    }

    fn whole(urn: &str) -> CustomKey {
        CustomKey::Schema(urn.to_owned())
    }

    #[test]
    fn defined_schemas_their_prefixes_and_names_under_them_are_not_custom() {
        assert!(is_custom_urn(RT, CUSTOM));
        assert!(is_custom_urn(RT, "urn:example:acme"));
        assert!(is_custom_urn(RT, "urn:ietf:params:scim:schemas:extension:acme:2.0:User"));
        for defined in [
            USER_SCHEMA,
            ENTERPRISE_USER_SCHEMA,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager",
            "urn:ietf:params:scim:schemas:core:2.0",
            "urn:ietf:params:scim:schemas:core",
            "urn:ietf:params:scim:api:messages:2.0:PatchOp",
            "urn:ietf:params:scim:api",
            "urn:ietf:params:scim:api:messages",
            "urn:scim:schemas:core:1.0",
            "urn:",
            "urn:x:",
            "urn:has space",
            "urn:a,b",
            "not-a-urn:x",
        ] {
            assert!(!is_custom_urn(RT, defined), "{defined}");
        }
        assert!(!is_custom_urn(RT, &format!("urn:{}", "x".repeat(300))));
        // The enterprise extension is the User's; a Group does not keep it either.
        assert!(!is_custom_urn(ResourceType::Group, ENTERPRISE_USER_SCHEMA));
    }

    #[test]
    fn a_urn_key_is_read_in_the_documented_order() {
        let object = json!({"role": "admin"});
        let text = json!("x");
        // Ending in the type's name, as written: whole, whatever the value.
        assert_eq!(classify(RT, CUSTOM, &text, &[]), Some(whole(CUSTOM)));
        // Declared in `schemas`: whole, whatever its last segment.
        let declared = ["URN:EXAMPLE:ACME".to_owned()];
        assert_eq!(classify(RT, "urn:example:acme", &text, &declared), Some(whole("urn:example:acme")));
        // Under a declared or type-named extension: an attribute, an object too.
        assert_eq!(classify(RT, &format!("{CUSTOM}:address"), &object, &[]), Some(attr(CUSTOM, "address", None)));
        assert_eq!(
            classify(RT, "urn:example:acme:tier", &object, &declared),
            Some(attr("urn:example:acme", "tier", None))
        );
        assert_eq!(
            classify(RT, &format!("{CUSTOM}:costCenter.code"), &text, &[]),
            Some(attr(CUSTOM, "costCenter", Some("code")))
        );
        // Otherwise an object is a whole extension, another value an attribute.
        assert_eq!(classify(RT, "urn:example:acme", &object, &[]), Some(whole("urn:example:acme")));
        assert_eq!(classify(RT, "urn:example:acme", &text, &[]), Some(attr("urn:example", "acme", None)));
        // `…:User:user` is an attribute; `user` in lower case names no type.
        assert_eq!(classify(RT, &format!("{CUSTOM}:User"), &text, &[]), Some(attr(CUSTOM, "User", None)));
        assert_eq!(classify(RT, "urn:x:2.0:user", &text, &[]), Some(attr("urn:x:2.0", "user", None)));
        // Names no attribute can have are nothing: bad syntax, `schemas`, no URN.
        assert_eq!(classify(RT, &format!("{CUSTOM}:1st"), &text, &[]), None);
        assert_eq!(classify(RT, &format!("{CUSTOM}:schemas"), &text, &[]), None);
        assert_eq!(classify(RT, "favouriteColour", &text, &[]), None);
    }

    #[test]
    fn paths_are_read_in_the_same_order_and_value_filters_refused() {
        let key = |p: &str, value: Option<&Value>, held: &[String]| path_key(RT, &parse_path(p).unwrap(), value, held);
        let object = json!({"a": 1});
        let text = json!("x");
        assert_eq!(key(CUSTOM, Some(&object), &[]).unwrap(), Some(whole(CUSTOM)));
        assert_eq!(key(&format!("{CUSTOM}:role"), Some(&text), &[]).unwrap(), Some(attr(CUSTOM, "role", None)));
        assert_eq!(key(&format!("{CUSTOM}:address"), Some(&object), &[]).unwrap(), Some(attr(CUSTOM, "address", None)));
        // Not named by a type: an object (or a removal) is the whole extension, a value an attribute.
        assert_eq!(key("urn:example:acme", Some(&object), &[]).unwrap(), Some(whole("urn:example:acme")));
        assert_eq!(key("urn:example:acme", None, &[]).unwrap(), Some(whole("urn:example:acme")));
        assert_eq!(key("urn:example:acme", Some(&text), &[]).unwrap(), Some(attr("urn:example", "acme", None)));
        // Held: whole, or an attribute of it.
        let held = ["urn:example:acme".to_owned()];
        assert_eq!(key("urn:example:acme", Some(&text), &held).unwrap(), Some(whole("urn:example:acme")));
        assert_eq!(
            key("urn:example:acme:tier", Some(&object), &held).unwrap(),
            Some(attr("urn:example:acme", "tier", None))
        );
        let err = key(&format!("{CUSTOM}:roles[value eq \"a\"]"), None, &[]).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert!(err.detail.starts_with(&format!("a value filter cannot select values of \"{CUSTOM}:roles\"")));
        assert_eq!(key(&format!("{ENTERPRISE_USER_SCHEMA}:department"), Some(&text), &[]).unwrap(), None);
        assert_eq!(key(ENTERPRISE_USER_SCHEMA, Some(&object), &[]).unwrap(), None);
        assert_eq!(key(&format!("{CUSTOM}:schemas"), Some(&text), &[]).unwrap(), None);
        assert_eq!(key("title", Some(&text), &[]).unwrap(), None);
        assert_eq!(key(r#"emails[type eq "work"]"#, None, &[]).unwrap(), None);
    }

    fn written(ops: &[(CustomKey, Value, Mode)]) -> Result<Map<String, Value>, ScimError> {
        let mut root = Map::new();
        for (key, value, mode) in ops {
            write(RT, &mut root, key, value.clone(), *mode)?;
        }
        Ok(root)
    }

    #[test]
    fn add_appends_new_elements_and_merges_objects_replace_sets() {
        let roles = attr(CUSTOM, "roles", None);
        let mut root = written(&[
            (roles.clone(), json!(["a"]), Mode::Add),
            (roles.clone(), json!(["a", "b", {"x": 1}]), Mode::Add),
            (roles.clone(), json!({"x": 1}), Mode::Add),
            (roles.clone(), json!("c"), Mode::Add),
            (attr(CUSTOM, "Address", Some("city")), json!("Oslo"), Mode::Replace),
            (attr(CUSTOM, "address", None), json!({"zip": "0150"}), Mode::Add),
            (attr(CUSTOM, "tier", None), json!(2), Mode::Add),
            (attr(CUSTOM, "tier", None), json!(null), Mode::Add),
        ])
        .unwrap();
        assert_eq!(
            Value::Object(root.clone()),
            json!({CUSTOM: {"roles": ["a", "b", {"x": 1}, "c"], "Address": {"city": "Oslo", "zip": "0150"}, "tier": 2}})
        );
        write(RT, &mut root, &roles, json!("d"), Mode::Replace).unwrap();
        write(RT, &mut root, &attr(CUSTOM, "ADDRESS", None), json!(null), Mode::Replace).unwrap();
        write(RT, &mut root, &attr(CUSTOM, "tier", None), json!(""), Mode::Replace).unwrap();
        assert_eq!(Value::Object(root.clone()), json!({CUSTOM: {"roles": "d"}}));
        let err = write(RT, &mut root, &whole(CUSTOM), json!(3), Mode::Add).unwrap_err();
        assert_eq!(err.detail, format!("{CUSTOM} must be an object"));
        // A sub-attribute of a value that is not an object is refused, the value kept.
        let err =
            write(RT, &mut root, &attr(CUSTOM, "roles", Some("primary")), json!(true), Mode::Replace).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidValue"));
        assert!(err.detail.contains("roles holds \"d\", not an object"), "{}", err.detail);
        assert_eq!(Value::Object(root), json!({CUSTOM: {"roles": "d"}}));
    }

    #[test]
    fn remove_takes_values_out_of_arrays_or_the_attribute_whole() {
        let mut root = json!({CUSTOM: {"roles": ["a", "b", "c"], "tier": 2, "site": {"code": "x", "floor": 3}}})
            .as_object()
            .unwrap()
            .clone();
        remove(&mut root, &attr(CUSTOM, "ROLES", None), Some(json!(["a", "c"])));
        remove(&mut root, &attr(CUSTOM, "tier", None), Some(json!(5)));
        remove(&mut root, &attr(CUSTOM, "site", Some("Code")), None);
        assert_eq!(Value::Object(root.clone()), json!({CUSTOM: {"roles": ["b"], "site": {"floor": 3}}}));
        remove(&mut root, &attr(CUSTOM, "roles", None), Some(json!("b")));
        remove(&mut root, &attr(CUSTOM, "site", None), None);
        assert!(root.is_empty(), "an emptied extension goes: {root:?}");
        root.insert(CUSTOM.to_lowercase(), json!({"a": 1}));
        remove(&mut root, &whole(CUSTOM), None);
        assert!(root.is_empty());
    }

    #[test]
    fn a_resource_keeps_at_most_64_kib_and_200_custom_attributes() {
        let blob = attr(CUSTOM, "blob", None);
        let mut root = written(&[(blob.clone(), json!("x".repeat(MAX_CUSTOM_BYTES - 200)), Mode::Replace)]).unwrap();
        let err = write(RT, &mut root, &attr(CUSTOM, "more", None), json!("y".repeat(300)), Mode::Replace).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidValue"));
        assert!(err.detail.ends_with("at most 65536 are kept per resource"), "{}", err.detail);
        // A value over the limit is refused before it is read: an add of a million elements
        // (whose duplicate check would otherwise compare each with each).
        let huge = Value::Array((0..1_000_000).map(Value::from).collect());
        let err = written(&[(attr(CUSTOM, "roles", None), huge, Mode::Add)]).unwrap_err();
        assert!(err.detail.starts_with("custom extension attributes take 6888891 bytes"), "{}", err.detail);
        // Names: one object of too many, or too many written one by one.
        let many: Map<String, Value> = (0..=MAX_CUSTOM_ATTRIBUTES).map(|i| (format!("a{i}"), json!(1))).collect();
        let err = written(&[(whole(CUSTOM), Value::Object(many), Mode::Replace)]).unwrap_err();
        assert_eq!(
            err.detail,
            format!("{CUSTOM} names 201 attributes; at most 200 custom extension attributes are kept per resource")
        );
        let one_by_one: Vec<(CustomKey, Value, Mode)> = (0..=MAX_CUSTOM_ATTRIBUTES)
            .map(|i| (attr(CUSTOM, &format!("a{i}"), None), json!(1), Mode::Replace))
            .collect();
        let err = written(&one_by_one).unwrap_err();
        assert!(err.detail.starts_with("the custom extensions hold 201 attributes"), "{}", err.detail);
        assert!(written(&one_by_one[..MAX_CUSTOM_ATTRIBUTES]).is_ok());
    }
}
