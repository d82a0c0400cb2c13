//! Filter parsing: the RFC 7644 §3.4.2.2 examples, operator and keyword handling, values, errors and limits.

use serde_json::Number;
use tandem_scim::filter::{parse_filter, parse_filter_with, AttrPath, CompValue, CompareOp, Filter, FilterLimits};

const ENTERPRISE: &str = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User";

fn path(text: &str) -> AttrPath {
    let (urn, rest) = match text.rfind(':') {
        Some(i) => (Some(text[..i].to_owned()), &text[i + 1..]),
        None => (None, text),
    };
    let mut parts = rest.splitn(2, '.');
    AttrPath { urn, attr: parts.next().unwrap().to_owned(), sub_attr: parts.next().map(str::to_owned) }
}

fn cmp(p: &str, op: CompareOp, value: CompValue) -> Filter {
    Filter::Compare { path: path(p), op, value }
}

fn s(text: &str) -> CompValue {
    CompValue::String(text.to_owned())
}

fn and(l: Filter, r: Filter) -> Filter {
    Filter::And(Box::new(l), Box::new(r))
}

fn or(l: Filter, r: Filter) -> Filter {
    Filter::Or(Box::new(l), Box::new(r))
}

fn not(inner: Filter) -> Filter {
    Filter::Not(Box::new(inner))
}

fn pr(p: &str) -> Filter {
    Filter::Present(path(p))
}

fn vp(attr: &str, inner: Filter) -> Filter {
    Filter::ValuePath { attr: path(attr), filter: Box::new(inner) }
}

fn err(input: &str) -> String {
    let e = parse_filter(input).unwrap_err();
    assert_eq!(e.status, 400);
    assert_eq!(e.scim_type, Some("invalidFilter"));
    e.detail
}

