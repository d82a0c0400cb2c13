//! In-memory filter evaluation against resources, per RFC 7644 §3.4.2.2 semantics.

use serde_json::{json, Value};
use tandem_scim::filter::{matches, matches_element, parse_filter};
use tandem_scim::schema::{resolve, ResourceType};

fn bjensen() -> Value {
    json!({
        "schemas": [
            "urn:ietf:params:scim:schemas:core:2.0:User",
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
        ],
        "id": "2819c223-7f76-453a-919d-413861904646",
        "externalId": "701984",
        "userName": "bjensen@example.com",
        "name": {"formatted": "Ms. Barbara J Jensen, III", "familyName": "Jensen", "givenName": "Barbara"},
        "displayName": "Babs Jensen",
        "title": "Tour Guide",
        "userType": "Employee",
        "active": true,
        "emails": [
            {"value": "bjensen@example.com", "type": "work", "primary": true},
            {"value": "babs@jensen.org", "type": "home"}
        ],
        "ims": [{"value": "someaimhandle", "type": "aim"}],
        "meta": {
            "resourceType": "User",
            "created": "2010-01-23T04:56:22Z",
            "lastModified": "2011-05-13T04:42:34Z",
            "version": "W/\"3694e05e9dff591\""
        },
        "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User": {
            "employeeNumber": "701984",
            "department": "Tour Operations",
            "manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d", "displayName": "John Smith"}
        }
    })
}

fn user_matches(filter: &str) -> bool {
    matches(&parse_filter(filter).unwrap(), &bjensen(), ResourceType::User)
}

