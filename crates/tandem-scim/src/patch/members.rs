//! A group PATCH that changes members as a set of member edits, so a store
//! can apply it to the members it names instead of to the whole list.
//!
//! Entra ID and Okta change a group's membership one PATCH at a time
//! (`add` of `members`, `remove` of `members` with a value array or with
//! `members[value eq "…"]`), also on groups of tens of thousands of members.
//! Applied to the group as a document ([`apply_patch`](super::apply_patch)),
//! each PATCH costs time in proportion to the group's size. [`MemberPatch`]
//! recognises the shapes whose effect on a member depends only on that
//! member: it gives the values a PATCH touches, and, from their stored state,
//! their state afterwards — the same result `apply_patch` gives on the whole
//! document, which the tests check. Anything else (a `replace` of `members`,
//! a remove of them all, a path-less value naming members, a member with a
//! `type` or an upper-case id) is left to `apply_patch`: [`MemberPatch::plan`]
//! answers `None`.

use std::collections::BTreeMap;

use serde_json::Value;

use super::parse::{PatchOpKind, PatchOperation};
use crate::coerce::coerce_attr;
use crate::filter::{CompValue, CompareOp, Filter};
use crate::path::PatchPath;
use crate::schema::{ResourceType, GROUP_SCHEMA};

/// A stored or resulting member: its id and the display text a client gave.
pub type MemberState = (String, Option<String>);

#[derive(Clone, Debug, PartialEq)]
enum Step {
    /// Members to add, in order, each with the display text sent (if any).
    Add(Vec<MemberState>),
    /// Member ids to remove, lower-cased.
    Remove(Vec<String>),
}

/// A group PATCH split into member edits and the operations on everything else.
#[derive(Clone, Debug, PartialEq)]
pub struct MemberPatch {
    steps: Vec<Step>,
    /// The operations that do not touch `members`, in their order.
    pub rest: Vec<PatchOperation>,
}

impl MemberPatch {
    /// Splits `ops` (a group PATCH), or `None` when an operation's effect on
    /// the members needs the whole list, or would be refused (the whole-document
    /// path then gives the error).
    pub fn plan(ops: &[PatchOperation]) -> Option<MemberPatch> {
        let mut plan = MemberPatch { steps: Vec::new(), rest: Vec::new() };
        for op in ops {
            match &op.path {
                // The Group URN itself names the whole document, read like a path-less value.
                Some(path) if !names_group(path) && names_members(path)? => plan.steps.push(member_step(op, path)?),
                Some(path) if !names_group(path) => plan.rest.push(op.clone()),
                _ => {
                    // A value whose keys might reach `members` (`members`,
                    // `members[…]`, the Group URN holding `members`) is the document's.
                    let reaches_members = op.value.as_ref().and_then(Value::as_object).is_none_or(|o| {
                        o.iter().any(|(k, v)| {
                            k.to_ascii_lowercase().contains("members")
                                || (k.eq_ignore_ascii_case(GROUP_SCHEMA) && v.is_object())
                        })
                    });
                    if reaches_members {
                        return None;
                    }
                    plan.rest.push(op.clone());
                }
            }
        }
        Some(plan)
    }

    /// Whether the PATCH edits members at all.
    pub fn edits_members(&self) -> bool {
        !self.steps.is_empty()
    }