#[test]
fn rfc_example_username_eq_parses() {
    assert_eq!(parse_filter(r#"userName eq "bjensen""#).unwrap(), cmp("userName", CompareOp::Eq, s("bjensen")));
}

#[test]
fn rfc_example_family_name_contains_with_apostrophe_parses() {
    assert_eq!(
        parse_filter(r#"name.familyName co "O'Malley""#).unwrap(),
        cmp("name.familyName", CompareOp::Co, s("O'Malley"))
    );
}

#[test]
fn rfc_example_starts_with_parses_plain_and_urn_qualified() {
    assert_eq!(parse_filter(r#"userName sw "J""#).unwrap(), cmp("userName", CompareOp::Sw, s("J")));
    let qualified = parse_filter(r#"urn:ietf:params:scim:schemas:core:2.0:User:userName sw "J""#).unwrap();
    assert_eq!(qualified, cmp("urn:ietf:params:scim:schemas:core:2.0:User:userName", CompareOp::Sw, s("J")));
    let Filter::Compare { path, .. } = qualified else { panic!() };
    assert_eq!(path.urn.as_deref(), Some("urn:ietf:params:scim:schemas:core:2.0:User"));
    assert_eq!(path.attr, "userName");
}

#[test]
fn rfc_example_title_present_parses() {
    assert_eq!(parse_filter("title pr").unwrap(), pr("title"));
}

#[test]
fn rfc_examples_last_modified_orderings_parse() {
    for (text, op) in [("gt", CompareOp::Gt), ("ge", CompareOp::Ge), ("lt", CompareOp::Lt), ("le", CompareOp::Le)] {
        let input = format!(r#"meta.lastModified {text} "2011-05-13T04:42:34Z""#);
        assert_eq!(parse_filter(&input).unwrap(), cmp("meta.lastModified", op, s("2011-05-13T04:42:34Z")));
    }
}

#[test]
fn rfc_examples_and_or_with_present_parse() {
    assert_eq!(
        parse_filter(r#"title pr and userType eq "Employee""#).unwrap(),
        and(pr("title"), cmp("userType", CompareOp::Eq, s("Employee")))
    );
    assert_eq!(
        parse_filter(r#"title pr or userType eq "Intern""#).unwrap(),
        or(pr("title"), cmp("userType", CompareOp::Eq, s("Intern")))
    );
}

#[test]
fn rfc_example_schemas_eq_enterprise_parses() {
    assert_eq!(
        parse_filter(&format!(r#"schemas eq "{ENTERPRISE}""#)).unwrap(),
        cmp("schemas", CompareOp::Eq, s(ENTERPRISE))
    );
}

#[test]
fn rfc_example_parenthesised_or_inside_and_parses() {
    assert_eq!(
        parse_filter(r#"userType eq "Employee" and (emails co "example.com" or emails.value co "example.org")"#)
            .unwrap(),
        and(
            cmp("userType", CompareOp::Eq, s("Employee")),
            or(cmp("emails", CompareOp::Co, s("example.com")), cmp("emails.value", CompareOp::Co, s("example.org")))
        )
    );
}

#[test]
fn rfc_example_ne_and_not_parse() {
    assert_eq!(
        parse_filter(r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#)
            .unwrap(),
        and(
            cmp("userType", CompareOp::Ne, s("Employee")),
            not(or(
                cmp("emails", CompareOp::Co, s("example.com")),
                cmp("emails.value", CompareOp::Co, s("example.org"))
            ))
        )
    );
}

#[test]
fn rfc_example_parenthesised_single_comparison_parses() {
    assert_eq!(
        parse_filter(r#"userType eq "Employee" and (emails.type eq "work")"#).unwrap(),
        and(cmp("userType", CompareOp::Eq, s("Employee")), cmp("emails.type", CompareOp::Eq, s("work")))
    );
}

#[test]
fn rfc_example_value_path_after_and_parses() {
    assert_eq!(
        parse_filter(r#"userType eq "Employee" and emails[type eq "work" and value co "@example.com"]"#).unwrap(),
        and(
            cmp("userType", CompareOp::Eq, s("Employee")),
            vp("emails", and(cmp("type", CompareOp::Eq, s("work")), cmp("value", CompareOp::Co, s("@example.com"))))
        )
    );
}

#[test]
fn rfc_example_two_value_paths_joined_by_or_parse() {
    assert_eq!(
        parse_filter(
            r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#
        )
        .unwrap(),
        or(
            vp("emails", and(cmp("type", CompareOp::Eq, s("work")), cmp("value", CompareOp::Co, s("@example.com")))),
            vp("ims", and(cmp("type", CompareOp::Eq, s("xmpp")), cmp("value", CompareOp::Co, s("@foo.com"))))
        )
    );
}

#[test]
fn enterprise_urn_attribute_with_sub_attribute_parses() {
    let parsed =
        parse_filter(&format!(r#"{ENTERPRISE}:manager.value eq "26118915-6090-4610-87e4-49d8ca9f808d""#)).unwrap();
    let Filter::Compare { path, .. } = parsed else { panic!() };
    assert_eq!(path.urn.as_deref(), Some(ENTERPRISE));
    assert_eq!(path.attr, "manager");
    assert_eq!(path.sub_attr.as_deref(), Some("value"));
    let parsed = parse_filter(&format!(r#"{ENTERPRISE}:employeeNumber eq "701984""#)).unwrap();
    assert_eq!(parsed, cmp(&format!("{ENTERPRISE}:employeeNumber"), CompareOp::Eq, s("701984")));
}

#[test]
fn operators_and_keywords_ignore_case() {
    assert_eq!(
        parse_filter(r#"title PR AND userName EQ "a" Or NOT (active Eq TRUE)"#).unwrap(),
        or(
            and(pr("title"), cmp("userName", CompareOp::Eq, s("a"))),
            not(cmp("active", CompareOp::Eq, CompValue::Bool(true)))
        )
    );
}

#[test]
fn and_binds_tighter_than_or() {
    assert_eq!(parse_filter("a pr or b pr and c pr").unwrap(), or(pr("a"), and(pr("b"), pr("c"))));
    assert_eq!(parse_filter("a pr and b pr or c pr").unwrap(), or(and(pr("a"), pr("b")), pr("c")));
}

#[test]
fn parentheses_override_precedence() {
    assert_eq!(parse_filter("(a pr or b pr) and c pr").unwrap(), and(or(pr("a"), pr("b")), pr("c")));
}

#[test]
fn three_term_chain_keeps_left_to_right_order() {
    assert_eq!(parse_filter("a pr or b pr or c pr").unwrap(), or(or(pr("a"), pr("b")), pr("c")));
}

#[test]
fn literal_keywords_ignore_case() {
    assert_eq!(parse_filter("active eq True").unwrap(), cmp("active", CompareOp::Eq, CompValue::Bool(true)));
    assert_eq!(parse_filter("active eq FALSE").unwrap(), cmp("active", CompareOp::Eq, CompValue::Bool(false)));
    assert_eq!(parse_filter("title eq Null").unwrap(), cmp("title", CompareOp::Eq, CompValue::Null));
}

#[test]
fn numbers_parse_as_json_numbers() {
    assert_eq!(parse_filter("count gt 10").unwrap(), cmp("count", CompareOp::Gt, CompValue::Number(Number::from(10))));
    assert_eq!(
        parse_filter("score le -2.5").unwrap(),
        cmp("score", CompareOp::Le, CompValue::Number(Number::from_f64(-2.5).unwrap()))
    );
}

/// A number that would not read back as written is kept as its text, which a
/// string attribute is compared with and a numeric one parses.
#[test]
fn numbers_not_written_as_they_read_back_stay_text() {
    for word in ["-2.5e3", "1.50", "1E3", "100000000000000000001", "007", "+1"] {
        assert_eq!(parse_filter(&format!("externalId eq {word}")).unwrap(), cmp("externalId", CompareOp::Eq, s(word)));
    }
}

#[test]
fn strings_with_json_escapes_are_unescaped() {
    assert_eq!(
        parse_filter(r#"displayName eq "Babs \"B\" Jensen\u00e9""#).unwrap(),
        cmp("displayName", CompareOp::Eq, s("Babs \"B\" Jensené"))
    );
}

#[test]
fn entra_unquoted_bare_value_is_accepted_as_string() {
    assert_eq!(parse_filter("externalId eq abc").unwrap(), cmp("externalId", CompareOp::Eq, s("abc")));
    assert_eq!(
        parse_filter("userName eq bjensen@example.com").unwrap(),
        cmp("userName", CompareOp::Eq, s("bjensen@example.com"))
    );
}

#[test]
fn bare_value_with_leading_zero_stays_a_string() {
    assert_eq!(parse_filter("employeeNumber eq 007").unwrap(), cmp("employeeNumber", CompareOp::Eq, s("007")));
}

#[test]
fn whitespace_around_tokens_is_insignificant() {
    assert_eq!(parse_filter("  ( userName   eq \"a\" )  ").unwrap(), cmp("userName", CompareOp::Eq, s("a")));
}

#[test]
fn not_inside_value_path_parses() {
    assert_eq!(
        parse_filter(r#"emails[not (type eq "home")]"#).unwrap(),
        vp("emails", not(cmp("type", CompareOp::Eq, s("home"))))
    );
}

#[test]
fn dollar_ref_sub_attribute_parses() {
    assert_eq!(parse_filter("members.$ref pr").unwrap(), pr("members.$ref"));
}

#[test]
fn display_round_trips_through_the_parser() {
    for input in [
        r#"userType ne "Employee" and not (emails co "example.com" or emails.value co "example.org")"#,
        r#"emails[type eq "work" and value co "@example.com"] or ims[type eq "xmpp" and value co "@foo.com"]"#,
        "a pr or b pr or c pr or d pr and e gt 5",
        r#"title eq "say \"hi\"" and active eq false and x eq null"#,
    ] {
        let parsed = parse_filter(input).unwrap();
        assert_eq!(parse_filter(&parsed.to_string()).unwrap(), parsed, "{input}");
    }
}

#[test]
fn missing_operator_error_names_attribute_and_position() {
    assert_eq!(err("userName"), r#"expected a comparison operator after "userName" at character 9"#);
    assert_eq!(err("(userName)"), r#"expected a comparison operator after "userName" at character 10"#);
}

#[test]
fn unknown_operator_error_names_it_and_position() {
    assert_eq!(err(r#"userName equals "bjensen""#), r#"unknown operator "equals" at character 10"#);
}

#[test]
fn unterminated_string_error_gives_its_start() {
    assert_eq!(err(r#"userName eq "x" or title eq "abc"#), "unterminated string starting at character 29");
}

#[test]
fn stray_closing_paren_is_reported_with_position() {
    assert_eq!(err(r#"userName eq "bjensen")"#), r#"unexpected ")" at character 22"#);
}

#[test]
fn trailing_garbage_is_reported() {
    assert_eq!(err(r#"userName eq "a" xyz"#), r#"unexpected "xyz" at character 17"#);
    assert_eq!(err(r#"userName eq "a" "b""#), r#"unexpected "b" at character 17"#);
}

#[test]
fn missing_value_is_reported() {
    assert_eq!(err("userName eq"), r#"expected a value after "eq" at character 12"#);
    assert_eq!(err("(userName eq)"), r#"expected a value after "eq" at character 13"#);
}

#[test]
fn dangling_and_is_reported() {
    assert_eq!(err(r#"userName eq "a" and"#), "expected an attribute name at character 20");
}

#[test]
fn string_in_attribute_position_is_reported() {
    assert_eq!(err(r#""userName" eq "a""#), r#"expected an attribute name at character 1, found "userName""#);
}

#[test]
fn not_without_parentheses_is_rejected() {
    assert_eq!(err(r#"not userName eq "a""#), r#"expected "(" after "not" at character 5"#);
}

#[test]
fn unclosed_parenthesis_is_reported() {
    assert_eq!(err(r#"(userName eq "a""#), r#"missing ")" to close "(" at character 1"#);
    assert_eq!(err(r#"emails[type eq "work""#), r#"missing "]" to close "[" at character 7"#);
}

/// Entra's `emails[type eq "work"].value eq "…"` (outside RFC 7644's
/// grammar) is the value path with the comparison inside it.
#[test]
fn entra_sub_attribute_after_a_value_path_reads_as_inside_it() {
    assert_eq!(
        parse_filter(r#"emails[type eq "work"].value eq "a@b.c""#).unwrap(),
        parse_filter(r#"emails[type eq "work" and value eq "a@b.c"]"#).unwrap()
    );
    assert_eq!(
        parse_filter(r#"addresses[type eq "work"].formatted pr and userName sw "a""#).unwrap(),
        parse_filter(r#"addresses[type eq "work" and formatted pr] and userName sw "a""#).unwrap()
    );
    assert_eq!(
        err(r#"emails[type eq "work"].value.x eq "a""#),
        r#"expected a sub-attribute name inside "[" at character 24, found "value.x""#
    );
    assert!(err(r#"emails[type eq "work"].value"#).contains("expected a comparison operator"));
    assert!(err(r#"emails[type eq "work"]. eq "a""#).contains("unexpected"));
}

#[test]
fn nested_value_path_is_rejected() {
    assert_eq!(err(r#"emails[type[value eq "x"] eq "work"]"#), r#"nested "[" at character 12 is not allowed"#);
}

#[test]
fn qualified_path_inside_value_path_is_rejected() {
    assert_eq!(
        err(r#"emails[emails.type eq "work"]"#),
        r#"expected a sub-attribute name inside "[" at character 8, found "emails.type""#
    );
}

#[test]
fn value_path_after_sub_attribute_is_rejected() {
    assert_eq!(
        err(r#"name.givenName[x eq "y"]"#),
        r#""[" at character 15 cannot follow the sub-attribute path "name.givenName""#
    );
}

#[test]
fn invalid_attribute_names_are_rejected() {
    assert_eq!(err(r#"1abc eq "x""#), r#"invalid attribute name "1abc" in "1abc" at character 1"#);
    assert!(err(r#"a.b.c eq "x""#).contains("at most one sub-attribute"));
}

#[test]
fn empty_filter_is_rejected() {
    assert_eq!(err("   "), "filter is empty");
}

#[test]
fn too_long_filter_is_rejected() {
    let long = format!(r#"userName eq "{}""#, "x".repeat(4100));
    assert_eq!(err(&long), "filter is longer than 4096 characters");
}

#[test]
fn custom_length_limit_is_honoured() {
    let limits = FilterLimits { max_len: 10, max_depth: 32 };
    let e = parse_filter_with(r#"userName eq "bjensen""#, &limits).unwrap_err();
    assert_eq!(e.detail, "filter is longer than 10 characters");
    assert!(parse_filter_with("a pr", &limits).is_ok());
}

#[test]
fn thirty_two_nested_parentheses_are_accepted() {
    let input = format!("{}a pr{}", "(".repeat(32), ")".repeat(32));
    assert_eq!(parse_filter(&input).unwrap(), pr("a"));
}

#[test]
fn thirty_three_nested_parentheses_are_too_deep() {
    let input = format!("{}a pr{}", "(".repeat(33), ")".repeat(33));
    assert_eq!(err(&input), "filter is nested deeper than 32 levels");
}

#[test]
fn deeply_nested_not_is_too_deep() {
    let input = format!("{}a pr{}", "not (".repeat(40), ")".repeat(40));
    assert_eq!(err(&input), "filter is nested deeper than 32 levels");
}

#[test]
fn deep_alternation_of_and_or_is_too_deep() {
    let mut input = "a pr".to_owned();
    for i in 0..40 {
        let op = if i % 2 == 0 { "and" } else { "or" };
        input = format!("b pr {op} ({input})");
    }
    assert_eq!(err(&input), "filter is nested deeper than 32 levels");
}

#[test]
fn hostile_unbalanced_parentheses_fail_without_overflow() {
    let input = "(".repeat(4000);
    assert_eq!(err(&input), "filter is nested deeper than 32 levels");
}

#[test]
fn long_flat_or_list_is_not_counted_as_deep_nesting() {
    let terms: Vec<String> = (0..200).map(|i| format!(r#"id eq "{i}""#)).collect();
    let parsed = parse_filter(&terms.join(" or ")).unwrap();
    assert!(parsed.depth() <= 8, "depth {}", parsed.depth());
}

#[test]
fn custom_depth_limit_is_honoured() {
    let limits = FilterLimits { max_len: 4096, max_depth: 1 };
    assert!(parse_filter_with("a pr and b pr", &limits).is_ok());
    let e = parse_filter_with("a pr and (b pr or c pr)", &limits).unwrap_err();
    assert_eq!(e.detail, "filter is nested deeper than 1 levels");
}
