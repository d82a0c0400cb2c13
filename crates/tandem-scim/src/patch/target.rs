//! Resolving a PATCH path to the attribute it addresses, with the checks that apply before any change.

use crate::error::ScimError;
use crate::filter::Filter;
use crate::keys::known_urn;
use crate::path::PatchPath;
use crate::schema::{resolve_in_path, AttributeDef, Mutability, ResolvedAttr, ResourceType};

/// What a PATCH operation (or one key of a path-less value) changes.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Target<'f> {
    /// The extension URN key holding the attribute, `None` for core attributes.
    pub container: Option<&'static str>,
    /// The top-level attribute.
    pub attr: &'static AttributeDef,
    /// The sub-attribute, from `attr.sub` or `attr[filter].sub`.
    pub sub: Option<&'static AttributeDef>,
    /// The value selection filter of `attr[filter]`.
    pub filter: Option<&'f Filter>,
}

impl<'f> Target<'f> {
    /// A target without filter from a resolved attribute.
    pub fn from_resolved(found: ResolvedAttr) -> Self {
        Self { container: found.container, attr: found.attr, sub: found.sub, filter: None }
    }

    /// How the target is named in error messages, e.g. `emails[type eq "work"].value`.
    pub fn label(&self) -> String {
        let mut out = String::new();
        if let Some(urn) = self.container {
            out.push_str(urn);
            out.push(':');
        }
        out.push_str(self.attr.name);
        if let Some(filter) = self.filter {
            out.push_str(&format!("[{filter}]"));
        }
        if let Some(sub) = self.sub {
            out.push('.');
            out.push_str(sub.name);
        }
        out
    }

    /// Whether the target touches a read-only attribute or sub-attribute.
    pub fn is_read_only(&self) -> bool {
        self.attr.mutability == Mutability::ReadOnly || self.sub.is_some_and(|s| s.mutability == Mutability::ReadOnly)
    }

    /// 400 `mutability` when the target is read-only.
    pub fn check_writable(&self) -> Result<(), ScimError> {
        if self.is_read_only() {
            return Err(ScimError::mutability(format!("{} is read-only", self.label())));
        }
        Ok(())
    }
}

/// Resolves an explicit PATCH path. `Ok(None)` when the path is qualified by a schema URN this
/// resource type does not know (an identity provider's custom extension), or names an attribute
/// a known schema URN does not define (an admin's custom attribute under the enterprise URN):
/// both are ignored. An unqualified unknown attribute is `invalidPath`.
pub(crate) fn resolve_target(rt: ResourceType, path: &PatchPath) -> Result<Option<Target<'_>>, ScimError> {
    let urn = path.attr.urn.as_deref();
    if urn.is_some_and(|u| !known_urn(rt, u)) {
        return Ok(None);
    }
    let found = resolve_in_path(rt, urn, &path.attr.attr, None);
    if found.is_none() && urn.is_some() {
        return Ok(None);
    }
    let found = found.ok_or_else(|| {
        let mut shown = path.attr.clone();
        shown.sub_attr = None;
        ScimError::invalid_path(format!("unknown attribute \"{shown}\""))
    })?;
    let sub = match path.sub_attr() {
        Some(name) => Some(found.attr.sub_attribute(name).ok_or_else(|| {
            ScimError::invalid_path(format!("unknown sub-attribute \"{name}\" of \"{}\"", found.attr.name))
        })?),
        None => None,
    };
    if path.filter.is_some() && !found.attr.is_multi_complex() {
        return Err(ScimError::invalid_path(format!(
            "a value filter needs a multi-valued complex attribute; \"{}\" is not one",
            found.attr.name
        )));
    }
    Ok(Some(Target { container: found.container, attr: found.attr, sub, filter: path.filter.as_ref() }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::path::parse_path;
    use crate::schema::ENTERPRISE_USER_SCHEMA;

    fn target_label(rt: ResourceType, path: &str) -> String {
        let parsed = parse_path(path).unwrap();
        resolve_target(rt, &parsed).unwrap().unwrap().label()
    }

    #[test]
    fn labels_use_canonical_names() {
        assert_eq!(target_label(ResourceType::User, "NAME.givenname"), "name.givenName");
        assert_eq!(
            target_label(ResourceType::User, r#"emails[type eq "work"].VALUE"#),
            r#"emails[type eq "work"].value"#
        );
        assert_eq!(
            target_label(ResourceType::User, &format!("{ENTERPRISE_USER_SCHEMA}:manager")),
            format!("{ENTERPRISE_USER_SCHEMA}:manager")
        );
    }

    #[test]
    fn unknown_attribute_is_invalid_path_naming_it() {
        let parsed = parse_path("shoeSize").unwrap();
        let err = resolve_target(ResourceType::User, &parsed).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert_eq!(err.detail, r#"unknown attribute "shoeSize""#);
        let parsed = parse_path("name.nick").unwrap();
        let err = resolve_target(ResourceType::User, &parsed).unwrap_err();
        assert_eq!(err.detail, r#"unknown sub-attribute "nick" of "name""#);
    }

    #[test]
    fn an_attribute_a_known_schema_does_not_define_is_ignored() {
        let parsed = parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:badgeId").unwrap();
        assert!(resolve_target(ResourceType::User, &parsed).unwrap().is_none());
        let parsed = parse_path("urn:ietf:params:scim:schemas:core:2.0:User:shoeSize").unwrap();
        assert!(resolve_target(ResourceType::User, &parsed).unwrap().is_none());
    }

    #[test]
    fn custom_extension_path_is_ignored() {
        let parsed = parse_path("urn:ietf:params:scim:schemas:extension:Custom:2.0:User:costCode").unwrap();
        assert!(resolve_target(ResourceType::User, &parsed).unwrap().is_none());
    }

    #[test]
    fn value_filter_on_single_valued_attribute_is_invalid_path() {
        let parsed = parse_path(r#"name[givenName eq "x"]"#).unwrap();
        assert_eq!(resolve_target(ResourceType::User, &parsed).unwrap_err().scim_type, Some("invalidPath"));
    }

    #[test]
    fn meta_sub_attributes_are_read_only() {
        let parsed = parse_path("meta.created").unwrap();
        let target = resolve_target(ResourceType::User, &parsed).unwrap().unwrap();
        let err = target.check_writable().unwrap_err();
        assert_eq!(err.scim_type, Some("mutability"));
        assert_eq!(err.detail, "meta.created is read-only");
    }
}
