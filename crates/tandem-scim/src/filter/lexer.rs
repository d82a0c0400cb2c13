//! Splitting filter text into tokens: brackets, JSON strings and bare words, each with its character position.

use crate::error::ScimError;

/// A token kind.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Tok {
    LParen,
    RParen,
    LBracket,
    RBracket,
    /// A quoted string with escapes resolved.
    Str(String),
    /// Anything else up to whitespace, a bracket or a quote: names, operators, keywords, numbers, bare values.
    Word(String),
}

/// A token and the 1-based character position where it starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub pos: usize,
}

impl Token {
    /// How the token reads in an error message.
    pub fn describe(&self) -> String {
        match &self.tok {
            Tok::LParen => "\"(\"".to_owned(),
            Tok::RParen => "\")\"".to_owned(),
            Tok::LBracket => "\"[\"".to_owned(),
            Tok::RBracket => "\"]\"".to_owned(),
            Tok::Str(s) => serde_json::Value::String(s.clone()).to_string(),
            Tok::Word(w) => format!("\"{w}\""),
        }
    }
}

fn is_word_char(c: char) -> bool {
    !c.is_whitespace() && !matches!(c, '(' | ')' | '[' | ']' | '"')
}

fn hex4(chars: &[char], at: usize) -> Option<u32> {
    let digits = chars.get(at..at + 4)?;
    digits.iter().try_fold(0u32, |acc, c| Some(acc * 16 + c.to_digit(16)?))
}

/// Reads the string whose opening quote is at `start`; returns its text and the index after the closing quote.
fn lex_string(chars: &[char], start: usize) -> Result<(String, usize), ScimError> {
    let mut out = String::new();
    let mut i = start + 1;
    loop {
        let Some(&c) = chars.get(i) else {
            return Err(ScimError::invalid_filter(format!("unterminated string starting at character {}", start + 1)));
        };
        match c {
            '"' => return Ok((out, i + 1)),
            '\\' => {
                let escape_pos = i + 1;
                let bad_escape =
                    move || ScimError::invalid_filter(format!("invalid escape in string at character {escape_pos}"));
                let esc = chars.get(i + 1).copied().ok_or_else(|| {
                    ScimError::invalid_filter(format!("unterminated string starting at character {}", start + 1))
                })?;
                i += 2;
                match esc {
                    '"' => out.push('"'),
                    '\\' => out.push('\\'),
                    '/' => out.push('/'),
                    'b' => out.push('\u{8}'),
                    'f' => out.push('\u{c}'),
                    'n' => out.push('\n'),
                    'r' => out.push('\r'),
                    't' => out.push('\t'),
                    'u' => {
                        let high = hex4(chars, i).ok_or_else(bad_escape)?;
                        i += 4;
                        let code = if (0xD800..0xDC00).contains(&high) {
                            let low = match (chars.get(i), chars.get(i + 1)) {
                                (Some('\\'), Some('u')) => hex4(chars, i + 2),
                                _ => None,
                            }
                            .filter(|low| (0xDC00..0xE000).contains(low))
                            .ok_or_else(bad_escape)?;
                            i += 6;
                            0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            high
                        };
                        if code == 0 {
                            // No stored value holds it (PostgreSQL cannot store it).
                            return Err(ScimError::invalid_filter(format!(
                                "the string at character {} holds the NUL character (\\u0000)",
                                start + 1
                            )));
                        }
                        out.push(char::from_u32(code).ok_or_else(bad_escape)?);
                    }
                    _ => return Err(bad_escape()),
                }
            }
            other => {
                out.push(other);
                i += 1;
            }
        }
    }
}

/// Splits `input` into tokens.
pub(crate) fn tokenize(input: &str) -> Result<Vec<Token>, ScimError> {
    let chars: Vec<char> = input.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        let pos = i + 1;
        let single = match c {
            '(' => Some(Tok::LParen),
            ')' => Some(Tok::RParen),
            '[' => Some(Tok::LBracket),
            ']' => Some(Tok::RBracket),
            _ => None,
        };
        if let Some(tok) = single {
            tokens.push(Token { tok, pos });
            i += 1;
        } else if c.is_whitespace() {
            i += 1;
        } else if c == '"' {
            let (text, next) = lex_string(&chars, i)?;
            tokens.push(Token { tok: Tok::Str(text), pos });
            i = next;
        } else {
            let start = i;
            while chars.get(i).is_some_and(|&c| is_word_char(c)) {
                i += 1;
            }
            let word: String = chars.get(start..i).unwrap_or_default().iter().collect();
            tokens.push(Token { tok: Tok::Word(word), pos });
        }
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(input: &str) -> Vec<Tok> {
        tokenize(input).unwrap().into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn words_strings_and_brackets_are_split() {
        assert_eq!(
            kinds(r#"emails[type eq "work"] and (x pr)"#),
            vec![
                Tok::Word("emails".into()),
                Tok::LBracket,
                Tok::Word("type".into()),
                Tok::Word("eq".into()),
                Tok::Str("work".into()),
                Tok::RBracket,
                Tok::Word("and".into()),
                Tok::LParen,
                Tok::Word("x".into()),
                Tok::Word("pr".into()),
                Tok::RParen,
            ]
        );
    }

    #[test]
    fn positions_are_one_based_characters() {
        let tokens = tokenize("é eq \"x\"").unwrap();
        assert_eq!(tokens.iter().map(|t| t.pos).collect::<Vec<_>>(), [1, 3, 6]);
    }

    #[test]
    fn json_escapes_are_resolved() {
        assert_eq!(kinds(r#""a\"b\\c\/d\n\u00e9\ud83d\ude00""#), vec![Tok::Str("a\"b\\c/d\né😀".into())]);
    }

    #[test]
    fn unterminated_string_reports_its_start() {
        let err = tokenize(r#"userName eq "bjensen"#).unwrap_err();
        assert_eq!(err.detail, "unterminated string starting at character 13");
        assert_eq!(err.scim_type, Some("invalidFilter"));
    }

    #[test]
    fn bad_escapes_are_rejected() {
        assert_eq!(tokenize(r#"a eq "x\q""#).unwrap_err().detail, "invalid escape in string at character 8");
        assert!(tokenize(r#"a eq "\u12""#).is_err());
        assert!(tokenize(r#"a eq "\ud83d""#).is_err());
        assert!(tokenize(r#"a eq "\"#).is_err());
    }
}
