//! Parsing of `[URN ":"] ATTRNAME ["." subAttr]` attribute paths (RFC 7644 §3.4.2.2, §3.10).

use super::ast::AttrPath;

/// Whether `name` is an ATTRNAME: a letter then letters, digits, `-` or `_`; `$ref` is allowed too.
pub(crate) fn is_attr_name(name: &str) -> bool {
    let body = name.strip_prefix('$').unwrap_or(name);
    let mut chars = body.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// Parses an attribute path; the error text says what is wrong without a position.
pub(crate) fn parse_attr_path(text: &str) -> Result<AttrPath, String> {
    let (urn, rest) = match text.rfind(':') {
        Some(idx) => {
            let urn = text.get(..idx).unwrap_or("");
            let rest = text.get(idx + 1..).unwrap_or("");
            if urn.is_empty() || rest.is_empty() {
                return Err(format!("invalid attribute path \"{text}\""));
            }
            (Some(urn.to_owned()), rest)
        }
        None => (None, text),
    };
    let mut parts = rest.split('.');
    let attr = parts.next().unwrap_or("");
    let sub_attr = parts.next();
    if parts.next().is_some() {
        return Err(format!("invalid attribute path \"{text}\": at most one sub-attribute may follow the attribute"));
    }
    if !is_attr_name(attr) {
        return Err(format!("invalid attribute name \"{attr}\" in \"{text}\""));
    }
    if let Some(sub) = sub_attr {
        if !is_attr_name(sub) {
            return Err(format!("invalid sub-attribute name \"{sub}\" in \"{text}\""));
        }
    }
    Ok(AttrPath { urn, attr: attr.to_owned(), sub_attr: sub_attr.map(str::to_owned) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_dotted_and_urn_paths_parse() {
        assert_eq!(parse_attr_path("userName").unwrap(), AttrPath::simple("userName"));
        let dotted = parse_attr_path("name.familyName").unwrap();
        assert_eq!(dotted.attr, "name");
        assert_eq!(dotted.sub_attr.as_deref(), Some("familyName"));
        let urn = parse_attr_path("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value").unwrap();
        assert_eq!(urn.urn.as_deref(), Some("urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"));
        assert_eq!(urn.attr, "manager");
        assert_eq!(urn.sub_attr.as_deref(), Some("value"));
    }

    #[test]
    fn dollar_ref_is_a_valid_sub_attribute() {
        assert_eq!(parse_attr_path("members.$ref").unwrap().sub_attr.as_deref(), Some("$ref"));
    }

    #[test]
    fn names_starting_with_digits_or_with_two_dots_are_rejected() {
        assert!(parse_attr_path("1abc").is_err());
        assert!(parse_attr_path("a.b.c").is_err());
        assert!(parse_attr_path("name.").is_err());
        assert!(parse_attr_path("urn:x:").is_err());
        assert!(parse_attr_path(":x").is_err());
        assert!(parse_attr_path("we!rd").is_err());
    }
}
