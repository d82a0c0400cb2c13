//! Classifying the keys of a client-supplied resource object (or a path-less PATCH value):
//! plain, dotted (`name.givenName`), URN-qualified (`urn:…:User:department`) or schema URN keys.

use crate::schema::{resolve, split_urn, ResolvedAttr, ResourceType, SchemaDef};

/// What a key of a resource object refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KeyTarget {
    /// The `schemas` key.
    Schemas,
    /// A schema URN whose value is an object of that schema's attributes.
    Schema(&'static SchemaDef),
    /// An attribute (with an optional sub-attribute) of the resource type.
    Attr(ResolvedAttr),
    /// Not an attribute of a schema this resource type knows: ignored.
    Foreign,
    /// An unknown attribute under a schema this resource type knows: ignored too (an admin's
    /// custom attribute under the enterprise URN), but told apart from [`KeyTarget::Foreign`].
    UnknownInSchema,
}

fn split_dotted(name: &str) -> Option<(&str, Option<&str>)> {
    let mut parts = name.split('.');
    let attr = parts.next()?;
    let sub = parts.next();
    if parts.next().is_some() {
        return None;
    }
    Some((attr, sub))
}

/// Whether `urn` is the core schema or an extension of `rt`.
pub(crate) fn known_urn(rt: ResourceType, urn: &str) -> bool {
    rt.is_core_urn(urn) || rt.extension(urn).is_some()
}

/// Classifies a top-level key.
pub(crate) fn classify_key(rt: ResourceType, key: &str) -> KeyTarget {
    if key.eq_ignore_ascii_case("schemas") {
        return KeyTarget::Schemas;
    }
    if rt.is_core_urn(key) {
        return KeyTarget::Schema(rt.core_schema());
    }
    if let Some(ext) = rt.extension(key) {
        return KeyTarget::Schema(ext);
    }
    let (urn, rest) = split_urn(key);
    let known = urn.is_some_and(|u| known_urn(rt, u));
    if urn.is_some() && !known {
        return KeyTarget::Foreign;
    }
    let found = split_dotted(rest).and_then(|(attr, sub)| resolve(rt, urn, attr, sub));
    match (found, known) {
        (Some(found), _) => KeyTarget::Attr(found),
        (None, true) => KeyTarget::UnknownInSchema,
        (None, false) => KeyTarget::Foreign,
    }
}

/// Classifies a key inside the object given for `schema` (a schema URN key).
pub(crate) fn classify_in_schema(rt: ResourceType, schema: &SchemaDef, key: &str) -> KeyTarget {
    match split_dotted(key).and_then(|(attr, sub)| resolve(rt, Some(schema.id), attr, sub)) {
        Some(found) => KeyTarget::Attr(found),
        None => KeyTarget::UnknownInSchema,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{ENTERPRISE_USER, ENTERPRISE_USER_SCHEMA, USER};

    fn attr_of(target: KeyTarget) -> (Option<&'static str>, &'static str, Option<&'static str>) {
        match target {
            KeyTarget::Attr(found) => (found.container, found.attr.name, found.sub.map(|s| s.name)),
            other => panic!("not an attribute: {other:?}"),
        }
    }

    #[test]
    fn plain_and_dotted_keys_resolve_to_core_attributes() {
        assert_eq!(attr_of(classify_key(ResourceType::User, "DisplayName")), (None, "displayName", None));
        assert_eq!(attr_of(classify_key(ResourceType::User, "name.givenName")), (None, "name", Some("givenName")));
    }

    #[test]
    fn urn_qualified_enterprise_key_resolves_into_the_extension() {
        let key = format!("{ENTERPRISE_USER_SCHEMA}:employeeNumber");
        assert_eq!(
            attr_of(classify_key(ResourceType::User, &key)),
            (Some(ENTERPRISE_USER_SCHEMA), "employeeNumber", None)
        );
        let key = format!("{ENTERPRISE_USER_SCHEMA}:manager.value");
        assert_eq!(
            attr_of(classify_key(ResourceType::User, &key)),
            (Some(ENTERPRISE_USER_SCHEMA), "manager", Some("value"))
        );
    }

    #[test]
    fn schema_urn_keys_are_recognised_ignoring_case() {
        let lower = ENTERPRISE_USER_SCHEMA.to_lowercase();
        assert_eq!(classify_key(ResourceType::User, &lower), KeyTarget::Schema(&ENTERPRISE_USER));
        assert_eq!(classify_key(ResourceType::User, USER.id), KeyTarget::Schema(&USER));
        assert_eq!(classify_key(ResourceType::User, "SCHEMAS"), KeyTarget::Schemas);
    }

    #[test]
    fn unknown_plain_and_foreign_urn_keys_are_foreign() {
        assert_eq!(classify_key(ResourceType::User, "favouriteColour"), KeyTarget::Foreign);
        assert_eq!(
            classify_key(ResourceType::User, "urn:ietf:params:scim:schemas:extension:Custom:2.0:User:costCode"),
            KeyTarget::Foreign
        );
        assert_eq!(classify_key(ResourceType::Group, ENTERPRISE_USER_SCHEMA), KeyTarget::Foreign);
    }

    #[test]
    fn unknown_attribute_under_known_schema_is_flagged() {
        let key = format!("{ENTERPRISE_USER_SCHEMA}:shoeSize");
        assert_eq!(classify_key(ResourceType::User, &key), KeyTarget::UnknownInSchema);
        assert_eq!(classify_in_schema(ResourceType::User, &ENTERPRISE_USER, "shoeSize"), KeyTarget::UnknownInSchema);
        assert_eq!(
            attr_of(classify_in_schema(ResourceType::User, &ENTERPRISE_USER, "DEPARTMENT")),
            (Some(ENTERPRISE_USER_SCHEMA), "department", None)
        );
    }
}
