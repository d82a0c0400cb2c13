//! The core Group schema, `urn:ietf:params:scim:schemas:core:2.0:Group` (RFC 7643 §4.2, §8.7.1).

use super::model::{AttributeDef, Mutability, SchemaDef, Uniqueness};
use super::GROUP_SCHEMA;

const MEMBER_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value", "Identifier of the member of this Group.").mutability(Mutability::Immutable),
    AttributeDef::reference(
        "$ref",
        &["User", "Group"],
        "The URI corresponding to a SCIM resource that is a member of this Group.",
    )
    .mutability(Mutability::Immutable),
    AttributeDef::string("type", "A label indicating the type of resource, e.g. 'User' or 'Group'.")
        .canonical(&["User", "Group"])
        .mutability(Mutability::Immutable),
    AttributeDef::string("display", "A human-readable name for the member."),
];

const GROUP_ATTRS: [AttributeDef; 2] = [
    // RFC 7643 §4.2 prose makes displayName REQUIRED; the §8.7.1 listing says otherwise, the prose wins.
    // Unique per SCIM connection (case-insensitively), as the server enforces (409 uniqueness).
    AttributeDef::string("displayName", "A human-readable name for the Group.")
        .required()
        .uniqueness(Uniqueness::Server),
    AttributeDef::complex("members", &MEMBER_SUBS, "A list of members of the Group.").multi(),
];

/// The core Group schema.
pub static GROUP: SchemaDef =
    SchemaDef { id: GROUP_SCHEMA, name: "Group", description: "Group", attributes: &GROUP_ATTRS };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_display_name_is_required() {
        assert!(GROUP.attribute("displayname").unwrap().required);
    }

    #[test]
    fn members_have_value_ref_type_and_display() {
        let members = GROUP.attribute("members").unwrap();
        assert!(members.is_multi_complex());
        for name in ["value", "$ref", "type", "display"] {
            assert!(members.sub_attribute(name).is_some(), "{name}");
        }
    }
}
