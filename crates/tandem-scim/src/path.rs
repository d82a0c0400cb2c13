//! PATCH paths (RFC 7644 §3.5.2): `attrPath` or `valuePath [ "." subAttr ]`.

use crate::error::ScimError;
use crate::filter::attr_path::{is_attr_name, parse_attr_path};
use crate::filter::{parse_filter, AttrPath, Filter};

/// A parsed PATCH `path`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PatchPath {
    /// The attribute; it may carry a sub-attribute only when there is no filter.
    pub attr: AttrPath,
    /// The value selection filter of `attr[filter]`, whose paths name sub-attributes.
    pub filter: Option<Filter>,
    /// The sub-attribute after the filter, as in `emails[type eq "work"].value`.
    pub sub_after_filter: Option<String>,
}

impl PatchPath {
    /// The sub-attribute the path ends in, whether written `attr.sub` or `attr[…].sub`.
    pub fn sub_attr(&self) -> Option<&str> {
        self.sub_after_filter.as_deref().or(self.attr.sub_attr.as_deref())
    }
}

/// Index of the `]` closing the `[` at `open`, skipping over quoted strings.
fn closing_bracket(input: &str, open: usize) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (idx, c) in input.char_indices().skip_while(|(i, _)| *i <= open) {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some(idx),
            _ => {}
        }
    }
    None
}

/// Parses a PATCH path; malformed paths are 400 `invalidPath`, a malformed filter inside `[…]` is 400 `invalidFilter`.
pub fn parse_path(input: &str) -> Result<PatchPath, ScimError> {
    let text = input.trim();
    if text.is_empty() {
        return Err(ScimError::invalid_path("path is empty"));
    }
    let Some(open) = text.find('[') else {
        let attr = parse_attr_path(text).map_err(|msg| ScimError::invalid_path(format!("{msg} in path")))?;
        return Ok(PatchPath { attr, filter: None, sub_after_filter: None });
    };
    let close = closing_bracket(text, open).ok_or_else(|| {
        ScimError::invalid_path(format!(
            "missing \"]\" to close \"[\" at character {} in path \"{text}\"",
            text.get(..open).map_or(0, |head| head.chars().count()) + 1
        ))
    })?;
    let head = text.get(..=close).unwrap_or(text);
    let rest = text.get(close + 1..).unwrap_or("");
    let Filter::ValuePath { attr, filter } = parse_filter(head)? else {
        return Err(ScimError::invalid_path(format!("path \"{text}\" is not an attribute followed by a value filter")));
    };
    let sub_after_filter = if rest.is_empty() {
        None
    } else {
        match rest.strip_prefix('.') {
            Some(sub) if is_attr_name(sub) => Some(sub.to_owned()),
            _ => return Err(ScimError::invalid_path(format!("unexpected \"{rest}\" after \"]\" in path \"{text}\""))),
        }
    };
    Ok(PatchPath { attr, filter: Some(*filter), sub_after_filter })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filter::{CompValue, CompareOp};

    #[test]
    fn simple_attribute_path_parses() {
        let path = parse_path("userName").unwrap();
        assert_eq!(path.attr, AttrPath::simple("userName"));
        assert!(path.filter.is_none());
        assert_eq!(path.sub_attr(), None);
        assert_eq!(parse_path("active").unwrap().attr.attr, "active");
    }

    #[test]
    fn dotted_sub_attribute_path_parses() {
        let path = parse_path("name.givenName").unwrap();
        assert_eq!(path.attr.attr, "name");
        assert_eq!(path.sub_attr(), Some("givenName"));
    }

    #[test]
    fn value_filter_with_trailing_sub_attribute_parses() {
        let path = parse_path(r#"emails[type eq "work"].value"#).unwrap();
        assert_eq!(path.attr, AttrPath::simple("emails"));
        assert_eq!(
            path.filter,
            Some(Filter::Compare {
                path: AttrPath::simple("type"),
                op: CompareOp::Eq,
                value: CompValue::String("work".into()),
            })
        );
        assert_eq!(path.sub_after_filter.as_deref(), Some("value"));
        let street = parse_path(r#"addresses[type eq "work"].streetAddress"#).unwrap();
        assert_eq!(street.sub_attr(), Some("streetAddress"));
    }

    #[test]
    fn member_value_filter_parses_without_sub_attribute() {
        let path = parse_path(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#).unwrap();
        assert_eq!(path.attr.attr, "members");
        assert!(path.filter.is_some());
        assert_eq!(path.sub_attr(), None);
    }

    #[test]
    fn enterprise_urn_paths_parse() {
        let manager = parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager").unwrap();
        assert_eq!(manager.attr.urn.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!(manager.attr.attr, "manager");
        let dept = parse_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department").unwrap();
        assert_eq!(dept.attr.attr, "department");
    }

    #[test]
    fn closing_bracket_inside_a_string_does_not_end_the_filter() {
        let path = parse_path(r#"emails[value eq "a]b\"]"].display"#).unwrap();
        assert_eq!(path.sub_after_filter.as_deref(), Some("display"));
    }

    #[test]
    fn empty_path_is_invalid_path() {
        let err = parse_path("  ").unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert_eq!(err.detail, "path is empty");
    }

    #[test]
    fn garbage_after_filter_is_invalid_path() {
        let err = parse_path(r#"emails[type eq "work"]value"#).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert!(err.detail.contains("unexpected \"value\" after \"]\""), "{}", err.detail);
    }

    #[test]
    fn unclosed_bracket_is_invalid_path() {
        let err = parse_path(r#"emails[type eq "work""#).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert!(err.detail.starts_with("missing \"]\" to close \"[\" at character 7"), "{}", err.detail);
    }

    #[test]
    fn bad_filter_inside_path_is_invalid_filter() {
        let err = parse_path(r#"emails[type equals "work"]"#).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidFilter"));
    }

    #[test]
    fn bad_attribute_name_is_invalid_path() {
        let err = parse_path("na me").unwrap_err();
        assert_eq!(err.scim_type, Some("invalidPath"));
        assert!(parse_path("a.b.c").is_err());
    }

    #[test]
    fn nested_brackets_are_rejected() {
        assert!(parse_path(r#"emails[type[x eq 1] eq "work"]"#).is_err());
    }
}
