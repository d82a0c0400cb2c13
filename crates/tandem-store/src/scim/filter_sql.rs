//! RFC 7644 filters compiled to SQL, so a filter is evaluated by the
//! database instead of by loading every resource.
//!
//! The hot attributes (`id`, `userName`, `externalId`, `displayName`,
//! `active`, `meta.created`, `meta.lastModified`) are real, indexed
//! columns; everything else is read from the stored JSON document with each
//! backend's JSON functions (SQLite `json_extract`/`json_each`, PostgreSQL
//! `jsonb`). Group membership (`members`, a user's `groups`) is its own
//! table. No ORM expresses this dynamic, per-backend SQL, so it is built
//! here from static schema names (never from client text) plus bound
//! parameters. Every predicate is made NULL-free so `not` is exact.

use tandem_scim::filter::{AttrPath, CompValue, CompareOp, Filter};
use tandem_scim::schema::{resolve_in_path, AttrType, AttributeDef, ResourceType};
use tandem_scim::ScimError;

/// The SQL flavour to write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

/// A bound parameter.
#[derive(Clone, Debug, PartialEq)]
pub enum Bind {
    Text(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    /// Text or NULL.
    OptText(Option<String>),
    /// An integer or NULL.
    OptInt(Option<i64>),
    /// A boolean or NULL.
    OptBool(Option<bool>),
}

/// Where a bound value goes in built SQL (a control character no schema name
/// or SQL keyword contains).
pub const PLACEHOLDER: char = '\u{1}';

/// Builds one statement: SQL text with placeholders and their values.
pub struct SqlBuilder {
    pub dialect: Dialect,
    pub binds: Vec<Bind>,
    /// Comparisons of the filter being built that read each resource's
    /// document (no indexed column answers them).
    document_terms: usize,
}

/// Most comparisons one filter may make on attributes no indexed column
/// holds. Each reads every candidate resource's stored document, so a
/// filter of hundreds (`emails ew "a" or emails ew "b" or …`) over a large
/// connection ran for minutes and held a pooled connection meanwhile; an
/// IdP sends one or two, on indexed attributes.
pub const MAX_DOCUMENT_TERMS: usize = 16;

impl SqlBuilder {
    pub fn new(dialect: Dialect) -> Self {
        SqlBuilder { dialect, binds: Vec::new(), document_terms: 0 }
    }

    /// Adds a parameter; returns its placeholder ([`PLACEHOLDER`], which
    /// the statement turns into the backend's `?` or `$n`).
    pub fn bind(&mut self, b: Bind) -> String {
        self.binds.push(b);
        PLACEHOLDER.to_string()
    }

    /// `sql` with the backend's own placeholders, as the database sees it.
    pub fn render(&self, sql: &str) -> String {
        let mut out = String::with_capacity(sql.len() + 8);
        for (i, piece) in sql.split(PLACEHOLDER).enumerate() {
            if i > 0 {
                match self.dialect {
                    Dialect::Sqlite => out.push('?'),
                    Dialect::Postgres => out.push_str(&format!("${i}")),
                }
            }
            out.push_str(piece);
        }
        out
    }

    /// The WHERE-clause fragment for `filter` on resources of `rt` aliased `alias`.
    pub fn filter(&mut self, rt: ResourceType, alias: &str, filter: &Filter) -> Result<String, ScimError> {
        let scope = Scope::Root { rt, alias: alias.to_string() };
        self.document_terms = 0;
        let sql = self.node(&scope, filter)?;
        if self.document_terms > MAX_DOCUMENT_TERMS {
            return Err(ScimError::invalid_filter(format!(
                "filter makes {} comparisons that read every resource's stored document or memberships, or \
                 search every resource's text; at most {MAX_DOCUMENT_TERMS} are allowed in one filter \
                 (comparisons of id, userName, externalId and a group's displayName other than co, sw and \
                 ew, and equality on group membership, are not counted: an index serves them)",
                self.document_terms
            )));
        }
        Ok(sql)
    }

    /// Counts `n` comparisons of `target`, when they read each resource's
    /// document or each of its memberships, or go through every resource's
    /// column (see [`MAX_DOCUMENT_TERMS`]): only at the filter's root
    /// (inside a value path the path counts for them). `op` is the
    /// comparison (none for `pr` or a value path), of the sub-attribute
    /// `sub` if any: an equality on a member's id (`members`,
    /// `members.value`; no other sub-attribute is indexed) finds a
    /// membership by its index, and a column's `co`, `sw` and `ew` compare
    /// the lower-cased text of every resource, as no index serves them;
    /// nor does one serve a user's `displayName`, `active` or a time.
    fn note_document_terms(
        &mut self,
        scope: &Scope,
        target: &Target,
        (op, sub): (Option<CompareOp>, Option<&str>),
        n: usize,
    ) {
        let free = match target {
            // An index serves it (a user's displayName, active and the
            // times are columns without one: every resource is read).
            Target::Column { expr, kind, .. } => {
                let indexed = matches!(kind, ColKind::Const(_))
                    || [".id", ".external_id", ".user_name_lower", ".display_name_lower"]
                        .iter()
                        .any(|c| expr.ends_with(c));
                indexed && !matches!(op, Some(CompareOp::Co | CompareOp::Sw | CompareOp::Ew))
            }
            Target::Multi { elem: Some(Scope::Member { .. }), .. } => {
                op == Some(CompareOp::Eq) && sub.is_none_or(|s| s.eq_ignore_ascii_case("value"))
            }
            _ => false,
        };
        if matches!(scope, Scope::Root { .. }) && !free {
            self.document_terms += n;
        }
    }