    /// The member ids the PATCH touches, sorted, without repeats.
    pub fn touched(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .steps
            .iter()
            .flat_map(|s| match s {
                Step::Add(items) => items.iter().map(|(v, _)| v.clone()).collect::<Vec<_>>(),
                Step::Remove(ids) => ids.clone(),
            })
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// The touched members after the PATCH, sorted by id, given those of them
    /// that are stored (`stored`, with their display text). A member kept
    /// without a new display text keeps its stored one.
    pub fn members_after(&self, stored: &[MemberState]) -> Vec<MemberState> {
        let mut state: BTreeMap<String, Option<String>> = stored.iter().cloned().collect();
        for step in &self.steps {
            match step {
                Step::Add(items) => {
                    for (value, display) in items {
                        match state.get_mut(value) {
                            Some(current) => {
                                if display.is_some() {
                                    current.clone_from(display);
                                }
                            }
                            None => {
                                state.insert(value.clone(), display.clone());
                            }
                        }
                    }
                }
                Step::Remove(ids) => {
                    for id in ids {
                        state.remove(id);
                    }
                }
            }
        }
        state.into_iter().collect()
    }
}

/// Whether `path` names the Group's `members` (or a value of it): `Some(true)`;
/// `Some(false)` for any other attribute; `None` for a sub-attribute of
/// members (`members.display`), which only the whole list can answer.
fn names_members(path: &PatchPath) -> Option<bool> {
    let urn_ok = path.attr.urn.as_deref().is_none_or(|u| u.eq_ignore_ascii_case(GROUP_SCHEMA));
    if !path.attr.attr.eq_ignore_ascii_case("members") {
        // `urn:…:Group:members` parses with the attribute last; other URNs name no members.
        return Some(false);
    }
    if !urn_ok || path.sub_attr().is_some() {
        return None;
    }
    Some(true)
}

/// Whether `path` is the Group schema's URN itself (parsed as the URN
/// `urn:…:core:2.0` and the attribute `Group`).
fn names_group(path: &PatchPath) -> bool {
    path.filter.is_none()
        && path.attr.sub_attr.is_none()
        && path
            .attr
            .urn
            .as_deref()
            .is_some_and(|u| format!("{u}:{}", path.attr.attr).eq_ignore_ascii_case(GROUP_SCHEMA))
}

/// Member items as `add` or a `remove` value array gives them, through the
/// same coercion `apply_patch` uses; `None` unless each is `{value[, display]}`
/// with a non-empty string id.
fn member_items(value: &Value) -> Option<Vec<MemberState>> {
    let def = ResourceType::Group.core_schema().attribute("members")?;
    let coerced = coerce_attr(def, value.clone(), "members").ok()?;
    let items = match coerced {
        Some(Value::Array(items)) => items,
        _ => return None,
    };
    items
        .into_iter()
        .map(|item| {
            let map = item.as_object()?;
            let id = map.get("value")?.as_str().filter(|v| !v.is_empty())?.to_string();
            let display = match map.get("display") {
                None => None,
                Some(Value::String(d)) => Some(d.clone()),
                Some(_) => return None,
            };
            map.keys().all(|k| k == "value" || k == "display").then_some((id, display))
        })
        .collect()
}

fn member_step(op: &PatchOperation, path: &PatchPath) -> Option<Step> {
    match (op.op, &path.filter) {
        (PatchOpKind::Add, None) => {
            let items = member_items(op.value.as_ref()?)?;
            // Ids are stored lower-case; another case would be matched
            // case-insensitively against members the group has.
            items.iter().all(|(v, _)| *v == v.to_lowercase()).then_some(Step::Add(items))
        }
        (PatchOpKind::Remove, None) => {
            // No value removes every member, and an empty one none: the whole list's business.
            let items = member_items(op.value.as_ref().filter(|v| !v.is_null())?)?;
            Some(Step::Remove(items.into_iter().map(|(v, _)| v.to_lowercase()).collect()))
        }
        (
            PatchOpKind::Remove,
            Some(Filter::Compare { path: attr, op: CompareOp::Eq, value: CompValue::String(id) }),
        ) if attr.urn.is_none() && attr.sub_attr.is_none() && attr.attr.eq_ignore_ascii_case("value") => {
            Some(Step::Remove(vec![id.to_lowercase()]))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::patch::{apply_patch, parse_patch};
    use crate::resource::normalize;
    use serde_json::json;

    fn ops(list: Value) -> Vec<PatchOperation> {
        parse_patch(&json!({"Operations": list}), 100).unwrap()
    }

    /// What the whole-document path makes of the members, as the store reads
    /// a document (first of each id, its display text), sorted by id.
    fn whole(stored: &[MemberState], ops: &[PatchOperation]) -> Vec<MemberState> {
        let members: Vec<Value> = stored
            .iter()
            .map(|(v, d)| match d {
                Some(d) => json!({"value": v, "display": d}),
                None => json!({"value": v}),
            })
            .collect();
        let mut doc = normalize(ResourceType::Group, json!({"displayName": "g", "members": members})).unwrap();
        apply_patch(&mut doc, ops, ResourceType::Group).unwrap();
        let mut seen = std::collections::HashSet::new();
        let mut out: Vec<MemberState> = doc["members"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .iter()
            .filter(|m| seen.insert(m["value"].as_str().unwrap().to_string()))
            .map(|m| (m["value"].as_str().unwrap().to_string(), m["display"].as_str().map(str::to_string)))
            .collect();
        out.sort();
        out
    }

    /// The member edits' result merged into the untouched stored members.
    fn planned(stored: &[MemberState], ops: &[PatchOperation]) -> Vec<MemberState> {
        let plan = MemberPatch::plan(ops).expect("a member patch");
        let touched = plan.touched();
        let (hit, kept): (Vec<MemberState>, Vec<MemberState>) =
            stored.iter().cloned().partition(|(v, _)| touched.contains(v));
        let mut out = plan.members_after(&hit);
        out.extend(kept);
        out.sort();
        out
    }

    fn m(v: &str, d: Option<&str>) -> MemberState {
        (v.to_string(), d.map(str::to_string))
    }

    #[test]
    fn member_edits_give_what_the_whole_document_gives() {
        let stored = vec![m("a", Some("A")), m("b", None), m("c", Some("C"))];
        let cases = [
            json!([{"op": "add", "path": "members", "value": [{"value": "d"}]}]),
            json!([{"op": "Add", "path": "members", "value": [{"value": "a"}, {"value": "e", "display": "E"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "a", "display": "A2"}, {"value": "b", "display": "B"}]}]),
            json!([{"op": "add", "path": "members", "value": {"value": "f"}}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "d", "display": "1"}, {"value": "d", "display": "2"}, {"value": "d"}]}]),
            json!([{"op": "Remove", "path": "members", "value": [{"value": "a"}, {"value": "zz"}]}]),
            json!([{"op": "remove", "path": "members", "value": [{"value": "B"}]}]),
            json!([{"op": "remove", "path": "members[value eq \"C\"]"}]),
            json!([{"op": "remove", "path": "members[Value eq \"a\"]"}]),
            json!([{"op": "remove", "path": "members[value eq \"a\"]"}, {"op": "add", "path": "members", "value": [{"value": "a"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "x", "display": "X"}]}, {"op": "remove", "path": "members", "value": [{"value": "x"}]}]),
            json!([{"op": "remove", "path": "members", "value": [{"value": "a"}]}, {"op": "add", "path": "members", "value": [{"value": "a", "display": "New"}]}]),
            json!([{"op": "replace", "path": "displayName", "value": "h"}, {"op": "add", "path": "members", "value": [{"value": "q"}]}]),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group:members", "value": [{"value": "u"}]}]),
        ];
        for case in cases {
            let ops = ops(case.clone());
            assert_eq!(planned(&stored, &ops), whole(&stored, &ops), "{case}");
        }
    }

    #[test]
    fn generated_member_edits_give_what_the_whole_document_gives() {
        // A small linear congruential generator: the same 2,000 cases every run.
        let mut seed: u64 = 0x5eed;
        let mut next = move |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        let ids = ["a", "b", "c", "d"];
        let displays = [None, Some("X"), Some("Y")];
        for _ in 0..2000 {
            let mut stored: Vec<MemberState> = Vec::new();
            for id in ids {
                if next(2) == 0 {
                    stored.push(m(id, displays[next(3) as usize]));
                }
            }
            let mut list = Vec::new();
            for _ in 0..=next(3) {
                let id = ids[next(4) as usize];
                let shown = if next(3) == 0 { id.to_uppercase() } else { id.to_string() };
                list.push(match next(3) {
                    0 => {
                        let mut items = Vec::new();
                        for _ in 0..=next(2) {
                            let id = ids[next(4) as usize];
                            items.push(match displays[next(3) as usize] {
                                Some(d) => json!({"value": id, "display": d}),
                                None => json!({"value": id}),
                            });
                        }
                        json!({"op": "add", "path": "members", "value": items})
                    }
                    1 => json!({"op": "remove", "path": "members", "value": [{"value": shown}]}),
                    _ => json!({"op": "remove", "path": format!("members[value eq \"{shown}\"]")}),
                });
            }
            let ops = ops(Value::Array(list.clone()));
            assert_eq!(planned(&stored, &ops), whole(&stored, &ops), "{stored:?} {list:?}");
        }
    }

    #[test]
    fn only_edits_that_need_no_other_member_are_planned() {
        for case in [
            json!([{"op": "replace", "path": "members", "value": [{"value": "a"}]}]),
            json!([{"op": "remove", "path": "members"}]),
            json!([{"op": "remove", "path": "members", "value": []}]),
            json!([{"op": "remove", "path": "members[display eq \"A\"]"}]),
            json!([{"op": "remove", "path": "members[value eq \"a\" or value eq \"b\"]"}]),
            json!([{"op": "replace", "path": "members[value eq \"a\"].display", "value": "x"}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "A"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": "a", "type": "User"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"display": "no id"}]}]),
            json!([{"op": "add", "path": "members", "value": [{"value": ""}]}]),
            json!([{"op": "add", "path": "members", "value": "not an object"}]),
            json!([{"op": "replace", "value": {"displayName": "h", "members": [{"value": "a"}]}}]),
            json!([{"op": "replace", "value": {"members[value eq \"a\"].display": "x"}}]),
            json!([{"op": "replace", "value": {"urn:ietf:params:scim:schemas:core:2.0:Group": {"displayName": "h"}}}]),
            json!([{"op": "add", "path": "urn:ietf:params:scim:schemas:core:2.0:Group", "value": {"members": [{"value": "a"}]}}]),
            json!([{"op": "replace", "path": "URN:ietf:params:scim:schemas:core:2.0:group", "value": {"members": []}}]),
        ] {
            assert_eq!(MemberPatch::plan(&ops(case.clone())), None, "{case}");
        }
    }

    /// A value under the Group URN that names no members is planned beside
    /// member edits, as a path-less one is.
    #[test]
    fn a_group_urn_path_naming_no_members_is_kept_for_the_document() {
        let plan = MemberPatch::plan(&ops(json!([
            {"op": "replace", "path": "urn:ietf:params:scim:schemas:core:2.0:Group", "value": {"displayName": "h"}},
            {"op": "add", "path": "members", "value": [{"value": "a"}]},
        ])))
        .unwrap();
        assert_eq!(plan.rest.len(), 1);
        assert_eq!(plan.touched(), ["a"]);
    }

    #[test]
    fn other_operations_are_kept_in_order_for_the_document() {
        let plan = MemberPatch::plan(&ops(json!([
            {"op": "replace", "value": {"id": "g1", "displayName": "Renamed"}},
            {"op": "add", "path": "members", "value": [{"value": "b"}, {"value": "a"}]},
            {"op": "replace", "path": "externalId", "value": "x"},
            {"op": "remove", "path": "members[value eq \"B\"]"},
        ])))
        .unwrap();
        assert_eq!(plan.rest.len(), 2);
        assert_eq!(plan.rest[1].path.as_ref().unwrap().attr.attr, "externalId");
        assert!(plan.edits_members());
        assert_eq!(plan.touched(), ["a", "b"]);
        assert_eq!(plan.members_after(&[]), [m("a", None)]);
        let renames_only =
            MemberPatch::plan(&ops(json!([{"op": "replace", "path": "displayName", "value": "x"}]))).unwrap();
        assert!(!renames_only.edits_members() && renames_only.touched().is_empty());
    }
}
