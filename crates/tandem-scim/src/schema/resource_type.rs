//! Resource types (`User`, `Group`) and case-insensitive resolution of attribute names against their schemas.

use super::common::common_attribute;
use super::enterprise::ENTERPRISE_USER;
use super::group::GROUP;
use super::model::{AttributeDef, SchemaDef};
use super::user::USER;

/// The resource types this server offers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ResourceType {
    /// `/Users`, core schema User with the Enterprise User extension.
    User,
    /// `/Groups`, core schema Group.
    Group,
}

static USER_EXTENSIONS: [&SchemaDef; 1] = [&ENTERPRISE_USER];

impl ResourceType {
    /// The resource type name: `User` or `Group`.
    pub fn name(self) -> &'static str {
        match self {
            Self::User => "User",
            Self::Group => "Group",
        }
    }

    /// The endpoint relative to the SCIM base URL: `/Users` or `/Groups`.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::User => "/Users",
            Self::Group => "/Groups",
        }
    }

    /// The core schema of this resource type.
    pub fn core_schema(self) -> &'static SchemaDef {
        match self {
            Self::User => &USER,
            Self::Group => &GROUP,
        }
    }

    /// The schema extensions this resource type accepts.
    pub fn extensions(self) -> &'static [&'static SchemaDef] {
        match self {
            Self::User => &USER_EXTENSIONS,
            Self::Group => &[],
        }
    }

    /// The extension whose URN equals `urn`, ignoring case.
    pub fn extension(self, urn: &str) -> Option<&'static SchemaDef> {
        self.extensions().iter().copied().find(|schema| schema.id.eq_ignore_ascii_case(urn))
    }

    /// Whether `urn` names this type's core schema, ignoring case.
    pub fn is_core_urn(self, urn: &str) -> bool {
        self.core_schema().id.eq_ignore_ascii_case(urn)
    }
}

/// Result of resolving an attribute path against a resource type's schemas (names are case-insensitive in SCIM).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResolvedAttr {
    /// `Some(extension URN)` when the attribute lives under that URN key in the resource JSON, `None` for core and common attributes.
    pub container: Option<&'static str>,
    /// The top-level attribute.
    pub attr: &'static AttributeDef,
    /// The sub-attribute, when one was asked for.
    pub sub: Option<&'static AttributeDef>,
}

/// Resolves `[urn:]attr[.sub_attr]` against the schemas of `rt`.
///
/// Without a URN only common and core attributes are found (RFC 7644 §3.10); the core
/// schema URN finds them too, an extension URN finds that extension's attributes.
/// Returns `None` for unknown names, unknown URNs, or a sub-attribute of a non-complex attribute.
pub fn resolve(rt: ResourceType, urn: Option<&str>, attr: &str, sub_attr: Option<&str>) -> Option<ResolvedAttr> {
    let (container, def) = match urn {
        Some(urn) if !rt.is_core_urn(urn) => {
            let schema = rt.extension(urn)?;
            (Some(schema.id), schema.attribute(attr)?)
        }
        _ => (None, common_attribute(attr).or_else(|| rt.core_schema().attribute(attr))?),
    };
    let sub = match sub_attr {
        Some(name) => Some(def.sub_attribute(name)?),
        None => None,
    };
    Some(ResolvedAttr { container, attr: def, sub })
}

/// [`resolve`], and for an unqualified name that no common or core attribute
/// has, the attribute of that name of the one extension that defines it.
/// For PATCH paths and filters only: Microsoft's provisioning documentation
/// sends `"path": "manager"` and filters on `manager eq "…"` for the
/// enterprise extension's `manager`, which RFC 7644 §3.10 would qualify.
pub fn resolve_in_path(
    rt: ResourceType,
    urn: Option<&str>,
    attr: &str,
    sub_attr: Option<&str>,
) -> Option<ResolvedAttr> {
    resolve(rt, urn, attr, sub_attr).or_else(|| {
        if urn.is_some() {
            return None;
        }
        let mut defining = rt.extensions().iter().filter(|schema| schema.attribute(attr).is_some());
        match (defining.next(), defining.next()) {
            (Some(schema), None) => resolve(rt, Some(schema.id), attr, sub_attr),
            _ => None,
        }
    })
}

