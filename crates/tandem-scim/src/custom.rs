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
//! could be either (an attribute `User` of `urn:…:2.0`); it is a whole
//! extension when its value is an object and the URN is listed in the
//! body's `schemas`, already held by the resource, or ends in the resource
//! type's name (`:User`, `:Group`), as the extension URNs IdPs send do.

use serde_json::{Map, Value};

use crate::error::ScimError;
use crate::filter::attr_path::is_attr_name;
use crate::json::{is_present, to_text};
use crate::patch::edit::Mode;
use crate::path::PatchPath;
use crate::schema::{ResourceType, ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA};

/// Most bytes of custom extension data one resource keeps: its URNs and
/// the JSON text of their values. An IdP sends a few attributes; the
/// limit keeps a resource's stored document, which every read of it
/// parses or copies, from growing to the size of a request body.
pub const MAX_CUSTOM_BYTES: usize = 64 * 1024;

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
/// bytes, and not a schema SCIM or Tandem defines (the core schemas, SCIM's
/// messages, the enterprise extension) or a prefix of one.
pub fn is_custom_urn(rt: ResourceType, urn: &str) -> bool {
    const DEFINED: [&str; 3] = [USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA];
    let has_prefix = urn.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("urn:"));
    let reserved = |lower: &str| {
        lower.starts_with("urn:ietf:params:scim:schemas:core:")
            || lower.starts_with("urn:ietf:params:scim:api:")
            || DEFINED.iter().any(|d| {
                let d = d.to_ascii_lowercase();
                d == lower || d.starts_with(&format!("{lower}:"))
            })
    };
    has_prefix
        && urn.len() > 4
        && urn.len() <= MAX_URN_BYTES
        && urn.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._~%!$&'()*+=:@/".contains(&b))
        && !urn.ends_with(':')
        && !reserved(&urn.to_ascii_lowercase())
        && rt.extension(urn).is_none()
}

fn ends_in_type(rt: ResourceType, urn: &str) -> bool {
    urn.rsplit(':').next().is_some_and(|last| last.eq_ignore_ascii_case(rt.name()))
}

/// `attr` or `attr.sub`, each an RFC 7643 attribute name.
fn split_name(name: &str) -> Option<(String, Option<String>)> {
    let mut parts = name.split('.');
    let attr = parts.next()?;
    let sub = parts.next();
    if parts.next().is_some() || !is_attr_name(attr) || sub.is_some_and(|s| !is_attr_name(s)) {
        return None;
    }
    Some((attr.to_owned(), sub.map(str::to_owned)))
}

/// What a key of a body or of a path-less PATCH value that names nothing
/// Tandem defines names under a custom extension, if anything. `declared`:
/// the URNs the body lists in `schemas`, or the resource holds.
pub(crate) fn classify(rt: ResourceType, key: &str, declared: &[String]) -> Option<CustomKey> {
    if is_custom_urn(rt, key) && (declared.iter().any(|d| d.eq_ignore_ascii_case(key)) || ends_in_type(rt, key)) {
        // A value other than an object is refused by `write`, as for the enterprise extension.
        return Some(CustomKey::Schema(key.to_owned()));
    }
    let (urn, name) = key.rsplit_once(':')?;
    let (attr, sub) = split_name(name)?;
    is_custom_urn(rt, urn).then(|| CustomKey::Attr { urn: urn.to_owned(), attr, sub })
}

