//! The attribute-definition model of RFC 7643 §2 and §7, with `const` builders for static schema tables.

/// The data type of an attribute (RFC 7643 §2.3).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttrType {
    /// A sequence of Unicode characters.
    String,
    /// `true` or `false`.
    Boolean,
    /// A real number.
    Decimal,
    /// A whole number.
    Integer,
    /// An RFC 3339 date-time.
    DateTime,
    /// A URI naming another resource.
    Reference,
    /// A structure of sub-attributes.
    Complex,
    /// Base64-encoded bytes.
    Binary,
}

impl AttrType {
    /// The spelling used in schema representations, e.g. `dateTime`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::String => "string",
            Self::Boolean => "boolean",
            Self::Decimal => "decimal",
            Self::Integer => "integer",
            Self::DateTime => "dateTime",
            Self::Reference => "reference",
            Self::Complex => "complex",
            Self::Binary => "binary",
        }
    }
}

/// Whether and how an attribute may be changed by clients (RFC 7643 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutability {
    /// Set by the server only.
    ReadOnly,
    /// Freely updated.
    ReadWrite,
    /// Set once, never changed afterwards.
    Immutable,
    /// Accepted from clients, never returned.
    WriteOnly,
}

impl Mutability {
    /// The spelling used in schema representations, e.g. `readOnly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReadOnly => "readOnly",
            Self::ReadWrite => "readWrite",
            Self::Immutable => "immutable",
            Self::WriteOnly => "writeOnly",
        }
    }
}

/// When an attribute appears in responses (RFC 7643 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Returned {
    /// In every response, whatever `attributes`/`excludedAttributes` say.
    Always,
    /// In no response.
    Never,
    /// Unless excluded.
    Default,
    /// Only when named in `attributes`.
    Request,
}

impl Returned {
    /// The spelling used in schema representations, e.g. `default`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Always => "always",
            Self::Never => "never",
            Self::Default => "default",
            Self::Request => "request",
        }
    }
}

/// The scope in which an attribute's values must be unique (RFC 7643 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Uniqueness {
    /// No uniqueness requirement.
    None,
    /// Unique within this service provider.
    Server,
    /// Globally unique.
    Global,
}

impl Uniqueness {
    /// The spelling used in schema representations, e.g. `server`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Server => "server",
            Self::Global => "global",
        }
    }
}

/// One attribute (or sub-attribute) definition of a schema (RFC 7643 §7).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AttributeDef {
    /// The attribute name in its canonical spelling.
    pub name: &'static str,
    /// The data type.
    pub ty: AttrType,
    /// Whether the attribute holds an array of values.
    pub multi_valued: bool,
    /// Whether a resource must carry the attribute.
    pub required: bool,
    /// Whether string comparison is case-sensitive.
    pub case_exact: bool,
    /// Whether and how clients may change it.
    pub mutability: Mutability,
    /// When it appears in responses.
    pub returned: Returned,
    /// Uniqueness scope.
    pub uniqueness: Uniqueness,
    /// Suggested values, e.g. `work`, `home`.
    pub canonical_values: &'static [&'static str],
    /// For references, the resource types or `external`/`uri` they may point to.
    pub reference_types: &'static [&'static str],
    /// For complex attributes, their sub-attributes.
    pub sub_attributes: &'static [AttributeDef],
    /// Human-readable description.
    pub description: &'static str,
}

impl AttributeDef {
    /// A single-valued, optional, read-write attribute of type `ty` with default flags.
    pub const fn new(name: &'static str, ty: AttrType, description: &'static str) -> Self {
        Self {
            name,
            ty,
            multi_valued: false,
            required: false,
            case_exact: false,
            mutability: Mutability::ReadWrite,
            returned: Returned::Default,
            uniqueness: Uniqueness::None,
            canonical_values: &[],
            reference_types: &[],
            sub_attributes: &[],
            description,
        }
    }

