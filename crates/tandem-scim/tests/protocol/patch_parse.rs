//! Parsing PATCH request bodies.

use serde_json::json;
use tandem_scim::filter::AttrPath;
use tandem_scim::patch::{parse_patch, PatchOpKind};

#[test]
fn rfc_patch_body_parses() {
    let ops = parse_patch(
        &json!({
            "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
            "Operations": [
                {"op": "add", "path": "members", "value": [{"display": "Babs Jensen", "value": "2819c223"}]},
                {"op": "remove", "path": "members[value eq \"2819c223\"]"},
                {"op": "replace", "value": {"displayName": "x"}}
            ]
        }),
        10,
    )
    .unwrap();
    assert_eq!(ops.len(), 3);
    assert_eq!(ops[0].op, PatchOpKind::Add);
    assert_eq!(ops[0].path.as_ref().unwrap().attr, AttrPath::simple("members"));
    assert_eq!(ops[1].op, PatchOpKind::Remove);
    assert!(ops[1].path.as_ref().unwrap().filter.is_some());
    assert!(ops[1].value.is_none());
    assert!(ops[2].path.is_none());
}

#[test]
fn entra_capitalised_ops_are_accepted() {
    let ops = parse_patch(
        &json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"], "Operations": [
            {"op": "Add", "path": "title", "value": "x"},
            {"op": "Replace", "path": "title", "value": "y"},
            {"op": "Remove", "path": "title"},
            {"op": "REPLACE", "path": "title", "value": "z"}
        ]}),
        10,
    )
    .unwrap();
    let kinds: Vec<_> = ops.iter().map(|o| o.op).collect();
    assert_eq!(kinds, [PatchOpKind::Add, PatchOpKind::Replace, PatchOpKind::Remove, PatchOpKind::Replace]);
}

#[test]
fn operations_key_and_member_keys_ignore_case() {
    let ops = parse_patch(&json!({"operations": [{"OP": "replace", "Path": "title", "Value": "x"}]}), 10).unwrap();
    assert_eq!(ops[0].value, Some(json!("x")));
}

#[test]
fn missing_schemas_is_tolerated() {
    assert!(parse_patch(&json!({"Operations": [{"op": "remove", "path": "title"}]}), 10).is_ok());
}

#[test]
fn schemas_without_patch_op_urn_is_invalid_syntax() {
    let err = parse_patch(&json!({"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "Operations": []}), 10)
        .unwrap_err();
    assert_eq!(err.scim_type, Some("invalidSyntax"));
    assert_eq!(err.detail, r#"schemas must contain "urn:ietf:params:scim:api:messages:2.0:PatchOp""#);
}

#[test]
fn missing_operations_is_invalid_syntax() {
    let err = parse_patch(&json!({"schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]}), 10).unwrap_err();
    assert_eq!(err.scim_type, Some("invalidSyntax"));
    assert_eq!(err.detail, "Operations is required");
    let err = parse_patch(&json!({"Operations": {"op": "add"}}), 10).unwrap_err();
    assert_eq!(err.detail, "Operations must be an array");
    let err = parse_patch(&json!([1]), 10).unwrap_err();
    assert_eq!(err.detail, "PATCH body must be a JSON object");
}

#[test]
fn empty_operations_is_invalid_value() {
    let err = parse_patch(&json!({"Operations": []}), 10).unwrap_err();
    assert_eq!(err.scim_type, Some("invalidValue"));
}

#[test]
fn more_operations_than_allowed_is_rejected() {
    let many: Vec<_> = (0..5).map(|_| json!({"op": "remove", "path": "title"})).collect();
    let err = parse_patch(&json!({"Operations": many}), 4).unwrap_err();
    assert_eq!(err.status, 400);
    assert_eq!(err.scim_type, Some("invalidValue"));
    assert_eq!(err.detail, "too many operations: 5 given, at most 4 allowed");
}

#[test]
fn unknown_op_names_the_operation_index() {
    let err = parse_patch(
        &json!({"Operations": [
            {"op": "add", "path": "title", "value": "x"},
            {"op": "add", "path": "title", "value": "x"},
            {"op": "merge", "path": "title", "value": "x"}
        ]}),
        10,
    )
    .unwrap_err();
    assert_eq!(err.scim_type, Some("invalidSyntax"));
    assert_eq!(err.detail, r#"Operations[2].op: unknown op "merge""#);
}

#[test]
fn missing_or_non_string_op_is_invalid_syntax() {
    assert_eq!(
        parse_patch(&json!({"Operations": [{"path": "x"}]}), 10).unwrap_err().detail,
        "Operations[0].op is required"
    );
    assert_eq!(
        parse_patch(&json!({"Operations": [{"op": 1}]}), 10).unwrap_err().detail,
        "Operations[0].op must be a string"
    );
    assert_eq!(parse_patch(&json!({"Operations": ["add"]}), 10).unwrap_err().detail, "Operations[0] must be an object");
}

#[test]
fn bad_path_names_the_operation_index() {
    let err = parse_patch(&json!({"Operations": [{"op": "remove", "path": "a.b.c"}]}), 10).unwrap_err();
    assert_eq!(err.scim_type, Some("invalidPath"));
    assert!(err.detail.starts_with("Operations[0].path: "), "{}", err.detail);
    let err = parse_patch(&json!({"Operations": [{"op": "remove", "path": 7}]}), 10).unwrap_err();
    assert_eq!(err.detail, "Operations[0].path must be a string");
}

#[test]
fn bad_filter_in_path_is_invalid_filter() {
    let err = parse_patch(&json!({"Operations": [{"op": "remove", "path": "emails[type equals \"work\"]"}]}), 10)
        .unwrap_err();
    assert_eq!(err.scim_type, Some("invalidFilter"));
    assert_eq!(err.detail, r#"Operations[0].path: unknown operator "equals" at character 13"#);
}

#[test]
fn remove_without_path_is_no_target() {
    let err = parse_patch(&json!({"Operations": [{"op": "remove"}]}), 10).unwrap_err();
    assert_eq!(err.scim_type, Some("noTarget"));
    assert_eq!(err.detail, "Operations[0]: remove needs a path");
}

#[test]
fn add_without_value_is_invalid_value() {
    let err = parse_patch(&json!({"Operations": [{"op": "add", "path": "title"}]}), 10).unwrap_err();
    assert_eq!(err.scim_type, Some("invalidValue"));
    assert_eq!(err.detail, "Operations[0].value is required for add");
}

#[test]
fn path_less_replace_needs_an_object_value() {
    let err = parse_patch(&json!({"Operations": [{"op": "replace", "value": "x"}]}), 10).unwrap_err();
    assert_eq!(err.detail, "Operations[0].value must be an object when no path is given");
}

#[test]
fn empty_path_string_counts_as_no_path() {
    let ops =
        parse_patch(&json!({"Operations": [{"op": "replace", "path": "", "value": {"active": false}}]}), 10).unwrap();
    assert!(ops[0].path.is_none());
}
