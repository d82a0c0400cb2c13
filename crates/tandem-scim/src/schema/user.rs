//! The core User schema, `urn:ietf:params:scim:schemas:core:2.0:User` (RFC 7643 §4.1, §8.7.1).

use super::model::{AttrType, AttributeDef, Mutability, Returned, SchemaDef, Uniqueness};
use super::USER_SCHEMA;

const NAME_SUBS: [AttributeDef; 6] = [
    AttributeDef::string(
        "formatted",
        "The full name, including all middle names, titles and suffixes, formatted for display.",
    ),
    AttributeDef::string("familyName", "The family name of the User, or last name in most Western languages."),
    AttributeDef::string("givenName", "The given name of the User, or first name in most Western languages."),
    AttributeDef::string("middleName", "The middle name(s) of the User."),
    AttributeDef::string(
        "honorificPrefix",
        "The honorific prefix(es) of the User, or title in most Western languages.",
    ),
    AttributeDef::string(
        "honorificSuffix",
        "The honorific suffix(es) of the User, or suffix in most Western languages.",
    ),
];

const PRIMARY: AttributeDef = AttributeDef::boolean(
    "primary",
    "Whether this is the preferred value of the attribute; at most one value may be primary.",
);

const DISPLAY: AttributeDef =
    AttributeDef::string("display", "A human-readable name, primarily used for display purposes.");

const EMAIL_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value", "Email address for the User."),
    DISPLAY,
    AttributeDef::string("type", "A label indicating the email's function, e.g. 'work' or 'home'.")
        .canonical(&["work", "home", "other"]),
    PRIMARY,
];

const PHONE_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value", "Phone number of the User."),
    DISPLAY,
    AttributeDef::string("type", "A label indicating the phone number's function, e.g. 'work', 'home', 'mobile'.")
        .canonical(&["work", "home", "mobile", "fax", "pager", "other"]),
    PRIMARY,
];

const IM_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value", "Instant messaging address for the User."),
    DISPLAY,
    AttributeDef::string("type", "A label indicating the instant messaging service.")
        .canonical(&["aim", "gtalk", "icq", "xmpp", "msn", "skype", "qq", "yahoo"]),
    PRIMARY,
];

const PHOTO_SUBS: [AttributeDef; 4] = [
    AttributeDef::reference("value", &["external"], "URL of a photo of the User."),
    DISPLAY,
    AttributeDef::string("type", "A label indicating the photo's function, i.e. 'photo' or 'thumbnail'.")
        .canonical(&["photo", "thumbnail"]),
    PRIMARY,
];

const ADDRESS_SUBS: [AttributeDef; 8] = [
    AttributeDef::string("formatted", "The full mailing address, formatted for display or use with a mailing label."),
    AttributeDef::string("streetAddress", "The full street address component, which may include house number, street name, P.O. box and multi-line extended street address information."),
    AttributeDef::string("locality", "The city or locality component."),
    AttributeDef::string("region", "The state or region component."),
    AttributeDef::string("postalCode", "The zip code or postal code component."),
    AttributeDef::string("country", "The country name component, as an ISO 3166-1 alpha-2 code."),
    AttributeDef::string("type", "A label indicating the address's function, e.g. 'work' or 'home'.")
        .canonical(&["work", "home", "other"]),
    PRIMARY,
];

const GROUP_MEMBERSHIP_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value", "The identifier of the User's group.").mutability(Mutability::ReadOnly),
    AttributeDef::reference(
        "$ref",
        &["User", "Group"],
        "The URI of the corresponding 'Group' resource to which the user belongs.",
    )
    .mutability(Mutability::ReadOnly),
    AttributeDef::string("display", "A human-readable name, primarily used for display purposes.")
        .mutability(Mutability::ReadOnly),
    AttributeDef::string("type", "A label indicating the attribute's function, e.g. 'direct' or 'indirect'.")
        .canonical(&["direct", "indirect"])
        .mutability(Mutability::ReadOnly),
];

