//! The recursive-descent filter parser (RFC 7644 §3.4.2.2) with length and nesting limits.
//!
//! Precedence is `not` > `and` > `or`; keywords and operators ignore case. Leniency beyond the
//! RFC grammar: an unquoted word that is not `true`, `false`, `null` or a JSON number is taken as a
//! string, because Microsoft Entra sends filters such as `externalId eq abc`. Chains of the same
//! operator (`a or b or c …`) become balanced trees, so long flat lists do not count as deep nesting.

use super::ast::{AttrPath, CompValue, CompareOp, Filter};
use super::attr_path::parse_attr_path;
use super::lexer::{tokenize, Tok, Token};
use crate::error::ScimError;

/// Bounds on filter size, protecting the parser, the evaluator and SQL compilation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FilterLimits {
    /// Longest accepted filter, in characters.
    pub max_len: usize,
    /// Deepest accepted nesting of parentheses, `not`, `and`, `or` and `[…]`.
    pub max_depth: usize,
}

impl Default for FilterLimits {
    fn default() -> Self {
        Self { max_len: 4096, max_depth: 32 }
    }
}

/// Parses a filter with [`FilterLimits::default`].
pub fn parse_filter(input: &str) -> Result<Filter, ScimError> {
    parse_filter_with(input, &FilterLimits::default())
}

/// Parses a filter; every error is a 400 `invalidFilter` whose detail says what and where.
pub fn parse_filter_with(input: &str, limits: &FilterLimits) -> Result<Filter, ScimError> {
    let len = input.chars().count();
    if len > limits.max_len {
        return Err(ScimError::invalid_filter(format!("filter is longer than {} characters", limits.max_len)));
    }
    if input.trim().is_empty() {
        return Err(ScimError::invalid_filter("filter is empty"));
    }
    let mut parser =
        Parser { tokens: tokenize(input)?, next: 0, end: len + 1, limits, nesting: 0, in_value_path: false };
    let filter = parser.parse_or()?;
    match parser.peek() {
        Some(token) => Err(unexpected(token)),
        None => Ok(filter),
    }
}

fn unexpected(token: &Token) -> ScimError {
    ScimError::invalid_filter(format!("unexpected {} at character {}", token.describe(), token.pos))
}

