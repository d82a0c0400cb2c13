//! A stored resource's default answer written straight from its stored text.
//!
//! With no `attributes`/`excludedAttributes`, a SCIM answer is the stored
//! document plus what the server adds (`id`, `meta`, a user's `groups`, a
//! group's `members`), run through [`project`](super::project). Building
//! that as a `Value` parses the whole stored text into a tree, moves it
//! through the projection and writes it out again: about half of a `userName
//! eq` lookup handler's instructions. A stored document comes from
//! [`normalize`](super::normalize), which already drops most of what the
//! projection would drop (`password`, `null`, empty arrays and objects,
//! `schemas` entries without data; not an empty string, which takes the
//! general path), so for it the projection usually changes nothing and the
//! answer is the stored text's members, copied as they are, with the
//! server's members put in their places.
//!
//! [`default_view`] checks that, member by member, against the same schema
//! rules `project` applies (without building the members), and gives up
//! (`None`) on anything `project` would change, so the caller takes the
//! general path. Its output is byte for byte what
//! `to_text(&project(document_with_server_members, rt, None, None)?)` writes:
//! `serde_json::Map` keeps keys in byte order, the stored text is
//! `serde_json`'s compact writing of a `Map`, and the members here are
//! written in that order. The order of the top level and of an extension is
//! checked; deeper values are copied as stored, so byte identity holds
//! because every stored resource text is `to_text` output (the only writers,
//! `tandem_store::scim::{users, groups}`, store it that way, in a `TEXT`
//! column on both databases). No crate does this: `serde_json`'s `RawValue`
//! provides the uncopied members, the rest is this file.

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;
use serde_json::Value;

use crate::schema::{resolve, AttributeDef, ResourceType, Returned};

/// Whether a JSON value counts as present, read without building it
/// (`crate::json::is_present` on a `Value`): not `null`, not `""`, and an
/// array or object only if something in it is present.
struct Presence(bool);

impl<'de> Deserialize<'de> for Presence {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(PresenceVisitor)
    }
}

struct PresenceVisitor;

impl<'de> Visitor<'de> for PresenceVisitor {
    type Value = Presence;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, _: bool) -> Result<Presence, E> {
        Ok(Presence(true))
    }
    fn visit_i64<E>(self, _: i64) -> Result<Presence, E> {
        Ok(Presence(true))
    }
    fn visit_u64<E>(self, _: u64) -> Result<Presence, E> {
        Ok(Presence(true))
    }
    fn visit_f64<E>(self, _: f64) -> Result<Presence, E> {
        Ok(Presence(true))
    }
    fn visit_str<E>(self, s: &str) -> Result<Presence, E> {
        Ok(Presence(!s.is_empty()))
    }
    fn visit_unit<E>(self) -> Result<Presence, E> {
        Ok(Presence(false))
    }
    fn visit_none<E>(self) -> Result<Presence, E> {
        Ok(Presence(false))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Presence, A::Error> {
        let mut any = false;
        while let Some(Presence(p)) = seq.next_element()? {
            any |= p;
        }
        Ok(Presence(any))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Presence, A::Error> {
        let mut any = false;
        while let Some((IgnoredAny, Presence(p))) = map.next_entry()? {
            any |= p;
        }
        Ok(Presence(any))
    }
}

fn present(raw: &RawValue) -> bool {
    let text = raw.get();
    match text.as_bytes().first() {
        // A string literal longer than `""` holds at least one character.
        Some(b'"') => text.len() > 2,
        Some(b't' | b'f' | b'-' | b'0'..=b'9') => true,
        Some(b'n') => false,
        _ => serde_json::from_str::<Presence>(text).is_ok_and(|Presence(p)| p),
    }
}

/// Whether `project` with no attribute lists keeps a member as it is.
fn kept_whole(def: Option<&AttributeDef>, raw: &RawValue) -> bool {
    match def.map_or(Returned::Default, |d| d.returned) {
        Returned::Never | Returned::Request => false,
        Returned::Always => true,
        Returned::Default => present(raw),
    }
}

/// The members of a JSON object, uncopied, in the order of the text.
struct Members<'a>(Vec<(&'a str, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'de>, A::Error> {
                let mut out = Vec::with_capacity(map.size_hint().unwrap_or(12));
                while let Some(entry) = map.next_entry()? {
                    out.push(entry);
                }
                Ok(Members(out))
            }
        }
        d.deserialize_map(V)
    }
}

