//! The common attributes every resource carries (RFC 7643 §3.1): `id`, `externalId` and `meta`.

use super::model::{AttrType, AttributeDef, Mutability, Returned, Uniqueness};

const META_SUBS: [AttributeDef; 5] = [
    AttributeDef::string("resourceType", "The name of the resource type of the resource.")
        .case_exact()
        .mutability(Mutability::ReadOnly),
    AttributeDef::new(
        "created",
        AttrType::DateTime,
        "The date and time the resource was added to the service provider.",
    )
    .mutability(Mutability::ReadOnly),
    AttributeDef::new("lastModified", AttrType::DateTime, "The most recent date and time the resource was modified.")
        .mutability(Mutability::ReadOnly),
    AttributeDef::reference("location", &["uri"], "The URI of the resource being returned.")
        .case_exact()
        .mutability(Mutability::ReadOnly),
    AttributeDef::string("version", "The version (entity tag) of the resource.")
        .case_exact()
        .mutability(Mutability::ReadOnly),
];

/// `id`, `externalId` and `meta`, shared by every resource type and not listed in schema documents.
pub static COMMON_ATTRIBUTES: [AttributeDef; 3] = [
    AttributeDef::string("id", "A unique identifier for the resource, assigned by the service provider.")
        .case_exact()
        .mutability(Mutability::ReadOnly)
        .returned(Returned::Always)
        .uniqueness(Uniqueness::Server),
    AttributeDef::string("externalId", "An identifier for the resource as defined by the provisioning client.")
        .case_exact(),
    AttributeDef::complex("meta", &META_SUBS, "Resource metadata maintained by the service provider.")
        .mutability(Mutability::ReadOnly),
];

/// Finds a common attribute by name, ignoring case.
pub fn common_attribute(name: &str) -> Option<&'static AttributeDef> {
    COMMON_ATTRIBUTES.iter().find(|attr| attr.name.eq_ignore_ascii_case(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_is_read_only_case_exact_and_always_returned() {
        let id = common_attribute("ID").unwrap();
        assert_eq!(id.name, "id");
        assert!(id.case_exact);
        assert_eq!(id.mutability, Mutability::ReadOnly);
        assert_eq!(id.returned, Returned::Always);
    }

    #[test]
    fn meta_has_timestamps_as_date_times() {
        let meta = common_attribute("meta").unwrap();
        assert_eq!(meta.sub_attribute("created").unwrap().ty, AttrType::DateTime);
        assert_eq!(meta.sub_attribute("lastmodified").unwrap().ty, AttrType::DateTime);
        assert_eq!(meta.sub_attribute("location").unwrap().ty, AttrType::Reference);
        assert!(meta.sub_attribute("version").is_some());
        assert!(meta.sub_attribute("resourceType").is_some());
    }

    #[test]
    fn external_id_is_writable_and_case_exact() {
        let ext = common_attribute("externalid").unwrap();
        assert_eq!(ext.mutability, Mutability::ReadWrite);
        assert!(ext.case_exact);
    }
}