const ENTITLEMENT_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value", "The value of an entitlement."),
    DISPLAY,
    AttributeDef::string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const ROLE_SUBS: [AttributeDef; 4] = [
    AttributeDef::string("value", "The value of a role."),
    DISPLAY,
    AttributeDef::string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const CERT_SUBS: [AttributeDef; 4] = [
    AttributeDef::new("value", AttrType::Binary, "The value of an X.509 certificate."),
    DISPLAY,
    AttributeDef::string("type", "A label indicating the attribute's function."),
    PRIMARY,
];

const USER_ATTRS: [AttributeDef; 21] = [
    AttributeDef::string(
        "userName",
        "Unique identifier for the User, typically used by the user to directly authenticate to the service provider.",
    )
    .required()
    .uniqueness(Uniqueness::Server),
    AttributeDef::complex("name", &NAME_SUBS, "The components of the user's real name."),
    AttributeDef::string("displayName", "The name of the User, suitable for display to end-users."),
    AttributeDef::string("nickName", "The casual way to address the user in real life."),
    AttributeDef::reference(
        "profileUrl",
        &["external"],
        "A fully qualified URL pointing to a page representing the User's online profile.",
    ),
    AttributeDef::string("title", "The user's title, such as \"Vice President\"."),
    AttributeDef::string(
        "userType",
        "Used to identify the relationship between the organization and the user, e.g. 'Contractor' or 'Employee'.",
    ),
    AttributeDef::string(
        "preferredLanguage",
        "The User's preferred written or spoken language, as in the HTTP Accept-Language header.",
    ),
    AttributeDef::string(
        "locale",
        "The User's default location for localizing items such as currency, date and time formats.",
    ),
    AttributeDef::string(
        "timezone",
        "The User's time zone in the 'Olson' time zone database format, e.g. 'America/Los_Angeles'.",
    ),
    AttributeDef::boolean("active", "A Boolean value indicating the User's administrative status."),
    AttributeDef::string("password", "The User's cleartext password; never returned and never stored by this service.")
        .mutability(Mutability::WriteOnly)
        .returned(Returned::Never),
    AttributeDef::complex("emails", &EMAIL_SUBS, "Email addresses for the user.").multi(),
    AttributeDef::complex("phoneNumbers", &PHONE_SUBS, "Phone numbers for the User.").multi(),
    AttributeDef::complex("ims", &IM_SUBS, "Instant messaging addresses for the User.").multi(),
    AttributeDef::complex("photos", &PHOTO_SUBS, "URLs of photos of the User.").multi(),
    AttributeDef::complex("addresses", &ADDRESS_SUBS, "A physical mailing address for this User.").multi(),
    AttributeDef::complex(
        "groups",
        &GROUP_MEMBERSHIP_SUBS,
        "A list of groups to which the user belongs, either through direct membership or through nested groups.",
    )
    .multi()
    .mutability(Mutability::ReadOnly),
    AttributeDef::complex(
        "entitlements",
        &ENTITLEMENT_SUBS,
        "A list of entitlements for the User that represent a thing the User has.",
    )
    .multi(),
    AttributeDef::complex(
        "roles",
        &ROLE_SUBS,
        "A list of roles for the User that collectively represent who the User is.",
    )
    .multi(),
    AttributeDef::complex("x509Certificates", &CERT_SUBS, "A list of certificates issued to the User.").multi(),
];

/// The core User schema with every attribute of RFC 7643 §4.1.
pub static USER: SchemaDef =
    SchemaDef { id: USER_SCHEMA, name: "User", description: "User Account", attributes: &USER_ATTRS };

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_name_is_required_and_unique_per_server() {
        let attr = USER.attribute("username").unwrap();
        assert!(attr.required);
        assert_eq!(attr.uniqueness, Uniqueness::Server);
        assert_eq!(attr.returned, Returned::Default);
    }

    #[test]
    fn password_is_write_only_and_never_returned() {
        let attr = USER.attribute("password").unwrap();
        assert_eq!(attr.mutability, Mutability::WriteOnly);
        assert_eq!(attr.returned, Returned::Never);
    }

    #[test]
    fn groups_and_their_sub_attributes_are_read_only() {
        let attr = USER.attribute("groups").unwrap();
        assert_eq!(attr.mutability, Mutability::ReadOnly);
        assert!(attr.sub_attributes.iter().all(|s| s.mutability == Mutability::ReadOnly));
    }

    #[test]
    fn every_multi_valued_attribute_is_complex() {
        for attr in USER.attributes.iter().filter(|a| a.multi_valued) {
            assert_eq!(attr.ty, AttrType::Complex, "{}", attr.name);
            assert!(!attr.sub_attributes.is_empty(), "{}", attr.name);
        }
    }

    #[test]
    fn email_types_have_canonical_values() {
        let ty = USER.attribute("emails").unwrap().sub_attribute("type").unwrap();
        assert_eq!(ty.canonical_values, &["work", "home", "other"]);
    }

    #[test]
    fn name_has_all_six_components() {
        let name = USER.attribute("name").unwrap();
        let names: Vec<_> = name.sub_attributes.iter().map(|s| s.name).collect();
        assert_eq!(names, ["formatted", "familyName", "givenName", "middleName", "honorificPrefix", "honorificSuffix"]);
    }
}