#[test]
fn equality_on_username_ignores_case() {
    assert!(user_matches(r#"userName eq "BJENSEN@example.com""#));
    assert!(!user_matches(r#"userName eq "bjensen""#));
}

#[test]
fn attribute_names_ignore_case() {
    assert!(user_matches(r#"USERNAME eq "bjensen@example.com""#));
    assert!(user_matches(r#"Name.FamilyName eq "jensen""#));
}

#[test]
fn case_exact_external_id_respects_case() {
    let mut user = bjensen();
    user["externalId"] = json!("AbC");
    let f = |text: &str| matches(&parse_filter(text).unwrap(), &user, ResourceType::User);
    assert!(f(r#"externalId eq "AbC""#));
    assert!(!f(r#"externalId eq "abc""#));
}

#[test]
fn entra_bare_external_id_matches() {
    assert!(user_matches("externalId eq 701984"));
    let mut user = bjensen();
    for ext in ["100000000000000000001", "1.50", "1E3"] {
        user["externalId"] = json!(ext);
        assert!(matches(&parse_filter(&format!("externalId eq {ext}")).unwrap(), &user, ResourceType::User), "{ext}");
    }
}

#[test]
fn contains_starts_with_and_ends_with_work_on_strings() {
    assert!(user_matches(r#"name.familyName co "ens""#));
    assert!(user_matches(r#"userName sw "BJ""#));
    assert!(user_matches(r#"userName ew "EXAMPLE.COM""#));
    assert!(!user_matches(r#"userName sw "x""#));
}

#[test]
fn urn_qualified_core_attribute_matches() {
    assert!(user_matches(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "bj""#));
    assert!(user_matches(r#"urn:ietf:params:scim:schemas:core:2.0:User:name.givenName eq "Barbara""#));
}

#[test]
fn enterprise_attributes_match_under_their_urn() {
    assert!(user_matches(r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:employeeNumber eq "701984""#));
    assert!(user_matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#
    ));
    // Unqualified, as Microsoft's provisioning tutorial filters on `manager`:
    // the one extension attribute of that name; the manager as a whole
    // compares its `value`.
    assert!(user_matches(r#"employeeNumber eq "701984""#));
    assert!(user_matches(r#"manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#));
    assert!(user_matches(
        r#"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager eq "26118915-6090-4610-87e4-49d8ca9f808d""#
    ));
    assert!(!user_matches(r#"manager eq "someone-else""#));
}

#[test]
fn present_is_false_for_missing_null_and_empty_values() {
    assert!(user_matches("title pr"));
    assert!(!user_matches("nickName pr"));
    let mut user = bjensen();
    user["nickName"] = json!("");
    user["phoneNumbers"] = json!([]);
    user["locale"] = Value::Null;
    for attr in ["nickName", "phoneNumbers", "locale"] {
        assert!(!matches(&parse_filter(&format!("{attr} pr")).unwrap(), &user, ResourceType::User), "{attr}");
    }
}

#[test]
fn present_on_complex_and_multi_valued_attributes() {
    assert!(user_matches("name pr"));
    assert!(user_matches("emails pr"));
    assert!(user_matches("emails.type pr"));
    assert!(!user_matches("emails.display pr"));
}

#[test]
fn eq_null_means_absent() {
    assert!(user_matches("nickName eq null"));
    assert!(!user_matches("title eq null"));
    assert!(user_matches("title ne null"));
}

#[test]
fn ne_matches_resources_lacking_the_attribute() {
    assert!(user_matches(r#"nickName ne "Babs""#));
    assert!(user_matches(r#"userType ne "Intern""#));
    assert!(!user_matches(r#"userType ne "employee""#));
}

#[test]
fn ne_on_multi_valued_requires_no_equal_value() {
    assert!(!user_matches(r#"emails ne "babs@jensen.org""#));
    assert!(user_matches(r#"emails ne "other@example.com""#));
}

#[test]
fn multi_valued_complex_without_sub_attribute_compares_value() {
    assert!(user_matches(r#"emails co "@example.com""#));
    assert!(user_matches(r#"emails eq "babs@jensen.org""#));
    assert!(!user_matches(r#"emails co "@nowhere.test""#));
}

#[test]
fn multi_valued_sub_attribute_matches_if_any_value_matches() {
    assert!(user_matches(r#"emails.type eq "home""#));
    assert!(user_matches(r#"emails.value co "jensen.org""#));
    assert!(!user_matches(r#"emails.type eq "other""#));
}

#[test]
fn value_path_requires_one_element_to_satisfy_all_conditions() {
    assert!(user_matches(r#"emails[type eq "work" and value co "@example.com"]"#));
    assert!(!user_matches(r#"emails[type eq "home" and value co "@example.com"]"#));
    assert!(user_matches(r#"emails[type eq "work" and primary eq true]"#));
    assert!(!user_matches(r#"emails[type eq "home" and primary eq true]"#));
}

#[test]
fn rfc_compound_examples_evaluate() {
    assert!(user_matches(r#"title pr and userType eq "Employee""#));
    assert!(user_matches(r#"title pr or userType eq "Intern""#));
    assert!(user_matches(r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#));
    assert!(!user_matches(
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#
    ));
    assert!(user_matches(r#"userType eq "Employee" and (emails.type eq "work")"#));
    assert!(user_matches(
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
    ));
}

#[test]
fn schemas_eq_matches_listed_urn_ignoring_case() {
    assert!(user_matches(r#"schemas eq "URN:ietf:params:scim:schemas:extension:enterprise:2.0:User""#));
    assert!(!user_matches(r#"schemas eq "urn:example:other""#));
}

#[test]
fn date_times_compare_chronologically() {
    assert!(user_matches(r#"meta.lastModified gt "2011-05-13T04:42:33Z""#));
    assert!(user_matches(r#"meta.lastModified ge "2011-05-13T04:42:34Z""#));
    assert!(user_matches(r#"meta.lastModified lt "2011-05-13T04:42:34.001Z""#));
    assert!(user_matches(r#"meta.lastModified le "2011-05-13T04:42:34Z""#));
    assert!(!user_matches(r#"meta.lastModified gt "2011-05-13T04:42:34Z""#));
}

#[test]
fn date_time_offsets_are_normalised_before_comparing() {
    assert!(user_matches(r#"meta.lastModified eq "2011-05-13T06:42:34+02:00""#));
    assert!(user_matches(r#"meta.lastModified lt "2011-05-13T00:00:00-05:00""#));
}

#[test]
fn strings_order_lexicographically_ignoring_case() {
    assert!(user_matches(r#"title gt "TOUR""#));
    assert!(user_matches(r#"title lt "u""#));
}

#[test]
fn ordering_on_booleans_is_false() {
    assert!(!user_matches("active gt false"));
    assert!(!user_matches("active le true"));
    assert!(user_matches("active eq true"));
}

#[test]
fn ordering_on_complex_attribute_is_false() {
    assert!(!user_matches(r#"name gt "a""#));
    assert!(!user_matches(r#"name eq "Barbara""#));
}

#[test]
fn boolean_filter_matches_entra_string_boolean_value() {
    let mut user = bjensen();
    user["active"] = json!("False");
    assert!(matches(&parse_filter("active eq false").unwrap(), &user, ResourceType::User));
}

#[test]
fn unknown_attributes_never_equal_anything() {
    assert!(!user_matches(r#"shoeSize eq "42""#));
    assert!(user_matches("shoeSize eq null"));
}

#[test]
fn not_negates() {
    assert!(user_matches(r#"not (userName eq "x")"#));
    assert!(!user_matches(r#"not (userName pr)"#));
}

#[test]
fn group_members_value_path_matches() {
    let group = json!({
        "displayName": "Tour Guides",
        "members": [{"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen"}]
    });
    let f = |text: &str| matches(&parse_filter(text).unwrap(), &group, ResourceType::Group);
    assert!(f(r#"members[value eq "2819c223-7f76-453a-919d-413861904646"]"#));
    assert!(f(r#"displayName eq "tour guides""#));
    assert!(!f(r#"members[value eq "nobody"]"#));
    assert!(f(r#"members eq "2819c223-7f76-453a-919d-413861904646""#));
}

#[test]
fn element_filter_evaluates_one_value() {
    let emails = resolve(ResourceType::User, None, "emails", None).unwrap().attr;
    let filter = parse_filter(r#"emails[TYPE eq "Work" and primary eq true]"#).unwrap();
    let tandem_scim::filter::Filter::ValuePath { filter: inner, .. } = filter else { panic!() };
    assert!(matches_element(&inner, &json!({"value": "a", "type": "work", "primary": true}), emails));
    assert!(!matches_element(&inner, &json!({"value": "a", "type": "work"}), emails));
}

#[test]
fn numeric_comparisons_on_unknown_numbers_are_numeric() {
    let resource = json!({"userName": "x", "loginCount": 10});
    let f = |text: &str| matches(&parse_filter(text).unwrap(), &resource, ResourceType::User);
    assert!(f("loginCount gt 9"));
    assert!(!f("loginCount gt 10"));
    assert!(f("loginCount ge 10.0"));
}