    fn node(&mut self, scope: &Scope, f: &Filter) -> Result<String, ScimError> {
        Ok(match f {
            Filter::And(a, b) => format!("({} AND {})", self.node(scope, a)?, self.node(scope, b)?),
            Filter::Or(a, b) => format!("({} OR {})", self.node(scope, a)?, self.node(scope, b)?),
            Filter::Not(a) => format!("(NOT {})", self.node(scope, a)?),
            Filter::Present(path) => self.present(scope, path)?,
            Filter::Compare { path, op, value } => self.compare(scope, path, *op, value)?,
            Filter::ValuePath { attr, filter } => self.value_path(scope, attr, filter)?,
        })
    }

    fn present(&mut self, scope: &Scope, path: &AttrPath) -> Result<String, ScimError> {
        let target = scope.target(self.dialect, path)?;
        self.note_document_terms(scope, &target, (None, None), 1);
        self.present_target(target)
    }

    /// [`Self::present`] on the target a path names.
    fn present_target(&mut self, target: Target) -> Result<String, ScimError> {
        match target {
            Target::Column { expr, kind, .. } => Ok(match kind {
                ColKind::Const(_) => "(1 = 1)".into(),
                ColKind::Text | ColKind::TextLower | ColKind::TextCi => {
                    format!("({expr} IS NOT NULL AND {expr} <> '')")
                }
                ColKind::Bool | ColKind::Micros => format!("({expr} IS NOT NULL)"),
            }),
            Target::Json { expr, def } => Ok(match def.ty {
                AttrType::Boolean | AttrType::Integer | AttrType::Decimal => format!("({expr} IS NOT NULL)"),
                AttrType::Complex => format!("({expr} IS NOT NULL AND {expr} <> '{{}}')"),
                _ => format!("({expr} IS NOT NULL AND {expr} <> '')"),
            }),
            Target::Multi { source, elem } => self.multi_present(&source, elem),
        }
    }

    /// Whether a multi-valued attribute holds a value: an element with a
    /// present `value`, or for elements without one to test (a complex
    /// attribute without `value`, such as addresses) any element.
    fn multi_present(&mut self, source: &str, elem: Option<Scope>) -> Result<String, ScimError> {
        match elem {
            Some(inner) if inner.has_value() => {
                let pred =
                    self.present(&inner, &AttrPath { urn: None, attr: inner.sub_name().to_string(), sub_attr: None })?;
                Ok(format!("EXISTS (SELECT 1 FROM {source} AND {pred})"))
            }
            _ => Ok(format!("EXISTS (SELECT 1 FROM {source})")),
        }
    }

    fn value_path(&mut self, scope: &Scope, attr: &AttrPath, inner: &Filter) -> Result<String, ScimError> {
        let path = AttrPath { urn: attr.urn.clone(), attr: attr.attr.clone(), sub_attr: None };
        // A single-valued complex attribute is its one value: `name[givenName
        // eq "Bob"]` is `name.givenName eq "Bob"` where `name` is present,
        // as the evaluator reads it (brackets on an absent attribute match
        // nothing, `name[not (givenName pr)]` included).
        if let Scope::Root { rt, .. } = scope {
            let single_complex = resolve_in_path(*rt, path.urn.as_deref(), &path.attr, None)
                .is_some_and(|r| r.sub.is_none() && r.attr.ty == AttrType::Complex && !r.attr.multi_valued);
            if single_complex {
                let inside = self.node(scope, &under(&path, inner)?)?;
                let held = self.present_target(scope.target(self.dialect, &path)?)?;
                return Ok(format!("({held} AND {inside})"));
            }
        }
        let target = scope.target(self.dialect, &path)?;
        // Each comparison inside a value path runs on every element.
        self.note_document_terms(scope, &target, (None, None), inner.comparisons());
        match target {
            Target::Multi { source, .. } => {
                let elem = scope.element_scope(self.dialect, &path)?;
                let pred = self.node(&elem, inner)?;
                Ok(format!("EXISTS (SELECT 1 FROM {source} AND {pred})"))
            }
            _ => Err(ScimError::invalid_filter(format!(
                "{} is not a complex attribute; \"[...]\" filters need one",
                attr.attr
            ))),
        }
    }