/// Splits `urn:…:attr.sub` into the URN (everything before the last `:`) and the rest; `None` URN when there is no `:`.
pub fn split_urn(path: &str) -> (Option<&str>, &str) {
    match path.rfind(':') {
        Some(idx) => (path.get(..idx), path.get(idx + 1..).unwrap_or("")),
        None => (None, path),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schema::{AttrType, Mutability, ENTERPRISE_USER_SCHEMA, USER_SCHEMA};

    #[test]
    fn unqualified_core_attribute_resolves_ignoring_case() {
        let found = resolve(ResourceType::User, None, "USERNAME", None).unwrap();
        assert_eq!(found.attr.name, "userName");
        assert_eq!(found.container, None);
        assert!(found.sub.is_none());
    }

    #[test]
    fn core_urn_qualified_attribute_resolves_to_core() {
        let found = resolve(ResourceType::User, Some(USER_SCHEMA), "name", Some("givenname")).unwrap();
        assert_eq!(found.attr.name, "name");
        assert_eq!(found.sub.unwrap().name, "givenName");
        assert_eq!(found.container, None);
    }

    #[test]
    fn enterprise_attribute_resolves_under_its_urn() {
        let urn = ENTERPRISE_USER_SCHEMA.to_ascii_lowercase();
        let found = resolve(ResourceType::User, Some(&urn), "manager", Some("value")).unwrap();
        assert_eq!(found.container, Some(ENTERPRISE_USER_SCHEMA));
        assert_eq!(found.attr.name, "manager");
        assert_eq!(found.sub.unwrap().name, "value");
    }

    #[test]
    fn enterprise_attribute_without_urn_does_not_resolve() {
        assert!(resolve(ResourceType::User, None, "employeeNumber", None).is_none());
        // Except in a PATCH path or a filter, where Entra sends `manager` so.
        let found = resolve_in_path(ResourceType::User, None, "MANAGER", Some("value")).unwrap();
        assert_eq!((found.container, found.attr.name), (Some(ENTERPRISE_USER_SCHEMA), "manager"));
        assert_eq!(resolve_in_path(ResourceType::User, None, "userName", None).unwrap().container, None);
        assert!(resolve_in_path(ResourceType::Group, None, "manager", None).is_none());
        assert!(resolve_in_path(ResourceType::User, None, "nope", None).is_none());
    }

    #[test]
    fn common_attributes_resolve_for_both_types() {
        for rt in [ResourceType::User, ResourceType::Group] {
            let meta = resolve(rt, None, "meta", Some("lastModified")).unwrap();
            assert_eq!(meta.sub.unwrap().ty, AttrType::DateTime);
            assert_eq!(meta.attr.mutability, Mutability::ReadOnly);
            assert!(resolve(rt, None, "externalId", None).is_some());
            assert!(resolve(rt, None, "id", None).is_some());
        }
    }

    #[test]
    fn group_does_not_know_user_attributes_or_extensions() {
        assert!(resolve(ResourceType::Group, None, "userName", None).is_none());
        assert!(resolve(ResourceType::Group, Some(ENTERPRISE_USER_SCHEMA), "department", None).is_none());
        assert_eq!(resolve(ResourceType::Group, None, "members", Some("$REF")).unwrap().sub.unwrap().name, "$ref");
    }

    #[test]
    fn sub_attribute_of_simple_attribute_does_not_resolve() {
        assert!(resolve(ResourceType::User, None, "userName", Some("value")).is_none());
        assert!(resolve(ResourceType::User, None, "name", Some("nope")).is_none());
    }

    #[test]
    fn resource_type_names_and_endpoints() {
        assert_eq!(ResourceType::User.name(), "User");
        assert_eq!(ResourceType::Group.endpoint(), "/Groups");
        assert_eq!(ResourceType::User.extensions().len(), 1);
        assert!(ResourceType::Group.extensions().is_empty());
    }

    #[test]
    fn split_urn_takes_everything_before_the_last_colon() {
        let (urn, rest) = split_urn("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value");
        assert_eq!(urn, Some(ENTERPRISE_USER_SCHEMA));
        assert_eq!(rest, "manager.value");
        assert_eq!(split_urn("userName"), (None, "userName"));
    }
}