/// The members of a JSON object, uncopied. `None` when the text is not an
/// object, a key has an escape (it cannot be borrowed; stored attribute
/// names never have one), or the keys are not in strictly increasing byte
/// order, as `serde_json` writes a `Map` (so no key repeats either).
fn members(text: &str) -> Option<Vec<(&str, &RawValue)>> {
    let Members(list) = serde_json::from_str(text).ok()?;
    list.windows(2).all(|w| w[0].0 < w[1].0).then_some(list)
}

/// The default answer for a stored resource: its stored text's members with
/// `added` (the server's members: key and JSON text, e.g. `("id", "\"2819c2\"")`)
/// put in, written as `project(…, None, None)` would write it. `None` when
/// the projection would change a stored member, or the stored text holds one
/// of the added keys in any spelling: the caller then builds the answer as a
/// `Value`.
pub fn default_view(rt: ResourceType, stored: &str, added: &[(&str, &str)]) -> Option<String> {
    let top = members(stored)?;
    for (key, raw) in &top {
        if added.iter().any(|(a, _)| a.eq_ignore_ascii_case(key)) {
            return None;
        }
        if key.eq_ignore_ascii_case("schemas") {
            // `project` prunes extension URNs that name no member it keeps.
            let urns: Vec<&str> = serde_json::from_str(raw.get()).ok()?;
            let pruned = urns
                .iter()
                .any(|urn| !rt.is_core_urn(urn) && !top.iter().any(|(k, _)| k.eq_ignore_ascii_case(urn) && *k != *key));
            if *key != "schemas" || pruned {
                return None;
            }
        } else if let Some((name, ext)) = super::project::extension_of(rt, key) {
            // `project` writes the extension under that name and keeps
            // only its members that are kept; an empty one goes.
            let inner = members(raw.get())?;
            let kept = |(n, v): &(&str, &RawValue)| kept_whole(ext.and_then(|e| e.attribute(n)), v);
            if *key != name || inner.is_empty() || !inner.iter().all(kept) {
                return None;
            }
        } else if !kept_whole(resolve(rt, None, key, None).map(|found| found.attr), raw) {
            return None;
        }
    }
    let mut out: Vec<(&str, &str)> = top.iter().map(|(k, v)| (*k, v.get())).collect();
    out.extend_from_slice(added);
    out.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let size = out.iter().map(|(k, v)| k.len() + v.len() + 4).sum::<usize>() + 2;
    let mut text = String::with_capacity(size);
    text.push('{');
    for (i, (key, value)) in out.iter().enumerate() {
        if i > 0 {
            text.push(',');
        }
        // Borrowed keys have no escapes, and the added keys are plain names.
        text.push('"');
        text.push_str(key);
        text.push_str("\":");
        text.push_str(value);
    }
    text.push('}');
    Some(text)
}

