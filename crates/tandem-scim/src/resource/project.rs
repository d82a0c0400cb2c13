//! `attributes` / `excludedAttributes` projection of a resource (RFC 7644 §3.4.2.5, RFC 7643 §7 `returned`).

use serde_json::{Map, Value};

use crate::custom;
use crate::error::ScimError;
use crate::filter::attr_path::parse_attr_path;
use crate::json::is_present;
use crate::schema::{resolve, AttributeDef, ResourceType, Returned, SchemaDef};

/// One entry of an `attributes` or `excludedAttributes` list.
struct Selector {
    /// Extension URN the entry is under (a custom one as written); `None` for core and common
    /// attributes.
    container: Option<String>,
    /// `None` when the entry names a whole schema.
    attr: Option<String>,
    sub: Option<String>,
}

fn parse_list(rt: ResourceType, list: Option<&str>, param: &str) -> Result<Option<Vec<Selector>>, ScimError> {
    let Some(text) = list.filter(|t| !t.trim().is_empty()) else {
        return Ok(None);
    };
    let mut out = Vec::new();
    for item in text.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if rt.is_core_urn(item) {
            out.push(Selector { container: None, attr: None, sub: None });
            continue;
        }
        if let Some(ext) = rt.extension(item) {
            out.push(Selector { container: Some(ext.id.to_owned()), attr: None, sub: None });
            continue;
        }
        // A custom extension's URN can also read as an attribute of a
        // shorter URN (see `crate::custom`); the entry is taken both ways.
        let whole_custom = custom::is_custom_urn(rt, item);
        if whole_custom {
            out.push(Selector { container: Some(item.to_owned()), attr: None, sub: None });
        }
        let path = match parse_attr_path(item) {
            Ok(path) => path,
            Err(_) if whole_custom => continue,
            Err(msg) => return Err(ScimError::invalid_path(format!("{param}: {msg}"))),
        };
        let container = match path.urn.as_deref() {
            None => None,
            Some(urn) if rt.is_core_urn(urn) => None,
            Some(urn) => match rt.extension(urn) {
                Some(ext) => Some(ext.id.to_owned()),
                None if custom::is_custom_urn(rt, urn) => Some(urn.to_owned()),
                // An unknown schema selects nothing.
                None => continue,
            },
        };
        out.push(Selector { container, attr: Some(path.attr), sub: path.sub_attr });
    }
    Ok(Some(out))
}

fn same_container(selector: &Selector, container: Option<&str>) -> bool {
    match (selector.container.as_deref(), container) {
        (None, None) => true,
        (Some(a), Some(b)) => a.eq_ignore_ascii_case(b),
        _ => false,
    }
}

fn names_whole(list: &[Selector], container: Option<&str>, name: &str) -> bool {
    list.iter().any(|s| {
        same_container(s, container)
            && match &s.attr {
                None => true,
                Some(attr) => attr.eq_ignore_ascii_case(name) && s.sub.is_none(),
            }
    })
}

fn named_subs<'a>(list: &'a [Selector], container: Option<&str>, name: &str) -> Vec<&'a str> {
    list.iter()
        .filter(|s| same_container(s, container))
        .filter(|s| s.attr.as_deref().is_some_and(|a| a.eq_ignore_ascii_case(name)))
        .filter_map(|s| s.sub.as_deref())
        .collect()
}

/// Keeps only the sub-attributes for which `keep` holds, in an object or in each element of an array.
fn retain_subs(value: &mut Value, keep: &dyn Fn(&str) -> bool) {
    match value {
        Value::Object(map) => map.retain(|k, _| keep(k)),
        Value::Array(items) => {
            for item in items.iter_mut() {
                if let Value::Object(map) = item {
                    map.retain(|k, _| keep(k));
                }
            }
            items.retain(is_present);
        }
        _ => {}
    }
}

fn sub_always(def: Option<&AttributeDef>, sub: &str) -> bool {
    def.and_then(|d| d.sub_attribute(sub)).is_some_and(|s| s.returned == Returned::Always)
}

