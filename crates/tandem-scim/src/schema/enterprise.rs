//! The Enterprise User extension, `urn:ietf:params:scim:schemas:extension:enterprise:2.0:User` (RFC 7643 §4.3).

use super::model::{AttributeDef, Mutability, SchemaDef};
use super::ENTERPRISE_USER_SCHEMA;

const MANAGER_SUBS: [AttributeDef; 3] = [
    AttributeDef::string("value", "The id of the SCIM resource representing the User's manager."),
    AttributeDef::reference("$ref", &["User"], "The URI of the SCIM resource representing the User's manager."),
    AttributeDef::string("displayName", "The displayName of the User's manager.").mutability(Mutability::ReadOnly),
];

const ENTERPRISE_ATTRS: [AttributeDef; 6] = [
    AttributeDef::string("employeeNumber", "Numeric or alphanumeric identifier assigned to a person, typically based on order of hire or association with an organization."),
    AttributeDef::string("costCenter", "Identifies the name of a cost center."),
    AttributeDef::string("organization", "Identifies the name of an organization."),
    AttributeDef::string("division", "Identifies the name of a division."),
    AttributeDef::string("department", "Identifies the name of a department."),
    AttributeDef::complex("manager", &MANAGER_SUBS, "The User's manager."),
];

/// The Enterprise User extension schema.
pub static ENTERPRISE_USER: SchemaDef = SchemaDef {
    id: ENTERPRISE_USER_SCHEMA,
    name: "EnterpriseUser",
    description: "Enterprise User",
    attributes: &ENTERPRISE_ATTRS,
};

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::AttrType;

    #[test]
    fn manager_is_single_valued_complex_with_read_only_display_name() {
        let manager = ENTERPRISE_USER.attribute("Manager").unwrap();
        assert_eq!(manager.ty, AttrType::Complex);
        assert!(!manager.multi_valued);
        assert_eq!(manager.sub_attribute("displayname").unwrap().mutability, Mutability::ReadOnly);
        assert!(manager.sub_attribute("$ref").is_some());
    }

    #[test]
    fn enterprise_strings_are_all_present() {
        for name in ["employeeNumber", "costCenter", "organization", "division", "department"] {
            assert_eq!(ENTERPRISE_USER.attribute(name).unwrap().ty, AttrType::String);
        }
    }
}
