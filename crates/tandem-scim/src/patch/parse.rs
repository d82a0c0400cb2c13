//! Parsing a PATCH request body (RFC 7644 §3.5.2) into operations, leniently as real IdPs need.

use serde_json::Value;

use crate::error::ScimError;
use crate::json::get_ci;
use crate::path::{parse_path, PatchPath};
use crate::schema::PATCH_OP;

/// The kind of a PATCH operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PatchOpKind {
    /// `add`.
    Add,
    /// `remove`.
    Remove,
    /// `replace`.
    Replace,
}

impl PatchOpKind {
    /// The lowercase keyword.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Add => "add",
            Self::Remove => "remove",
            Self::Replace => "replace",
        }
    }
}

/// One parsed PATCH operation.
#[derive(Clone, Debug, PartialEq)]
pub struct PatchOperation {
    /// What to do.
    pub op: PatchOpKind,
    /// Where; `None` for a path-less `add`/`replace` whose value is an object of attributes.
    pub path: Option<PatchPath>,
    /// The value, as sent.
    pub value: Option<Value>,
}

/// Parses a PATCH body.
///
/// `Operations` is required (its key and the keys of each operation ignore case); `schemas`, when
/// present, must contain the PatchOp URN; `op` ignores case (Microsoft Entra sends `Add`,
/// `Replace`, `Remove`). More than `max_ops` operations is a 400 `invalidValue`. Other errors are
/// 400 `invalidSyntax`, `invalidPath`, `invalidFilter`, `invalidValue` or `noTarget` (a `remove`
/// without path), naming the operation: `Operations[2].op: unknown op "merge"`.
pub fn parse_patch(body: &Value, max_ops: usize) -> Result<Vec<PatchOperation>, ScimError> {
    let map = body.as_object().ok_or_else(|| ScimError::invalid_syntax("PATCH body must be a JSON object"))?;
    if let Some(schemas) = get_ci(map, "schemas") {
        let names_patch_op = schemas
            .as_array()
            .is_some_and(|list| list.iter().any(|s| s.as_str().is_some_and(|s| s.eq_ignore_ascii_case(PATCH_OP))));
        if !names_patch_op {
            return Err(ScimError::invalid_syntax(format!("schemas must contain \"{PATCH_OP}\"")));
        }
    }
    let ops = get_ci(map, "Operations")
        .ok_or_else(|| ScimError::invalid_syntax("Operations is required"))?
        .as_array()
        .ok_or_else(|| ScimError::invalid_syntax("Operations must be an array"))?;
    if ops.is_empty() {
        return Err(ScimError::invalid_value("Operations must contain at least one operation"));
    }
    if ops.len() > max_ops {
        return Err(ScimError::invalid_value(format!(
            "too many operations: {} given, at most {max_ops} allowed",
            ops.len()
        )));
    }
    ops.iter().enumerate().map(|(idx, op)| parse_operation(idx, op)).collect()
}

fn parse_operation(idx: usize, op: &Value) -> Result<PatchOperation, ScimError> {
    let at = format!("Operations[{idx}]");
    let map = op.as_object().ok_or_else(|| ScimError::invalid_syntax(format!("{at} must be an object")))?;
    let kind = match get_ci(map, "op") {
        Some(Value::String(name)) => match name.to_ascii_lowercase().as_str() {
            "add" => PatchOpKind::Add,
            "remove" => PatchOpKind::Remove,
            "replace" => PatchOpKind::Replace,
            _ => return Err(ScimError::invalid_syntax(format!("{at}.op: unknown op \"{name}\""))),
        },
        Some(_) => return Err(ScimError::invalid_syntax(format!("{at}.op must be a string"))),
        None => return Err(ScimError::invalid_syntax(format!("{at}.op is required"))),
    };
    let path = match get_ci(map, "path") {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(parse_path(text).map_err(|e| e.with_prefix(&format!("{at}.path: ")))?),
        Some(_) => return Err(ScimError::invalid_path(format!("{at}.path must be a string"))),
    };
    let value = get_ci(map, "value").cloned();
    match kind {
        PatchOpKind::Remove if path.is_none() => Err(ScimError::no_target(format!("{at}: remove needs a path"))),
        PatchOpKind::Add | PatchOpKind::Replace if value.is_none() => {
            Err(ScimError::invalid_value(format!("{at}.value is required for {}", kind.as_str())))
        }
        PatchOpKind::Add | PatchOpKind::Replace if path.is_none() && !value.as_ref().is_some_and(Value::is_object) => {
            Err(ScimError::invalid_value(format!("{at}.value must be an object when no path is given")))
        }
        _ => Ok(PatchOperation { op: kind, path, value }),
    }
}