    fn compare(
        &mut self,
        scope: &Scope,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<String, ScimError> {
        let target = scope.target(self.dialect, path)?;
        self.note_document_terms(scope, &target, (Some(op), path.sub_attr.as_deref()), 1);
        self.compare_target(target, path, op, value)
    }

    /// [`Self::compare`] on the target `path` names.
    fn compare_target(
        &mut self,
        target: Target,
        path: &AttrPath,
        op: CompareOp,
        value: &CompValue,
    ) -> Result<String, ScimError> {
        if op == CompareOp::Ne {
            let eq = self.compare_target(target, path, CompareOp::Eq, value)?;
            return Ok(format!("(NOT {eq})"));
        }
        // `eq null` is "holds no value", `pr`'s negation (an empty string
        // holds none), and `ne null`, its negation, "holds one", as the
        // resource's own evaluation reads them.
        if op == CompareOp::Eq && matches!(value, CompValue::Null) {
            return Ok(format!("(NOT {})", self.present_target(target)?));
        }
        match target {
            Target::Column { expr, kind, nullable } => self.column_compare(&expr, kind, nullable, op, value, path),
            Target::Json { expr, def } => self.json_compare(&expr, def, op, value, path),
            // No other comparison with null matches.
            Target::Multi { .. } if matches!(value, CompValue::Null) => Ok("(1 = 0)".into()),
            Target::Multi { source, elem } => {
                let inner = match elem {
                    // Nothing to compare the value with (addresses has no `value`): no match.
                    Some(inner) if inner.has_value() => inner,
                    _ => return Ok("(1 = 0)".into()),
                };
                let sub = AttrPath { urn: None, attr: inner.sub_name().to_string(), sub_attr: None };
                let pred = self.compare(&inner, &sub, op, value)?;
                Ok(format!("EXISTS (SELECT 1 FROM {source} AND {pred})"))
            }
        }
    }

    fn column_compare(
        &mut self,
        expr: &str,
        kind: ColKind,
        nullable: bool,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, ScimError> {
        match kind {
            ColKind::Const(c) => {
                let v = match value {
                    CompValue::String(s) => s.as_str(),
                    _ => return Ok("(1 = 0)".into()),
                };
                let hit = match op {
                    CompareOp::Eq => c.eq_ignore_ascii_case(v),
                    CompareOp::Co => c.to_lowercase().contains(&v.to_lowercase()),
                    CompareOp::Sw => c.to_lowercase().starts_with(&v.to_lowercase()),
                    CompareOp::Ew => c.to_lowercase().ends_with(&v.to_lowercase()),
                    _ => false,
                };
                Ok(if hit { "(1 = 1)".into() } else { "(1 = 0)".into() })
            }
            ColKind::Bool => {
                let Some(b) = as_bool(value) else {
                    return match value {
                        CompValue::Null if op == CompareOp::Eq => Ok(format!("({expr} IS NULL)")),
                        _ => Err(type_error(path, "true or false")),
                    };
                };
                if op != CompareOp::Eq {
                    return not_on_booleans(op, path);
                }
                let p = self.bind(Bind::Bool(b));
                Ok(format!("({expr} = {p})"))
            }
            ColKind::Micros => {
                let CompValue::String(s) = value else {
                    return match value {
                        CompValue::Null if op == CompareOp::Eq => Ok(format!("({expr} IS NULL)")),
                        _ => Err(type_error(path, "a date-time like \"2026-01-01T00:00:00Z\"")),
                    };
                };
                // As the in-memory comparison reads it: RFC 3339, or a date
                // alone or without an offset, taken as UTC.
                let t = tandem_scim::instant_micros(s)
                    .ok_or_else(|| type_error(path, "a date-time like \"2026-01-01T00:00:00Z\""))?;
                // Stored in microseconds, shown in milliseconds (`format_time`):
                // compared as shown, so that a value read off a resource finds
                // it again (`eq`) and `gt` it does not (a delta sync's cursor).
                let Some(range) = as_shown(op, t) else { return Ok("(1 = 0)".into()) };
                let mut parts = Vec::new();
                if let Some(from) = range.from {
                    parts.push(format!("{expr} >= {}", self.bind(Bind::Int(from))));
                }
                if let Some(until) = range.until {
                    parts.push(format!("{expr} < {}", self.bind(Bind::Int(until))));
                }
                Ok(format!("({})", parts.join(" AND ")))
            }
            ColKind::Text | ColKind::TextLower | ColKind::TextCi => {
                let (compared, fold) = match kind {
                    ColKind::Text => (expr.to_string(), Fold::None),
                    ColKind::TextLower => (expr.to_string(), Fold::Stored),
                    _ => (format!("lower({expr})"), Fold::Sql),
                };
                let guard = if nullable { Guard::Nullable(expr) } else { Guard::NotNull };
                self.text_compare(&compared, fold, guard, op, value, path)
            }
        }
    }

    fn json_compare(
        &mut self,
        expr: &str,
        def: &AttributeDef,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, ScimError> {
        if let CompValue::Null = value {
            return Ok(if op == CompareOp::Eq { format!("({expr} IS NULL)") } else { "(1 = 0)".into() });
        }
        match def.ty {
            AttrType::Boolean => {
                let Some(b) = as_bool(value) else {
                    return Err(type_error(path, "true or false"));
                };
                if op != CompareOp::Eq {
                    return not_on_booleans(op, path);
                }
                Ok(match self.dialect {
                    Dialect::Sqlite => format!("COALESCE({expr} = {}, FALSE)", if b { 1 } else { 0 }),
                    Dialect::Postgres => format!("COALESCE({expr} = '{}', FALSE)", if b { "true" } else { "false" }),
                })
            }
            AttrType::Integer | AttrType::Decimal => {
                let n = match value {
                    CompValue::Number(n) => n.as_f64(),
                    CompValue::String(s) => s.parse::<f64>().ok(),
                    _ => None,
                }
                .ok_or_else(|| type_error(path, "a number"))?;
                let sql_op = match op {
                    CompareOp::Eq => "=",
                    CompareOp::Gt => ">",
                    CompareOp::Ge => ">=",
                    CompareOp::Lt => "<",
                    CompareOp::Le => "<=",
                    _ => return Ok("(1 = 0)".into()),
                };
                let p = self.bind(Bind::Float(n));
                let e = match self.dialect {
                    Dialect::Sqlite => expr.to_string(),
                    Dialect::Postgres => format!("CAST({expr} AS DOUBLE PRECISION)"),
                };
                Ok(format!("COALESCE({e} {sql_op} {p}, FALSE)"))
            }
            AttrType::Complex => Ok("(1 = 0)".into()),
            _ => {
                let (e, fold) =
                    if def.case_exact { (expr.to_string(), Fold::None) } else { (format!("lower({expr})"), Fold::Sql) };
                self.text_compare(&e, fold, Guard::Coalesce, op, value, path)
            }
        }
    }

    fn text_compare(
        &mut self,
        expr: &str,
        fold: Fold,
        guard: Guard<'_>,
        op: CompareOp,
        value: &CompValue,
        path: &AttrPath,
    ) -> Result<String, ScimError> {
        let raw = match value {
            CompValue::String(s) => s.clone(),
            CompValue::Number(n) => n.to_string(),
            CompValue::Bool(b) => b.to_string(),
            CompValue::Null => {
                return Ok(if op == CompareOp::Eq { format!("({expr} IS NULL)") } else { "(1 = 0)".into() });
            }
        };
        let _ = path;
        // The value, folded the way the column is. Lengths are taken in SQL
        // (`length(v)`) because folding may change a string's length.
        let val = |this: &mut Self| match fold {
            Fold::None => this.bind(Bind::Text(raw.clone())),
            Fold::Stored => this.bind(Bind::Text(raw.to_lowercase())),
            Fold::Sql => format!("lower({})", this.bind(Bind::Text(raw.clone()))),
        };
        let ordered = match self.dialect {
            Dialect::Sqlite => expr.to_string(),
            // Byte order, as SQLite compares, whatever the database's collation.
            Dialect::Postgres => format!("({expr}) COLLATE \"C\""),
        };
        let position = match self.dialect {
            Dialect::Sqlite => "instr",
            Dialect::Postgres => "strpos",
        };
        let pred = match op {
            CompareOp::Eq => format!("{expr} = {}", val(self)),
            CompareOp::Co => format!("{position}({expr}, {}) > 0", val(self)),
            // The first occurrence is at the start exactly when it starts with it.
            CompareOp::Sw => format!("{position}({expr}, {}) = 1", val(self)),
            CompareOp::Ew => {
                let (a, b, c) = (val(self), val(self), val(self));
                format!("(length({expr}) >= length({a}) AND substr({expr}, length({expr}) - length({b}) + 1) = {c})")
            }
            CompareOp::Gt => format!("{ordered} > {}", val(self)),
            CompareOp::Ge => format!("{ordered} >= {}", val(self)),
            CompareOp::Lt => format!("{ordered} < {}", val(self)),
            CompareOp::Le => format!("{ordered} <= {}", val(self)),
            CompareOp::Ne => unreachable_ne(),
        };
        Ok(guard.wrap(&pred))
    }
}

/// How a text comparison ignores case (`caseExact: false`).
#[derive(Clone, Copy)]
enum Fold {
    /// Compared as stored.
    None,
    /// The column holds the value lower-cased by Tandem (`str::to_lowercase`),
    /// so the filter's value is lower-cased the same way.
    Stored,
    /// Both sides through the database's `lower()`: on SQLite the store's
    /// own (`conn.rs`, the same `str::to_lowercase`), on PostgreSQL the
    /// database's, which folds by its LC_CTYPE.
    Sql,
}

/// How a predicate is kept free of NULL (so `not` is exact) — without
/// hiding an indexed column from the planner.
#[derive(Clone, Copy)]
enum Guard<'a> {
    /// A JSON expression: `COALESCE(pred, FALSE)`.
    Coalesce,
    /// A NOT NULL column: the bare predicate (index-friendly).
    NotNull,
    /// A nullable column: `(col IS NOT NULL AND pred)` (index-friendly).
    Nullable(&'a str),
}

impl Guard<'_> {
    fn wrap(self, pred: &str) -> String {
        match self {
            Guard::Coalesce => format!("COALESCE({pred}, FALSE)"),
            Guard::NotNull => format!("({pred})"),
            Guard::Nullable(col) => format!("({col} IS NOT NULL AND {pred})"),
        }
    }
}

fn unreachable_ne() -> String {
    // `ne` is rewritten as NOT(eq) before reaching here.
    "1 = 0".into()
}

fn as_bool(v: &CompValue) -> Option<bool> {
    match v {
        CompValue::Bool(b) => Some(*b),
        CompValue::String(s) if s.eq_ignore_ascii_case("true") => Some(true),
        CompValue::String(s) if s.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The stored microseconds whose value as shown (whole milliseconds, cut
/// down) compares `op` with `value_us`: `[from, until)`, either end open;
/// `None` when none does (`eq` a value with a fraction of a millisecond, or
/// an operator dates do not have).
fn as_shown(op: CompareOp, value_us: i64) -> Option<MicrosRange> {
    let floor = value_us.div_euclid(1000) * 1000;
    let ceil = if floor == value_us { floor } else { floor.saturating_add(1000) };
    let next = floor.saturating_add(1000);
    let (from, until) = match op {
        CompareOp::Eq if floor == value_us => (Some(floor), Some(next)),
        CompareOp::Gt => (Some(next), None),
        CompareOp::Ge => (Some(ceil), None),
        CompareOp::Lt => (None, Some(ceil)),
        CompareOp::Le => (None, Some(next)),
        _ => return None,
    };
    Some(MicrosRange { from, until })
}

/// A range of stored microseconds: `from` included, `until` not.
#[derive(Debug, PartialEq, Eq)]
struct MicrosRange {
    from: Option<i64>,
    until: Option<i64>,
}

/// RFC 7644 §3.4.2.2: `gt`, `ge`, `lt` and `le` on a boolean are an
/// `invalidFilter`; `co`, `sw` and `ew` match nothing.
fn not_on_booleans(op: CompareOp, path: &AttrPath) -> Result<String, ScimError> {
    match op {
        CompareOp::Gt | CompareOp::Ge | CompareOp::Lt | CompareOp::Le => Err(ScimError::invalid_filter(format!(
            "{path} is a boolean: gt, ge, lt and le do not apply to it (RFC 7644 §3.4.2.2)"
        ))),
        _ => Ok("(1 = 0)".into()),
    }
}

fn type_error(path: &AttrPath, expected: &str) -> ScimError {
    ScimError::invalid_filter(format!("{} must be compared with {expected}", path))
}

/// How an indexed column holds its value.
#[derive(Clone, Copy, Debug)]
enum ColKind {
    /// Text compared as stored.
    Text,
    /// Text stored lower-cased (compare with a lower-cased value).
    TextLower,
    /// Text compared case-insensitively via `lower()`.
    TextCi,
    Bool,
    /// Microseconds since the epoch.
    Micros,
    /// A value every row shares (`meta.resourceType`).
    Const(&'static str),
}

/// What a path names.
enum Target {
    Column {
        expr: String,
        kind: ColKind,
        nullable: bool,
    },
    Json {
        expr: String,
        def: &'static AttributeDef,
    },
    /// Rows of a multi-valued attribute: `source` is a FROM … WHERE prefix
    /// (always ending in a condition, so callers append `AND pred`);
    /// `elem` is the scope of one element when a sub-attribute is compared.
    Multi {
        source: String,
        elem: Option<Scope>,
    },
}

/// Where names in a filter are resolved.
#[derive(Clone)]
enum Scope {
    Root {
        rt: ResourceType,
        alias: String,
    },
    /// One element of a JSON array; `var` is the element's SQL name.
    JsonElem {
        parent: &'static AttributeDef,
        var: String,
        sub: Option<&'static str>,
    },
    /// One row of scim_group_members (`m`), optionally joined to scim_groups (`gg`).
    Member {
        var: String,
        user_groups: bool,
        sub: Option<&'static str>,
    },
}

/// `inner`, a value filter's, with each path made a sub-attribute path of
/// `attr` (a single-valued complex attribute).
fn under(attr: &AttrPath, inner: &Filter) -> Result<Filter, ScimError> {
    let sub = |p: &AttrPath| -> Result<AttrPath, ScimError> {
        if p.urn.is_some() || p.sub_attr.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "inside \"{}[...]\" name a sub-attribute of {} alone, not {p}",
                attr.attr, attr.attr
            )));
        }
        Ok(AttrPath { urn: attr.urn.clone(), attr: attr.attr.clone(), sub_attr: Some(p.attr.clone()) })
    };
    Ok(match inner {
        Filter::And(a, b) => Filter::And(Box::new(under(attr, a)?), Box::new(under(attr, b)?)),
        Filter::Or(a, b) => Filter::Or(Box::new(under(attr, a)?), Box::new(under(attr, b)?)),
        Filter::Not(a) => Filter::Not(Box::new(under(attr, a)?)),
        Filter::Present(p) => Filter::Present(sub(p)?),
        Filter::Compare { path, op, value } => Filter::Compare { path: sub(path)?, op: *op, value: value.clone() },
        Filter::ValuePath { .. } => return Err(ScimError::invalid_filter("\"[...]\" filters cannot be nested")),
    })
}

fn json_path_sqlite(keys: &[&str]) -> String {
    let mut p = String::from("$");
    for k in keys {
        p.push_str(&format!(".\"{k}\""));
    }
    p
}

fn json_path_pg(keys: &[&str]) -> String {
    let quoted: Vec<String> = keys.iter().map(|k| format!("\"{k}\"")).collect();
    format!("'{{{}}}'", quoted.join(","))
}

impl Scope {
    /// Whether an element has the sub-attribute [`Scope::sub_name`] names
    /// (a complex attribute without `value`, such as addresses, has none).
    fn has_value(&self) -> bool {
        match self {
            Scope::JsonElem { parent, sub: None, .. } if parent.ty == AttrType::Complex => {
                parent.sub_attribute("value").is_some()
            }
            _ => true,
        }
    }

    fn sub_name(&self) -> &'static str {
        match self {
            Scope::JsonElem { sub, .. } | Scope::Member { sub, .. } => sub.unwrap_or("value"),
            Scope::Root { .. } => "value",
        }
    }

    fn target(&self, dialect: Dialect, path: &AttrPath) -> Result<Target, ScimError> {
        match self {
            Scope::Root { rt, alias } => root_target(dialect, *rt, alias, path),
            Scope::JsonElem { parent, var, .. } if parent.ty != AttrType::Complex => {
                // A simple multi-valued attribute: the element is the value.
                let expr = match dialect {
                    Dialect::Sqlite => format!("{var}.value"),
                    Dialect::Postgres => format!("({var}.value #>> '{{}}')"),
                };
                Ok(Target::Json { expr, def: parent })
            }
            Scope::JsonElem { parent, var, .. } => {
                let sub = parent.sub_attribute(&path.attr).ok_or_else(|| {
                    ScimError::invalid_filter(format!("{} has no sub-attribute \"{}\"", parent.name, path.attr))
                })?;
                let expr = match dialect {
                    Dialect::Sqlite => format!("json_extract({var}.value, '{}')", json_path_sqlite(&[sub.name])),
                    Dialect::Postgres => format!("({var}.value ->> '{}')", sub.name),
                };
                Ok(Target::Json { expr, def: sub })
            }
            Scope::Member { var, user_groups, .. } => {
                let name = path.attr.to_ascii_lowercase();
                let (expr, kind, nullable) =
                    match (name.as_str(), user_groups) {
                        ("value", false) => (format!("{var}.member_id"), ColKind::Text, false),
                        ("value", true) => (format!("{var}.group_id"), ColKind::Text, false),
                        ("type", false) => (format!("{var}.member_type"), ColKind::TextCi, false),
                        ("type", true) => (String::new(), ColKind::Const("direct"), false),
                        ("display", true) => ("gg.display_name".into(), ColKind::TextCi, false),
                        // The display the group shows (see `groups::members_of`): the
                        // one the IdP sent with the member, else the member's own.
                        ("display", false) => (
                            format!(
                                "COALESCE({var}.display, (SELECT COALESCE(mu.display_name, mu.user_name) FROM \
                                 scim_users mu WHERE {var}.member_type = 'User' AND mu.id = {var}.member_id), (SELECT \
                                 mg.display_name FROM scim_groups mg WHERE {var}.member_type = 'Group' AND mg.id = \
                                 {var}.member_id))"
                            ),
                            ColKind::TextCi,
                            true,
                        ),
                        ("$ref", _) => return Err(ScimError::invalid_filter(
                            "members.$ref cannot be filtered on (it is built from the member's id: filter on value)",
                        )),
                        _ => {
                            return Err(ScimError::invalid_filter(format!(
                                "unknown sub-attribute \"{}\" of members",
                                path.attr
                            )))
                        }
                    };
                Ok(Target::Column { expr, kind, nullable })
            }
        }
    }

    fn element_scope(&self, dialect: Dialect, path: &AttrPath) -> Result<Scope, ScimError> {
        match root_target(dialect, self.root_rt()?, self.root_alias()?, path)? {
            Target::Multi { elem: Some(e), .. } => Ok(e),
            _ => Err(ScimError::invalid_filter(format!("{} is not a multi-valued attribute", path.attr))),
        }
    }

    fn root_rt(&self) -> Result<ResourceType, ScimError> {
        match self {
            Scope::Root { rt, .. } => Ok(*rt),
            _ => Err(ScimError::invalid_filter("\"[...]\" filters cannot be nested")),
        }
    }

    fn root_alias(&self) -> Result<&str, ScimError> {
        match self {
            Scope::Root { alias, .. } => Ok(alias),
            _ => Err(ScimError::invalid_filter("\"[...]\" filters cannot be nested")),
        }
    }
}

fn unknown(path: &AttrPath) -> ScimError {
    ScimError::invalid_filter(format!("unknown attribute \"{path}\" in filter"))
}

/// `schemas`: no schema lists it as an attribute, but every resource has it,
/// and RFC 7644 §3.4.2.2 filters on it in its own examples (`schemas eq
/// "urn:…:enterprise:2.0:User"`: the users with enterprise data).
static SCHEMAS_ATTR: AttributeDef = AttributeDef::string("schemas", "The schema URIs of the resource.").multi();

/// The rows of the JSON array at `keys` of the stored resource.
fn json_elements(dialect: Dialect, alias: &str, keys: &[&str]) -> String {
    match dialect {
        Dialect::Sqlite => format!("json_each({alias}.resource, '{}') AS e WHERE 1 = 1", json_path_sqlite(keys)),
        Dialect::Postgres => {
            let p = json_path_pg(keys);
            format!(
                "jsonb_array_elements(CASE WHEN jsonb_typeof(CAST({alias}.resource AS jsonb) #> {p}) = 'array' \
                 THEN CAST({alias}.resource AS jsonb) #> {p} ELSE '[]'::jsonb END) AS e(value) WHERE 1 = 1"
            )
        }
    }
}

fn root_target(dialect: Dialect, rt: ResourceType, alias: &str, path: &AttrPath) -> Result<Target, ScimError> {
    if path.urn.is_none() && path.sub_attr.is_none() && path.attr.eq_ignore_ascii_case("schemas") {
        let elem = Scope::JsonElem { parent: &SCHEMAS_ATTR, var: "e".to_string(), sub: None };
        return Ok(Target::Multi { source: json_elements(dialect, alias, &["schemas"]), elem: Some(elem) });
    }
    if let Some(urn) = path.urn.as_deref().filter(|u| tandem_scim::is_custom_urn(rt, u)) {
        return Err(ScimError::invalid_filter(format!(
            "filters cannot compare \"{path}\": the attributes of a custom extension are kept as the IdP sent \
             them, without a schema saying how to compare them; `schemas eq \"{urn}\"` finds the resources \
             that hold that extension"
        )));
    }
    let mut resolved =
        resolve_in_path(rt, path.urn.as_deref(), &path.attr, path.sub_attr.as_deref()).ok_or_else(|| unknown(path))?;
    // A singular complex attribute compared as a whole compares its `value`
    // (`manager eq "…"`, as Entra ID checks a manager before it writes one).
    if resolved.sub.is_none() && !resolved.attr.multi_valued {
        resolved.sub = resolved.attr.compared_value();
    }
    let attr = resolved.attr.name;
    let sub = resolved.sub.map(|s| s.name);
    // Indexed columns first.
    let column = match (rt, attr, sub) {
        (_, "id", None) => Some((format!("{alias}.id"), ColKind::Text)),
        (_, "externalId", None) => Some((format!("{alias}.external_id"), ColKind::Text)),
        (ResourceType::User, "userName", None) => Some((format!("{alias}.user_name_lower"), ColKind::TextLower)),
        (ResourceType::User, "displayName", None) => Some((format!("{alias}.display_name"), ColKind::TextCi)),
        (ResourceType::User, "active", None) => Some((format!("{alias}.active"), ColKind::Bool)),
        (ResourceType::Group, "displayName", None) => Some((format!("{alias}.display_name_lower"), ColKind::TextLower)),
        (_, "meta", Some("created")) => Some((format!("{alias}.created_at"), ColKind::Micros)),
        (_, "meta", Some("lastModified")) => Some((format!("{alias}.updated_at"), ColKind::Micros)),
        (ResourceType::User, "meta", Some("resourceType")) => Some((String::new(), ColKind::Const("User"))),
        (ResourceType::Group, "meta", Some("resourceType")) => Some((String::new(), ColKind::Const("Group"))),
        (_, "meta", _) => return Err(ScimError::invalid_filter(format!("filtering on {path} is not supported"))),
        _ => None,
    };
    if let Some((expr, kind)) = column {
        // Of the indexed columns only externalId and a user's displayName may be NULL.
        let nullable = expr.ends_with(".external_id") || expr == format!("{alias}.display_name");
        return Ok(Target::Column { expr, kind, nullable });
    }
    // Membership lives in its own table.
    if matches!((rt, attr), (ResourceType::User, "groups") | (ResourceType::Group, "members")) {
        let user_groups = rt == ResourceType::User;
        let var = "m".to_string();
        let source = if user_groups {
            format!("scim_group_members m JOIN scim_groups gg ON gg.id = m.group_id WHERE m.member_id = {alias}.id")
        } else {
            format!("scim_group_members m WHERE m.group_id = {alias}.id")
        };
        let elem = Scope::Member { var, user_groups, sub };
        return Ok(Target::Multi { source, elem: Some(elem) });
    }
    let mut keys: Vec<&str> = Vec::new();
    if let Some(urn) = resolved.container {
        keys.push(urn);
    }
    keys.push(attr);
    let def = resolved.attr;
    if def.multi_valued {
        let var = "e".to_string();
        let source = json_elements(dialect, alias, &keys);
        let sub = if def.ty == AttrType::Complex {
            resolved.sub.map(|s| s.name).or_else(|| def.sub_attribute("value").map(|s| s.name))
        } else {
            None
        };
        let elem = Scope::JsonElem { parent: def, var, sub };
        return Ok(Target::Multi { source, elem: Some(elem) });
    }
    if let Some(s) = resolved.sub {
        keys.push(s.name);
    }
    let leaf = resolved.sub.unwrap_or(def);
    let expr = match dialect {
        Dialect::Sqlite => format!("json_extract({alias}.resource, '{}')", json_path_sqlite(&keys)),
        Dialect::Postgres => format!("(CAST({alias}.resource AS jsonb) #>> {})", json_path_pg(&keys)),
    };
    Ok(Target::Json { expr, def: leaf })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tandem_scim::filter::parse_filter;

    #[test]
    fn dates_compare_as_shown_to_the_millisecond() {
        let r = |from, until| Some(MicrosRange { from, until });
        // A value read off a resource (whole milliseconds).
        let v = 1_700_000_000_123_000;
        assert_eq!(as_shown(CompareOp::Eq, v), r(Some(v), Some(v + 1000)));
        assert_eq!(as_shown(CompareOp::Gt, v), r(Some(v + 1000), None));
        assert_eq!(as_shown(CompareOp::Ge, v), r(Some(v), None));
        assert_eq!(as_shown(CompareOp::Lt, v), r(None, Some(v)));
        assert_eq!(as_shown(CompareOp::Le, v), r(None, Some(v + 1000)));
        // One with a fraction of a millisecond: nothing shown equals it.
        let w = v + 456;
        assert_eq!(as_shown(CompareOp::Eq, w), None);
        assert_eq!(as_shown(CompareOp::Gt, w), r(Some(v + 1000), None));
        assert_eq!(as_shown(CompareOp::Ge, w), r(Some(v + 1000), None));
        assert_eq!(as_shown(CompareOp::Lt, w), r(None, Some(v + 1000)));
        assert_eq!(as_shown(CompareOp::Le, w), r(None, Some(v + 1000)));
        // Before 1970 the cut is still downwards.
        assert_eq!(as_shown(CompareOp::Gt, -1_500), r(Some(-1000), None));
        assert_eq!(as_shown(CompareOp::Co, v), None);
    }

    fn sql(d: Dialect, f: &str) -> (String, Vec<Bind>) {
        let mut b = SqlBuilder::new(d);
        let s = b.filter(ResourceType::User, "u", &parse_filter(f).unwrap()).unwrap();
        (b.render(&s), b.binds)
    }

    /// At most [`MAX_DOCUMENT_TERMS`] comparisons read the document or a
    /// column's text; those by index (a column's equality, order or
    /// presence, membership by equality) are not counted.
    #[test]
    fn a_filter_makes_at_most_sixteen_comparisons_on_the_document() {
        let build =
            |rt: ResourceType, f: &str| SqlBuilder::new(Dialect::Postgres).filter(rt, "u", &parse_filter(f).unwrap());
        let chain =
            |term: &str, n: usize| (0..n).map(|i| term.replace('#', &i.to_string())).collect::<Vec<_>>().join(" or ");
        assert!(build(ResourceType::User, &chain("emails ew \"z#\"", 16)).is_ok());
        let err = build(ResourceType::User, &chain("emails ew \"z#\"", 17)).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidFilter"));
        assert!(err.detail.starts_with("filter makes 17 comparisons that read every resource"), "{}", err.detail);
        // Each comparison in a value path counts; `ne`, `pr` and `not` count like the rest.
        let mixed = format!(
            "{} or emails[type eq \"work\" and value co \"x\"] or not (title pr)",
            chain("title ne \"t#\"", 15)
        );
        assert_eq!(
            build(ResourceType::User, &mixed).unwrap_err().detail.split(" comparisons").next(),
            Some("filter makes 18")
        );
        // Indexed columns and membership by equality are free.
        let indexed =
            build(ResourceType::User, &chain("id eq \"#\" or userName eq \"u#\" or externalId eq \"x#\"", 25));
        assert!(indexed.is_ok(), "{:?}", indexed.err());
        assert!(build(ResourceType::Group, &chain("members eq \"#\" or displayName eq \"g#\"", 40)).is_ok());
        let present = build(ResourceType::Group, &chain("displayName pr or externalId gt \"#\"", 20));
        assert!(present.is_ok(), "order and presence on an indexed column are free: {:?}", present.err());
        // A user's displayName, active and the times have no index: counted.
        for term in ["meta.lastModified gt \"2026-01-01T00:00:00.#Z\"", "displayName eq \"#\"", "active eq true"] {
            assert!(build(ResourceType::User, &chain(term, 16)).is_ok(), "{term}");
            assert!(build(ResourceType::User, &chain(term, 17)).is_err(), "{term}");
        }
        // A column's co, sw and ew go through every resource's lower-cased text: counted.
        assert!(build(ResourceType::User, &chain("displayName co \"a#\"", 16)).is_ok());
        let err = build(ResourceType::User, &chain("displayName co \"a#\"", 17)).unwrap_err();
        assert!(err.detail.starts_with("filter makes 17 comparisons"), "{}", err.detail);
        assert!(build(ResourceType::Group, &chain("displayName sw \"g#\"", 17)).is_err());
        // Of a membership only the id is indexed: an equality on its display counts.
        assert!(build(ResourceType::Group, &chain("members.value eq \"#\"", 40)).is_ok());
        assert!(build(ResourceType::Group, &chain("members.display eq \"d#\"", 17)).is_err());
        assert!(build(ResourceType::User, &chain("groups.value eq \"#\"", 100)).is_ok());
        // Membership read by anything but equality is counted, and so is
        // each comparison inside a value path.
        assert!(build(ResourceType::Group, &chain("members co \"#\"", 17)).is_err());
        let inside = format!("emails[{}]", chain("value co \"#\"", 17));
        assert!(build(ResourceType::User, &inside).unwrap_err().detail.starts_with("filter makes 17 "));
    }

    #[test]
    fn user_name_eq_uses_the_lower_cased_indexed_column() {
        let (s, binds) = sql(Dialect::Sqlite, "userName eq \"Alice@Example.com\"");
        assert_eq!(s, "(u.user_name_lower = ?)", "no wrapper the planner cannot see through");
        assert_eq!(binds, [Bind::Text("alice@example.com".into())]);
    }

    #[test]
    fn postgres_placeholders_are_numbered() {
        let (s, _) = sql(Dialect::Postgres, "userName eq \"a\" and externalId eq \"b\"");
        assert!(s.contains("$1") && s.contains("$2"), "{s}");
    }

    #[test]
    fn ne_is_the_negation_of_eq() {
        let (s, _) = sql(Dialect::Sqlite, "externalId ne \"x\"");
        assert_eq!(s, "(NOT (u.external_id IS NOT NULL AND u.external_id = ?))");
    }

    #[test]
    fn value_path_becomes_an_exists_over_the_elements() {
        let (s, binds) = sql(Dialect::Sqlite, "emails[type eq \"work\" and value co \"@example.com\"]");
        assert!(s.starts_with("EXISTS (SELECT 1 FROM json_each(u.resource, '$.\"emails\"') AS e"), "{s}");
        assert_eq!(binds.len(), 2);
    }

    #[test]
    fn a_single_valued_complex_attribute_in_brackets_is_its_one_value() {
        let (s, binds) = sql(Dialect::Sqlite, "name[givenName eq \"Bob\" and not (familyName pr)]");
        assert!(!s.contains("EXISTS"), "{s}");
        assert_eq!(binds.len(), 1);
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        let err = b.filter(ResourceType::User, "u", &parse_filter("userName[value eq \"x\"]").unwrap()).unwrap_err();
        assert!(err.detail.contains("not a complex attribute"), "{}", err.detail);
    }

    #[test]
    fn a_custom_extension_attribute_cannot_be_compared() {
        let filter = parse_filter("urn:ietf:params:scim:schemas:extension:Custom:2.0:User:costCode eq \"7\"").unwrap();
        let err = SqlBuilder::new(Dialect::Sqlite).filter(ResourceType::User, "u", &filter).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidFilter"));
        assert!(err.detail.starts_with("filters cannot compare \"urn:"), "{}", err.detail);
        assert!(err.detail.ends_with("finds the resources that hold that extension"), "{}", err.detail);
    }

    #[test]
    fn unknown_attribute_is_an_invalid_filter_naming_it() {
        let mut b = SqlBuilder::new(Dialect::Sqlite);
        let err = b.filter(ResourceType::User, "u", &parse_filter("shoeSize gt 3").unwrap()).unwrap_err();
        assert_eq!(err.scim_type, Some("invalidFilter"));
        assert!(err.detail.contains("shoeSize"));
    }

    #[test]
    fn enterprise_attributes_read_the_urn_container() {
        let (s, _) = sql(
            Dialect::Postgres,
            "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq \"m1\"",
        );
        assert!(
            s.contains("'{\"urn:ietf:params:scim:schemas:extension:enterprise:2.0:User\",\"manager\",\"value\"}'"),
            "{s}"
        );
    }
}