struct Parser<'a> {
    tokens: Vec<Token>,
    next: usize,
    /// Position reported for "end of input".
    end: usize,
    limits: &'a FilterLimits,
    nesting: usize,
    in_value_path: bool,
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next)
    }

    fn peek_keyword(&self, keyword: &str) -> bool {
        matches!(self.peek(), Some(Token { tok: Tok::Word(w), .. }) if w.eq_ignore_ascii_case(keyword))
    }

    fn too_deep(&self) -> ScimError {
        ScimError::invalid_filter(format!("filter is nested deeper than {} levels", self.limits.max_depth))
    }

    fn enter(&mut self) -> Result<(), ScimError> {
        self.nesting += 1;
        if self.nesting > self.limits.max_depth {
            return Err(self.too_deep());
        }
        Ok(())
    }

    fn checked(&self, filter: Filter) -> Result<Filter, ScimError> {
        if filter.depth() > self.limits.max_depth {
            return Err(self.too_deep());
        }
        Ok(filter)
    }

    fn expect_close(&mut self, wanted: Tok, open_pos: usize) -> Result<(), ScimError> {
        match self.peek() {
            Some(token) if token.tok == wanted => {
                self.next += 1;
                self.nesting = self.nesting.saturating_sub(1);
                Ok(())
            }
            Some(token) => Err(unexpected(token)),
            None => {
                let (close, open) = if wanted == Tok::RBracket { ("]", "[") } else { (")", "(") };
                Err(ScimError::invalid_filter(format!(
                    "missing \"{close}\" to close \"{open}\" at character {open_pos}"
                )))
            }
        }
    }

    fn parse_or(&mut self) -> Result<Filter, ScimError> {
        let mut terms = vec![self.parse_and()?];
        while self.peek_keyword("or") {
            self.next += 1;
            terms.push(self.parse_and()?);
        }
        let joined = balanced(terms, Filter::Or).ok_or_else(|| ScimError::invalid_filter("filter is empty"))?;
        self.checked(joined)
    }

    fn parse_and(&mut self) -> Result<Filter, ScimError> {
        let mut terms = vec![self.parse_unary()?];
        while self.peek_keyword("and") {
            self.next += 1;
            terms.push(self.parse_unary()?);
        }
        let joined = balanced(terms, Filter::And).ok_or_else(|| ScimError::invalid_filter("filter is empty"))?;
        self.checked(joined)
    }

    fn parse_group(&mut self, open_pos: usize) -> Result<Filter, ScimError> {
        self.enter()?;
        let inner = self.parse_or()?;
        self.expect_close(Tok::RParen, open_pos)?;
        Ok(inner)
    }

    fn parse_unary(&mut self) -> Result<Filter, ScimError> {
        let Some(token) = self.peek().cloned() else {
            return Err(ScimError::invalid_filter(format!("expected an attribute name at character {}", self.end)));
        };
        self.next += 1;
        match token.tok {
            Tok::LParen => self.parse_group(token.pos),
            Tok::Word(word) if word.eq_ignore_ascii_case("not") => match self.peek().cloned() {
                Some(Token { tok: Tok::LParen, pos }) => {
                    self.next += 1;
                    let inner = self.parse_group(pos)?;
                    self.checked(Filter::Not(Box::new(inner)))
                }
                other => Err(ScimError::invalid_filter(format!(
                    "expected \"(\" after \"not\" at character {}",
                    other.map_or(self.end, |t| t.pos)
                ))),
            },
            Tok::Word(word) => self.parse_attr_expr(&word, token.pos),
            Tok::Str(_) => Err(ScimError::invalid_filter(format!(
                "expected an attribute name at character {}, found {}",
                token.pos,
                token.describe()
            ))),
            _ => Err(unexpected(&token)),
        }
    }

    fn parse_attr_expr(&mut self, word: &str, pos: usize) -> Result<Filter, ScimError> {
        let path =
            parse_attr_path(word).map_err(|msg| ScimError::invalid_filter(format!("{msg} at character {pos}")))?;
        if self.in_value_path && (path.urn.is_some() || path.sub_attr.is_some()) {
            return Err(ScimError::invalid_filter(format!(
                "expected a sub-attribute name inside \"[\" at character {pos}, found \"{word}\""
            )));
        }
        let Some(token) = self.peek().cloned() else {
            return Err(ScimError::invalid_filter(format!(
                "expected a comparison operator after \"{word}\" at character {}",
                self.end
            )));
        };
        match token.tok {
            Tok::LBracket => self.parse_value_path(path, word, token.pos),
            Tok::Word(op) => {
                self.next += 1;
                if op.eq_ignore_ascii_case("pr") {
                    return Ok(Filter::Present(path));
                }
                let op_kind = CompareOp::from_keyword(&op).ok_or_else(|| {
                    ScimError::invalid_filter(format!("unknown operator \"{op}\" at character {}", token.pos))
                })?;
                let value = self.parse_value(&op)?;
                Ok(Filter::Compare { path, op: op_kind, value })
            }
            _ => Err(ScimError::invalid_filter(format!(
                "expected a comparison operator after \"{word}\" at character {}",
                token.pos
            ))),
        }
    }

    fn parse_value_path(&mut self, attr: AttrPath, word: &str, open_pos: usize) -> Result<Filter, ScimError> {
        if self.in_value_path {
            return Err(ScimError::invalid_filter(format!("nested \"[\" at character {open_pos} is not allowed")));
        }
        if attr.sub_attr.is_some() {
            return Err(ScimError::invalid_filter(format!(
                "\"[\" at character {open_pos} cannot follow the sub-attribute path \"{word}\""
            )));
        }
        self.next += 1;
        self.enter()?;
        self.in_value_path = true;
        let inner = self.parse_or()?;
        self.expect_close(Tok::RBracket, open_pos)?;
        // `emails[type eq "work"].value eq "a@b.c"`: not RFC 7644's
        // grammar, but what Microsoft Entra ID (and its SCIM Validator)
        // send for a matching attribute such as emails[type eq "work"].value.
        // Read as `emails[type eq "work" and value eq "a@b.c"]`.
        let inner = match self.peek().cloned() {
            Some(Token { tok: Tok::Word(w), pos }) if w.starts_with('.') && w.len() > 1 => {
                self.next += 1;
                let sub = self.parse_attr_expr(&w[1..], pos + 1)?;
                Filter::And(Box::new(inner), Box::new(sub))
            }
            _ => inner,
        };
        self.in_value_path = false;
        self.checked(Filter::ValuePath { attr, filter: Box::new(inner) })
    }

    fn parse_value(&mut self, op: &str) -> Result<CompValue, ScimError> {
        let Some(token) = self.peek().cloned() else {
            return Err(ScimError::invalid_filter(format!(
                "expected a value after \"{op}\" at character {}",
                self.end
            )));
        };
        let value = match token.tok {
            Tok::Str(text) => CompValue::String(text),
            Tok::Word(word) => word_value(word),
            _ => {
                return Err(ScimError::invalid_filter(format!(
                    "expected a value after \"{op}\" at character {}",
                    token.pos
                )))
            }
        };
        self.next += 1;
        Ok(value)
    }
}

/// `true`/`false`/`null` (any case), a JSON number written as it reads back
/// (`10`, `-2.5`), or else the word itself as a string. A number written
/// otherwise (`1.50`, `1E3`, `007`, past 64 bits) stays text: compared with a
/// string attribute (Entra's unquoted `externalId eq 100000000000000000001`)
/// it must be the text sent, not `1e20`; numeric attributes parse it.
fn word_value(word: String) -> CompValue {
    match word.to_ascii_lowercase().as_str() {
        "true" => return CompValue::Bool(true),
        "false" => return CompValue::Bool(false),
        "null" => return CompValue::Null,
        _ => {}
    }
    match word.parse::<serde_json::Number>() {
        Ok(number) if number.to_string() == word => CompValue::Number(number),
        _ => CompValue::String(word),
    }
}

/// Combines terms of one operator into a balanced tree, keeping their order; `None` only for no terms.
fn balanced(mut terms: Vec<Filter>, join: fn(Box<Filter>, Box<Filter>) -> Filter) -> Option<Filter> {
    if terms.len() <= 1 {
        return terms.pop();
    }
    let right = terms.split_off(terms.len().div_ceil(2));
    Some(join(Box::new(balanced(terms, join)?), Box::new(balanced(right, join)?)))
}