    /// A string attribute with default flags.
    pub const fn string(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::String, description)
    }

    /// A boolean attribute with default flags.
    pub const fn boolean(name: &'static str, description: &'static str) -> Self {
        Self::new(name, AttrType::Boolean, description)
    }

    /// A reference attribute pointing to the given reference types.
    pub const fn reference(name: &'static str, types: &'static [&'static str], description: &'static str) -> Self {
        let mut def = Self::new(name, AttrType::Reference, description);
        def.reference_types = types;
        def
    }

    /// A complex attribute made of `subs`.
    pub const fn complex(name: &'static str, subs: &'static [AttributeDef], description: &'static str) -> Self {
        let mut def = Self::new(name, AttrType::Complex, description);
        def.sub_attributes = subs;
        def
    }

    /// Marks the attribute multi-valued.
    pub const fn multi(mut self) -> Self {
        self.multi_valued = true;
        self
    }

    /// Marks the attribute required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Marks string comparison case-sensitive.
    pub const fn case_exact(mut self) -> Self {
        self.case_exact = true;
        self
    }

    /// Sets the mutability.
    pub const fn mutability(mut self, mutability: Mutability) -> Self {
        self.mutability = mutability;
        self
    }

    /// Sets when the attribute is returned.
    pub const fn returned(mut self, returned: Returned) -> Self {
        self.returned = returned;
        self
    }

    /// Sets the uniqueness scope.
    pub const fn uniqueness(mut self, uniqueness: Uniqueness) -> Self {
        self.uniqueness = uniqueness;
        self
    }

    /// Sets the canonical values.
    pub const fn canonical(mut self, values: &'static [&'static str]) -> Self {
        self.canonical_values = values;
        self
    }

    /// Finds a sub-attribute by name, ignoring case.
    pub fn sub_attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.sub_attributes.iter().find(|sub| sub.name.eq_ignore_ascii_case(name))
    }

    /// Whether this is a complex attribute holding many values (`emails`, `members`).
    pub fn is_multi_complex(&self) -> bool {
        self.multi_valued && self.ty == AttrType::Complex
    }

    /// What a filter comparing this attribute as a whole compares, when it
    /// is complex: its `value` sub-attribute (`emails eq …` each element's,
    /// `manager eq …` the manager's id), if it has one.
    pub fn compared_value(&self) -> Option<&'static AttributeDef> {
        self.sub_attribute("value").filter(|_| self.ty == AttrType::Complex)
    }
}

/// A schema: its URN, name and top-level attributes (RFC 7643 §7).
#[derive(Debug, PartialEq, Eq)]
pub struct SchemaDef {
    /// The schema URN.
    pub id: &'static str,
    /// Short name, e.g. `User`.
    pub name: &'static str,
    /// Human-readable description.
    pub description: &'static str,
    /// Top-level attributes (common attributes `id`, `externalId`, `meta` are not listed).
    pub attributes: &'static [AttributeDef],
}

impl SchemaDef {
    /// Finds a top-level attribute by name, ignoring case.
    pub fn attribute(&self, name: &str) -> Option<&'static AttributeDef> {
        self.attributes.iter().find(|attr| attr.name.eq_ignore_ascii_case(name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static SUBS: [AttributeDef; 1] = [AttributeDef::string("value", "v")];
    static DEF: AttributeDef = AttributeDef::complex("emails", &SUBS, "e").multi();

    #[test]
    fn builders_set_only_what_they_name() {
        let def = AttributeDef::string("userName", "u").required().uniqueness(Uniqueness::Server);
        assert!(def.required);
        assert!(!def.multi_valued);
        assert!(!def.case_exact);
        assert_eq!(def.mutability, Mutability::ReadWrite);
        assert_eq!(def.returned, Returned::Default);
        assert_eq!(def.uniqueness, Uniqueness::Server);
    }

    #[test]
    fn sub_attribute_lookup_ignores_case() {
        assert_eq!(DEF.sub_attribute("VALUE").map(|s| s.name), Some("value"));
        assert!(DEF.sub_attribute("type").is_none());
        assert!(DEF.is_multi_complex());
    }

    #[test]
    fn keywords_are_spelled_as_in_rfc_7643() {
        assert_eq!(AttrType::DateTime.as_str(), "dateTime");
        assert_eq!(Mutability::WriteOnly.as_str(), "writeOnly");
        assert_eq!(Returned::Request.as_str(), "request");
        assert_eq!(Uniqueness::Global.as_str(), "global");
    }
}