fn select(
    container: Option<&str>,
    def: Option<&AttributeDef>,
    name: &str,
    value: Value,
    include: Option<&[Selector]>,
    exclude: &[Selector],
) -> Option<Value> {
    match def.map_or(Returned::Default, |d| d.returned) {
        Returned::Never => return None,
        Returned::Always => return Some(value),
        Returned::Request if include.is_none() => return None,
        _ => {}
    }
    let mut out = value;
    if let Some(include) = include {
        if !names_whole(include, container, name) {
            let wanted = named_subs(include, container, name);
            if wanted.is_empty() {
                return None;
            }
            retain_subs(&mut out, &|k| wanted.iter().any(|w| w.eq_ignore_ascii_case(k)) || sub_always(def, k));
        }
    }
    if names_whole(exclude, container, name) {
        return None;
    }
    let unwanted = named_subs(exclude, container, name);
    if !unwanted.is_empty() {
        retain_subs(&mut out, &|k| !unwanted.iter().any(|u| u.eq_ignore_ascii_case(k)) || sub_always(def, k));
    }
    is_present(&out).then_some(out)
}

/// The extension a resource's key holds, under the name an answer gives
/// it: a known one by its schema's spelling, with its definition; a custom
/// one as held, without.
pub(crate) fn extension_of(rt: ResourceType, key: &str) -> Option<(String, Option<&'static SchemaDef>)> {
    match rt.extension(key) {
        Some(ext) => Some((ext.id.to_owned(), Some(ext))),
        None => custom::is_custom_urn(rt, key).then(|| (key.to_owned(), None)),
    }
}

/// Checks `attributes` and `excludedAttributes` as [`project`] reads them,
/// without a resource: a write whose answer is projected checks them before
/// it writes, so a malformed list refuses the request instead of failing an
/// answer whose change was already stored.
pub fn check_projection(rt: ResourceType, attributes: Option<&str>, excluded: Option<&str>) -> Result<(), ScimError> {
    parse_list(rt, attributes, "attributes")?;
    parse_list(rt, excluded, "excludedAttributes")?;
    Ok(())
}

/// Applies the RFC 7644 §3.4.2.5 `attributes` / `excludedAttributes` parameters (comma-separated,
/// case-insensitive, URN-qualified names and sub-attributes allowed) to a full stored resource
/// (with `id`, `meta` and `groups` filled in by the server), honouring each attribute's `returned`.
///
/// `returned: always` attributes (`id`) and `schemas` stay whatever is asked; `returned: never`
/// (`password`) never appears; `returned: request` only when named in `attributes`. `userName`,
/// Group `displayName` and `meta` are `returned: default` in RFC 7643 and so can be left out.
/// A schema URN in either list selects every attribute of that schema. `attributes` wins over
/// `excludedAttributes` only in that both are applied: first the selection, then the exclusion.
/// Malformed names are 400 `invalidPath` (`attributes: invalid attribute name …`); well-formed
/// but unknown names select nothing.
pub fn project(
    resource: Value,
    rt: ResourceType,
    attributes: Option<&str>,
    excluded: Option<&str>,
) -> Result<Value, ScimError> {
    let Value::Object(map) = resource else {
        return Err(ScimError::invalid_syntax("resource must be a JSON object"));
    };
    let include = parse_list(rt, attributes, "attributes")?;
    let exclude = parse_list(rt, excluded, "excludedAttributes")?.unwrap_or_default();
    let include = include.as_deref();
    let mut out = Map::new();
    for (key, value) in map {
        if key.eq_ignore_ascii_case("schemas") {
            out.insert(key, value);
        } else if let Some((name, ext)) = extension_of(rt, &key) {
            // An extension: a known one under its own spelling, with its
            // definitions; a custom one as held, its attributes returned by default.
            let mut kept = Map::new();
            if let Value::Object(attrs) = value {
                for (attr, inner) in attrs {
                    let def = ext.and_then(|e| e.attribute(&attr));
                    if let Some(v) = select(Some(&name), def, &attr, inner, include, &exclude) {
                        kept.insert(attr, v);
                    }
                }
            }
            if !kept.is_empty() {
                out.insert(name, Value::Object(kept));
            }
        } else {
            let def = resolve(rt, None, &key, None).map(|found| found.attr);
            if let Some(v) = select(None, def, &key, value, include, &exclude) {
                out.insert(key, v);
            }
        }
    }
    // Taken out while the kept keys are read, so they need not be copied.
    if let Some((key, mut schemas)) = out.remove_entry("schemas") {
        if let Value::Array(list) = &mut schemas {
            list.retain(|s| {
                s.as_str().is_none_or(|urn| rt.is_core_urn(urn) || out.keys().any(|k| k.eq_ignore_ascii_case(urn)))
            });
        }
        out.insert(key, schemas);
    }
    Ok(Value::Object(out))
}
