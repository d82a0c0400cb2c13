//! The filter syntax tree of RFC 7644 §3.4.2.2 and its rendering back to filter text.

use std::fmt;

/// `[urn:]attr[.subAttr]`: an attribute path as written in a filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttrPath {
    /// The schema URN prefix, when the path was URN-qualified.
    pub urn: Option<String>,
    /// The attribute name as written.
    pub attr: String,
    /// The sub-attribute name as written, when present.
    pub sub_attr: Option<String>,
}

impl AttrPath {
    /// An unqualified path without sub-attribute.
    pub fn simple(attr: impl Into<String>) -> Self {
        Self { urn: None, attr: attr.into(), sub_attr: None }
    }
}

impl fmt::Display for AttrPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(urn) = &self.urn {
            write!(f, "{urn}:")?;
        }
        f.write_str(&self.attr)?;
        if let Some(sub) = &self.sub_attr {
            write!(f, ".{sub}")?;
        }
        Ok(())
    }
}

/// A comparison operator (RFC 7644 Table 3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CompareOp {
    /// `eq`: equal.
    Eq,
    /// `ne`: not equal.
    Ne,
    /// `co`: contains.
    Co,
    /// `sw`: starts with.
    Sw,
    /// `ew`: ends with.
    Ew,
    /// `gt`: greater than.
    Gt,
    /// `ge`: greater than or equal.
    Ge,
    /// `lt`: less than.
    Lt,
    /// `le`: less than or equal.
    Le,
}

impl CompareOp {
    /// Parses an operator keyword, ignoring case.
    pub fn from_keyword(word: &str) -> Option<Self> {
        Some(match word.to_ascii_lowercase().as_str() {
            "eq" => Self::Eq,
            "ne" => Self::Ne,
            "co" => Self::Co,
            "sw" => Self::Sw,
            "ew" => Self::Ew,
            "gt" => Self::Gt,
            "ge" => Self::Ge,
            "lt" => Self::Lt,
            "le" => Self::Le,
            _ => return None,
        })
    }

    /// The lowercase keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Eq => "eq",
            Self::Ne => "ne",
            Self::Co => "co",
            Self::Sw => "sw",
            Self::Ew => "ew",
            Self::Gt => "gt",
            Self::Ge => "ge",
            Self::Lt => "lt",
            Self::Le => "le",
        }
    }
}

/// The right-hand side of a comparison.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CompValue {
    /// `null`.
    Null,
    /// `true` or `false`.
    Bool(bool),
    /// A JSON number.
    Number(serde_json::Number),
    /// A quoted string, or an unquoted bare word accepted leniently.
    String(String),
}

impl CompValue {
    /// The value as JSON.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Self::Null => serde_json::Value::Null,
            Self::Bool(b) => serde_json::Value::Bool(*b),
            Self::Number(n) => serde_json::Value::Number(n.clone()),
            Self::String(s) => serde_json::Value::String(s.clone()),
        }
    }
}

impl fmt::Display for CompValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Null => f.write_str("null"),
            Self::Bool(b) => write!(f, "{b}"),
            Self::Number(n) => write!(f, "{n}"),
            Self::String(s) => write!(f, "{}", serde_json::Value::String(s.clone())),
        }
    }
}

/// A parsed SCIM filter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Filter {
    /// Both sides match.
    And(Box<Filter>, Box<Filter>),
    /// Either side matches.
    Or(Box<Filter>, Box<Filter>),
    /// The inner filter does not match.
    Not(Box<Filter>),
    /// `path op value`.
    Compare {
        /// The attribute compared.
        path: AttrPath,
        /// The operator.
        op: CompareOp,
        /// The operand.
        value: CompValue,
    },
    /// `path pr`: the attribute has a non-empty value.
    Present(AttrPath),
    /// `emails[type eq "work" and primary eq true]`: `attr` has no sub_attr; paths inside `filter` name sub-attributes of that attribute (their `attr` field holds the sub-attribute name, urn None).
    ValuePath {
        /// The multi-valued attribute whose values are filtered.
        attr: AttrPath,
        /// The filter applied to each value.
        filter: Box<Filter>,
    },
}

impl Filter {
    /// Nesting depth: 0 for a comparison, one more for each enclosing `and`, `or`, `not` or `[…]`.
    pub fn depth(&self) -> usize {
        match self {
            Self::And(l, r) | Self::Or(l, r) => 1 + l.depth().max(r.depth()),
            Self::Not(inner) => 1 + inner.depth(),
            Self::ValuePath { filter, .. } => 1 + filter.depth(),
            Self::Compare { .. } | Self::Present(_) => 0,
        }
    }

    /// The comparisons (`eq`, `co`, `pr`, …) in the filter, those inside value paths included.
    pub fn comparisons(&self) -> usize {
        match self {
            Self::And(l, r) | Self::Or(l, r) => l.comparisons() + r.comparisons(),
            Self::Not(inner) | Self::ValuePath { filter: inner, .. } => inner.comparisons(),
            Self::Compare { .. } | Self::Present(_) => 1,
        }
    }
}

fn write_operand(f: &mut fmt::Formatter<'_>, filter: &Filter, inside_and: bool) -> fmt::Result {
    if inside_and && matches!(filter, Filter::Or(..)) {
        write!(f, "({filter})")
    } else {
        write!(f, "{filter}")
    }
}

impl fmt::Display for Filter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::And(l, r) => {
                write_operand(f, l, true)?;
                f.write_str(" and ")?;
                write_operand(f, r, true)
            }
            Self::Or(l, r) => write!(f, "{l} or {r}"),
            Self::Not(inner) => write!(f, "not ({inner})"),
            Self::Compare { path, op, value } => write!(f, "{path} {} {value}", op.as_str()),
            Self::Present(path) => write!(f, "{path} pr"),
            Self::ValuePath { attr, filter } => write!(f, "{attr}[{filter}]"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(attr: &str, value: &str) -> Filter {
        Filter::Compare { path: AttrPath::simple(attr), op: CompareOp::Eq, value: CompValue::String(value.into()) }
    }

    #[test]
    fn or_inside_and_is_parenthesised_when_rendered() {
        let f = Filter::And(
            Box::new(Filter::Or(Box::new(cmp("a", "1")), Box::new(cmp("b", "2")))),
            Box::new(cmp("c", "3")),
        );
        assert_eq!(f.to_string(), r#"(a eq "1" or b eq "2") and c eq "3""#);
    }

    #[test]
    fn strings_render_with_json_escapes() {
        assert_eq!(cmp("a", "say \"hi\"").to_string(), r#"a eq "say \"hi\"""#);
    }

    #[test]
    fn depth_counts_logical_nesting() {
        let leaf = cmp("a", "1");
        assert_eq!(leaf.depth(), 0);
        let not = Filter::Not(Box::new(Filter::And(Box::new(leaf.clone()), Box::new(leaf))));
        assert_eq!(not.depth(), 2);
    }

    #[test]
    fn operator_keywords_ignore_case() {
        assert_eq!(CompareOp::from_keyword("EQ"), Some(CompareOp::Eq));
        assert_eq!(CompareOp::from_keyword("Le"), Some(CompareOp::Le));
        assert_eq!(CompareOp::from_keyword("equals"), None);
    }
}
