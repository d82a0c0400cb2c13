//! SCIM filters (RFC 7644 §3.4.2.2): the syntax tree, the parser with its limits, and in-memory evaluation.

mod ast;
pub(crate) mod attr_path;
mod compare;
mod eval;
mod lexer;
mod parser;

pub use ast::{AttrPath, CompValue, CompareOp, Filter};
pub use eval::{matches, matches_element};
pub use parser::{parse_filter, parse_filter_with, FilterLimits};