/// What a PATCH path names under a custom extension: the whole extension
/// when the path is a URN the resource holds, or ends in the resource
/// type's name; else an attribute. `None` for anything else, a value
/// filter on a custom attribute included: without a schema there is
/// nothing to compare its values by, so such a path is ignored as unknown.
pub(crate) fn path_key(rt: ResourceType, path: &PatchPath, held: &Map<String, Value>) -> Option<CustomKey> {
    let urn = path.attr.urn.as_deref()?;
    if path.filter.is_some() {
        return None;
    }
    let full = format!("{urn}:{}", path.attr.attr);
    if path.attr.sub_attr.is_none()
        && is_custom_urn(rt, &full)
        && (held.keys().any(|k| k.eq_ignore_ascii_case(&full)) || ends_in_type(rt, &full))
    {
        return Some(CustomKey::Schema(full));
    }
    is_custom_urn(rt, urn).then(|| CustomKey::Attr {
        urn: urn.to_owned(),
        attr: path.attr.attr.clone(),
        sub: path.attr.sub_attr.clone(),
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
            for item in added {
                if !items.contains(&item) {
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
/// have are skipped. An absent value (`null`, empty) removes.
pub(crate) fn write(root: &mut Map<String, Value>, key: &CustomKey, value: Value, mode: Mode) -> Result<(), ScimError> {
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
                    write(root, &CustomKey::Attr { urn: urn.clone(), attr, sub }, value, mode)?;
                }
            }
        }
        CustomKey::Attr { urn, attr, sub } => with_extension(root, urn, |ext| match sub {
            None => {
                let name = spelling(ext, attr);
                let old = ext.remove(&name);
                set(ext, name, combine(old, value, mode));
            }
            Some(sub) => {
                let name = spelling(ext, attr);
                let mut object = match ext.remove(&name) {
                    Some(Value::Object(map)) => map,
                    _ => Map::new(),
                };
                let sub_name = spelling(&object, sub);
                let old = object.remove(&sub_name);
                set(&mut object, sub_name, combine(old, value, mode));
                set(ext, name, Value::Object(object));
            }
        }),
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
            let gone: Vec<&Value> = match given {
                Value::Array(list) => list.iter().collect(),
                one => vec![one],
            };
            set(map, name, Value::Array(items.into_iter().filter(|i| !gone.contains(&i)).collect()));
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
/// than [`MAX_CUSTOM_BYTES`].
pub(crate) fn check_size(rt: ResourceType, resource: &Map<String, Value>) -> Result<(), ScimError> {
    let bytes: usize =
        resource.iter().filter(|(k, _)| is_custom_urn(rt, k)).map(|(k, v)| k.len() + to_text(v).len()).sum();
    if bytes > MAX_CUSTOM_BYTES {
        return Err(ScimError::invalid_value(format!(
            "custom extension attributes take {bytes} bytes of JSON; at most {MAX_CUSTOM_BYTES} are kept per resource"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::parse_path;
    use serde_json::json;

    const CUSTOM: &str = "urn:ietf:params:scim:schemas:extension:CustomExtensionName:2.0:User";

    fn attr(urn: &str, attr: &str, sub: Option<&str>) -> CustomKey {
        CustomKey::Attr { urn: urn.to_owned(), attr: attr.to_owned(), sub: sub.map(str::to_owned) }
    }

    #[test]
    fn defined_schemas_and_their_prefixes_are_not_custom() {
        let rt = ResourceType::User;
        assert!(is_custom_urn(rt, CUSTOM));
        assert!(is_custom_urn(rt, "urn:example:acme"));
        for defined in [
            USER_SCHEMA,
            ENTERPRISE_USER_SCHEMA,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0",
            "URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER",
            "urn:ietf:params:scim:schemas:core:2.0",
            "urn:ietf:params:scim:api:messages:2.0:PatchOp",
            "urn:",
            "urn:x:",
            "urn:has space",
            "urn:a,b",
            "not-a-urn:x",
        ] {
            assert!(!is_custom_urn(rt, defined), "{defined}");
        }
        assert!(!is_custom_urn(rt, &format!("urn:{}", "x".repeat(300))));
        // The enterprise extension is the User's; a Group does not keep it either.
        assert!(!is_custom_urn(ResourceType::Group, ENTERPRISE_USER_SCHEMA));
    }

    #[test]
    fn a_urn_key_is_a_whole_extension_when_declared_or_named_for_the_type_else_an_attribute() {
        let rt = ResourceType::User;
        assert_eq!(classify(rt, CUSTOM, &[]), Some(CustomKey::Schema(CUSTOM.to_owned())));
        // Declared in `schemas`: whole, whatever its last segment.
        assert_eq!(
            classify(rt, "urn:example:acme", &["URN:EXAMPLE:ACME".to_owned()]),
            Some(CustomKey::Schema("urn:example:acme".to_owned()))
        );
        // Not declared: an attribute of the URN before its last colon.
        assert_eq!(classify(rt, "urn:example:acme", &[]), Some(attr("urn:example", "acme", None)));
        assert_eq!(
            classify(rt, &format!("{CUSTOM}:costCenter.code"), &[]),
            Some(attr(CUSTOM, "costCenter", Some("code")))
        );
        // A bad attribute name is nothing.
        assert_eq!(classify(rt, &format!("{CUSTOM}:1st"), &[]), None);
        assert_eq!(classify(rt, "favouriteColour", &[]), None);
    }

    #[test]
    fn paths_name_whole_extensions_or_their_attributes_but_never_filter_them() {
        let rt = ResourceType::User;
        let key = |p: &str, held: &Map<String, Value>| path_key(rt, &parse_path(p).unwrap(), held);
        let none = Map::new();
        assert_eq!(key(CUSTOM, &none), Some(CustomKey::Schema(CUSTOM.to_owned())));
        assert_eq!(key(&format!("{CUSTOM}:role"), &none), Some(attr(CUSTOM, "role", None)));
        assert_eq!(key("urn:example:acme", &none), Some(attr("urn:example", "acme", None)));
        let held = json!({"urn:example:acme": {"a": 1}}).as_object().unwrap().clone();
        assert_eq!(key("urn:example:acme", &held), Some(CustomKey::Schema("urn:example:acme".to_owned())));
        assert_eq!(key(&format!("{CUSTOM}:roles[value eq \"a\"]"), &none), None);
        assert_eq!(key(&format!("{ENTERPRISE_USER_SCHEMA}:department"), &none), None);
        assert_eq!(key(ENTERPRISE_USER_SCHEMA, &none), None);
        assert_eq!(key("title", &none), None);
    }

    #[test]
    fn add_appends_new_elements_and_merges_objects_replace_sets() {
        let mut root = Map::new();
        let roles = attr(CUSTOM, "roles", None);
        write(&mut root, &roles, json!(["a"]), Mode::Add).unwrap();
        write(&mut root, &roles, json!(["a", "b"]), Mode::Add).unwrap();
        write(&mut root, &roles, json!("c"), Mode::Add).unwrap();
        write(&mut root, &attr(CUSTOM, "Address", Some("city")), json!("Oslo"), Mode::Replace).unwrap();
        write(&mut root, &attr(CUSTOM, "address", None), json!({"zip": "0150"}), Mode::Add).unwrap();
        assert_eq!(
            Value::Object(root.clone()),
            json!({CUSTOM: {"roles": ["a", "b", "c"], "Address": {"city": "Oslo", "zip": "0150"}}})
        );
        write(&mut root, &roles, json!("d"), Mode::Replace).unwrap();
        write(&mut root, &attr(CUSTOM, "ADDRESS", None), json!(null), Mode::Replace).unwrap();
        assert_eq!(Value::Object(root.clone()), json!({CUSTOM: {"roles": "d"}}));
        let err = write(&mut root, &CustomKey::Schema(CUSTOM.to_owned()), json!(3), Mode::Add).unwrap_err();
        assert_eq!(err.detail, format!("{CUSTOM} must be an object"));
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
        remove(&mut root, &CustomKey::Schema(CUSTOM.to_owned()), None);
        assert!(root.is_empty());
    }

    #[test]
    fn a_resource_keeps_at_most_64_kib_of_custom_data() {
        let mut root = Map::new();
        write(&mut root, &attr(CUSTOM, "blob", None), json!("x".repeat(MAX_CUSTOM_BYTES - 200)), Mode::Replace)
            .unwrap();
        check_size(ResourceType::User, &root).unwrap();
        write(&mut root, &attr(CUSTOM, "more", None), json!("y".repeat(300)), Mode::Replace).unwrap();
        let err = check_size(ResourceType::User, &root).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidValue"));
        assert!(err.detail.ends_with("at most 65536 are kept per resource"), "{}", err.detail);
    }
}