/// A new resource's stored text and its answer with `added` members (as in
/// [`default_view`]), written in one pass over the document: exactly
/// `to_text(doc)` and `to_text(doc with added)`. A create answers with
/// the document it stores; writing it twice (and building the answer's
/// `id` and `meta` as values first) was ~7 % of a create. `None` when `doc`
/// is not an object or already holds one of the added keys.
pub fn write_pair(doc: &Value, added: &[(&str, &str)]) -> Option<(String, String)> {
    let Value::Object(map) = doc else { return None };
    if added.iter().any(|(k, _)| map.contains_key(*k)) {
        return None;
    }
    let mut extra: Vec<&(&str, &str)> = added.iter().collect();
    extra.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut extra = extra.into_iter().peekable();
    let mut stored: Vec<u8> = Vec::with_capacity(512);
    let mut answer: Vec<u8> = Vec::with_capacity(768);
    let put_added = |answer: &mut Vec<u8>, (key, value): &(&str, &str)| {
        if answer.len() > 1 {
            answer.push(b',');
        }
        answer.push(b'"');
        answer.extend_from_slice(key.as_bytes());
        answer.extend_from_slice(b"\":");
        answer.extend_from_slice(value.as_bytes());
    };
    stored.push(b'{');
    answer.push(b'{');
    for (key, value) in map {
        while let Some(a) = extra.next_if(|a| a.0 < key.as_str()) {
            put_added(&mut answer, a);
        }
        if stored.len() > 1 {
            stored.push(b',');
        }
        let start = stored.len();
        serde_json::to_writer(&mut stored, key).ok()?;
        stored.push(b':');
        serde_json::to_writer(&mut stored, value).ok()?;
        if answer.len() > 1 {
            answer.push(b',');
        }
        answer.extend_from_slice(&stored[start..]);
    }
    for a in extra {
        put_added(&mut answer, a);
    }
    stored.push(b'}');
    answer.push(b'}');
    Some((String::from_utf8(stored).ok()?, String::from_utf8(answer).ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::to_text;
    use crate::resource::{normalize, project};
    use crate::schema::ENTERPRISE_USER_SCHEMA;
    use serde_json::json;

    /// What the general path answers: the document with the server's members, projected.
    fn general(rt: ResourceType, stored: &str, added: &[(&str, &str)]) -> String {
        let mut doc: Value = serde_json::from_str(stored).unwrap();
        for (k, v) in added {
            doc.as_object_mut().unwrap().insert((*k).to_owned(), serde_json::from_str(v).unwrap());
        }
        to_text(&project(doc, rt, None, None).unwrap())
    }

    const ADDED: &[(&str, &str)] = &[
        ("id", "\"2819c223-7f76-453a-919d-413861904646\""),
        (
            "meta",
            r#"{"created":"2026-11-23T05:00:00Z","lastModified":"2026-11-23T05:00:00Z","location":"https://sso.example.com/scim/v2/c1/Users/2819c223","resourceType":"User","version":"W/\"1\""}"#,
        ),
        ("groups", r#"[{"$ref":"https://x/Groups/g1","display":"Ops","type":"direct","value":"g1"}]"#),
    ];

    #[test]
    fn normalized_users_are_written_as_the_general_path_writes_them() {
        let inputs = [
            json!({"userName": "bjensen@example.com"}),
            json!({"userName": "Ünïcödé \"quoted\" \\ back", "active": true, "externalId": "e-1"}),
            json!({"userName": "a", "name": {"givenName": "Barbara", "familyName": "Jensen", "formatted": "Ms. Barbara J Jensen"},
                   "emails": [{"value": "b@example.com", "type": "work", "primary": true}, {"value": "b2@example.com"}],
                   "phoneNumbers": [{"value": "+1 555", "type": "mobile"}], "displayName": "Babs", "password": "secret",
                   "title": "\u{1F600} line\nbreak\ttab", "addresses": [{"streetAddress": "1 Main", "country": "US"}]}),
            json!({"userName": "m", ENTERPRISE_USER_SCHEMA: {"department": "R&D", "manager": "boss-id", "employeeNumber": "42"},
                   "roles": [{"value": "admin", "primary": "True"}], "active": "False"}),
            json!({"userName": "n", "emails": [], ENTERPRISE_USER_SCHEMA: {"department": null}}),
            json!({"userName": "c", "urn:ietf:params:scim:schemas:extension:Custom:2.0:User": {"costCode": "x", "roles": ["a", {"b": null, "c": ""}], "e": {"f": null, "g": 1}},
                   "urn:example:acme:tier": 2, ENTERPRISE_USER_SCHEMA: {"department": "R&D"}}),
        ];
        for input in inputs {
            let stored = to_text(&normalize(ResourceType::User, input.clone()).unwrap());
            for added in [&ADDED[..2], ADDED] {
                let fast = default_view(ResourceType::User, &stored, added);
                assert_eq!(fast.as_deref(), Some(general(ResourceType::User, &stored, added).as_str()), "{input}");
            }
        }
        // normalize keeps an empty string, which the projection leaves out.
        let stored = to_text(&normalize(ResourceType::User, json!({"userName": "n", "nickName": ""})).unwrap());
        assert_eq!(default_view(ResourceType::User, &stored, ADDED), None);
    }

    #[test]
    fn a_new_resource_is_written_once_for_its_stored_text_and_its_answer() {
        let docs = [
            json!({"userName": "bjensen@example.com"}),
            json!({"userName": "Ünïcödé \"quoted\" \\ back", "active": true, "externalId": "e-1", "a": 1, "zz": [1.5, null]}),
            json!({"userName": "m", ENTERPRISE_USER_SCHEMA: {"department": "R&D", "manager": {"value": "boss"}},
                   "emails": [{"value": "b@example.com", "type": "work", "primary": true}], "title": "line\nbreak"}),
            json!({}),
        ];
        for doc in docs {
            for added in [&ADDED[..0], &ADDED[..2], ADDED] {
                let (stored, answer) = write_pair(&doc, added).unwrap();
                assert_eq!(stored, to_text(&doc));
                let mut full = doc.clone();
                for (k, v) in added {
                    full.as_object_mut().unwrap().insert((*k).to_owned(), serde_json::from_str(v).unwrap());
                }
                assert_eq!(answer, to_text(&full), "{doc}");
            }
        }
        assert_eq!(write_pair(&json!({"id": "x"}), ADDED), None);
        assert_eq!(write_pair(&json!([1]), ADDED), None);
    }

    #[test]
    fn groups_take_the_same_path() {
        let stored =
            to_text(&normalize(ResourceType::Group, json!({"displayName": "Ops", "externalId": "x"})).unwrap());
        let added = [("id", "\"g1\""), ("members", r#"[{"display":"B","type":"User","value":"u1"}]"#)];
        assert_eq!(
            default_view(ResourceType::Group, &stored, &added).unwrap(),
            general(ResourceType::Group, &stored, &added)
        );
    }

    #[test]
    fn what_the_projection_would_change_goes_to_the_general_path() {
        let user = ResourceType::User;
        let refused = [
            // Members `project` drops or rewrites.
            r#"{"password":"p","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}"#,
            r#"{"nickName":"","schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}"#,
            r#"{"emails":[{"value":""}],"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}"#,
            r#"{"name":{"givenName":null},"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}"#,
            // An extension listed in schemas without data, one in another spelling, an empty one.
            r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User","urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"],"userName":"a"}"#,
            r#"{"URN:IETF:PARAMS:SCIM:SCHEMAS:EXTENSION:ENTERPRISE:2.0:USER":{"department":"x"},"userName":"a"}"#,
            r#"{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{},"userName":"a"}"#,
            r#"{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":{"department":""},"userName":"a"}"#,
            r#"{"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User":"text","userName":"a"}"#,
            r#"{"Schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"a"}"#,
            // A member the server adds, in any spelling; keys out of order or repeated
            // (serde_json writes neither); an escaped key; not an object.
            r#"{"ID":"x","userName":"a"}"#,
            r#"{"userName":"a","active":true}"#,
            r#"{"active":true,"active":false,"userName":"a"}"#,
            r#"{"us\u0065rName":"a"}"#,
            r#"["userName"]"#,
            "not json",
        ];
        for stored in refused {
            assert_eq!(default_view(user, stored, ADDED), None, "{stored}");
        }
        // Each member-level case is one the general path indeed answers differently.
        for stored in &refused[..9] {
            let doc: Value = serde_json::from_str(stored).unwrap();
            assert_ne!(to_text(&project(doc.clone(), user, None, None).unwrap()), to_text(&doc), "{stored}");
        }
    }

    #[test]
    fn presence_is_read_as_is_present_reads_it() {
        for (text, expected) in [
            ("null", false),
            ("\"\"", false),
            ("[]", false),
            ("{}", false),
            ("[null,\"\",{\"a\":[]}]", false),
            ("{\"a\":{\"b\":\"\"}}", false),
            ("0", true),
            ("false", true),
            ("\"x\"", true),
            ("\"\\u0000\"", true),
            ("-0.5", true),
            ("true", true),
            ("[null,1]", true),
            ("{\"a\":null,\"b\":{\"c\":true}}", true),
        ] {
            let raw: Box<RawValue> = serde_json::from_str(text).unwrap();
            assert_eq!(present(&raw), expected, "{text}");
            assert_eq!(crate::json::is_present(&serde_json::from_str(text).unwrap()), expected, "{text}");
        }
    }
}
