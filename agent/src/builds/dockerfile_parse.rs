//! Reading a Dockerfile the way the engine's classic builder does (moby's parser and shell
//! lexer): parser directives (`# escape=`), line continuations, comments inside continued
//! lines, instruction flags, the JSON form, and word expansion (`$VAR`, `${VAR}`, `${VAR:-w}`,
//! quotes, escapes). Pure: no I/O; [`super::dockerfile_check`] applies the rules.

use std::collections::HashMap;

/// One instruction, continuation lines joined.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// 1-based line where the instruction starts.
    pub line: usize,
    /// Upper-cased keyword (`FROM`, `ADD`, …).
    pub keyword: String,
    /// Everything after the keyword, untouched.
    pub rest: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    #[error("Dockerfile line {line}: invalid escape directive `{value}` (must be \\ or `)")]
    BadEscape { line: usize, value: String },
}

/// The escape character the parser directives at the top of `text` select (`\` by default).
pub fn escape_directive(text: &str) -> Result<char, ParseError> {
    let mut escape = '\\';
    for (index, line) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        let Some((key, value)) = directive(line) else {
            break;
        };
        if key.eq_ignore_ascii_case("escape") {
            escape = match value {
                "\\" => '\\',
                "`" => '`',
                _ => {
                    return Err(ParseError::BadEscape {
                        line: index + 1,
                        value: value.to_owned(),
                    });
                }
            };
        }
    }
    Ok(escape)
}

/// `# key=value` (moby: `^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$`).
fn directive(line: &str) -> Option<(&str, &str)> {
    let body = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let key_len = body
        .char_indices()
        .find(|&(i, c)| !(c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit())))
        .map_or(body.len(), |(i, _)| i);
    if key_len == 0 {
        return None;
    }
    let (key, after) = body.split_at(key_len);
    let value = after
        .trim_start_matches([' ', '\t'])
        .strip_prefix('=')?
        .trim_matches([' ', '\t']);
    (!value.is_empty()).then_some((key, value))
}

/// The instructions of `text`, read with `escape` as the continuation character.
pub fn instructions(text: &str, escape: char) -> Vec<Instruction> {
    let mut out = Vec::new();
    let mut lines = text
        .trim_start_matches('\u{feff}')
        .split('\n')
        .map(|line| line.trim_end_matches('\r'))
        .enumerate();
    while let Some((index, raw)) = lines.next() {
        let first = raw.trim_start_matches(char::is_whitespace);
        if first.starts_with('#') {
            continue;
        }
        let (mut joined, mut ended) = trim_continuation(first, escape);
        if ended && joined.trim().is_empty() {
            continue;
        }
        while !ended {
            let Some((_, next)) = lines.next() else { break };
            let stripped = next.trim_start_matches(char::is_whitespace);
            if stripped.starts_with('#') || stripped.is_empty() {
                continue;
            }
            let (part, part_ended) = trim_continuation(next, escape);
            joined.push_str(&part);
            ended = part_ended;
        }
        let trimmed = joined.trim_matches(char::is_whitespace);
        let (keyword, rest) = trimmed
            .split_once(char::is_whitespace)
            .unwrap_or((trimmed, ""));
        if keyword.is_empty() {
            continue;
        }
        out.push(Instruction {
            line: index + 1,
            keyword: keyword.to_ascii_uppercase(),
            rest: rest.trim_start_matches(char::is_whitespace).to_owned(),
        });
    }
    out
}

/// What the continuation character may be followed by (moby: `\\[ \t]*$`). Everywhere else
/// the parser's notion of whitespace is Unicode's, as moby's (`unicode.IsSpace`).
fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// Strips a trailing escape character (and blanks after it): `(line, is_end_of_instruction)`.
fn trim_continuation(line: &str, escape: char) -> (String, bool) {
    let trimmed = line.trim_end_matches(is_blank);
    match trimmed.strip_suffix(escape) {
        Some(rest) => (rest.to_owned(), false),
        None => (line.to_owned(), true),
    }
}

/// `--name=value` flags at the start of `rest`, and what follows them.
pub fn split_flags(rest: &str) -> (Vec<(String, String)>, &str) {
    let mut flags = Vec::new();
    let mut remaining = rest.trim_start_matches(char::is_whitespace);
    while let Some(flag) = remaining.strip_prefix("--") {
        let end = flag.find(char::is_whitespace).unwrap_or(flag.len());
        let (word, after) = flag.split_at(end);
        if word.is_empty() {
            break;
        }
        let (name, value) = word.split_once('=').unwrap_or((word, ""));
        flags.push((name.to_ascii_lowercase(), value.to_owned()));
        remaining = after.trim_start_matches(char::is_whitespace);
    }
    (flags, remaining)
}

/// The ways the engine may read the arguments of ADD/COPY-like instructions: the
/// whitespace-separated words, and, when they start with `[`, the JSON string array (moby
/// decodes the first JSON value and ignores what follows it). Checking both leaves no room for
/// a difference between two JSON parsers.
pub fn argument_readings(args: &str) -> Vec<Vec<String>> {
    let trimmed = args.trim_matches(char::is_whitespace);
    let words = trimmed
        .split(char::is_whitespace)
        .filter(|word| !word.is_empty())
        .map(str::to_owned)
        .collect();
    let mut readings = Vec::new();
    if trimmed.starts_with('[')
        && let Some(Ok(list)) = serde_json::Deserializer::from_str(trimmed)
            .into_iter::<Vec<String>>()
            .next()
    {
        readings.push(list);
    }
    readings.push(words);
    readings
}

/// A variable form the checker does not model (`${A#x}`, `${A/x/y}`, …): refusing it is safer
/// than guessing what the engine makes of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnsupportedWord(pub String);

/// Expands one word like the engine's `ProcessWord`: quotes, `escape`, `$NAME`, `${NAME}`,
/// `${NAME:-word}`, `${NAME-word}`, `${NAME:+word}`, `${NAME+word}`, `${NAME:?word}`,
/// `${NAME?word}`. Unset names expand to nothing.
pub fn expand_word(
    word: &str,
    vars: &HashMap<String, String>,
    escape: char,
) -> Result<String, UnsupportedWord> {
    let chars: Vec<char> = word.chars().collect();
    let mut lexer = Lexer {
        chars: &chars,
        pos: 0,
        vars,
        escape,
    };
    lexer.process(None)
}

struct Lexer<'a> {
    chars: &'a [char],
    pos: usize,
    vars: &'a HashMap<String, String>,
    escape: char,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    fn unsupported(&self) -> UnsupportedWord {
        UnsupportedWord(self.chars.iter().collect())
    }

    /// Processes until `stop` (consumed) or the end.
    fn process(&mut self, stop: Option<char>) -> Result<String, UnsupportedWord> {
        let mut out = String::new();
        while let Some(c) = self.next() {
            if Some(c) == stop {
                return Ok(out);
            }
            match c {
                '\'' => {
                    while let Some(q) = self.next() {
                        if q == '\'' {
                            break;
                        }
                        out.push(q);
                    }
                }
                '"' => out.push_str(&self.double_quoted()?),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => {
                    if let Some(next) = self.next() {
                        out.push(next);
                    }
                }
                c => out.push(c),
            }
        }
        Ok(out)
    }

    fn double_quoted(&mut self) -> Result<String, UnsupportedWord> {
        let mut out = String::new();
        while let Some(c) = self.next() {
            match c {
                '"' => return Ok(out),
                '$' => out.push_str(&self.dollar()?),
                c if c == self.escape => match self.peek() {
                    Some(next) if next == '"' || next == '$' || next == self.escape => {
                        self.pos += 1;
                        out.push(next);
                    }
                    _ => out.push(c),
                },
                c => out.push(c),
            }
        }
        Ok(out)
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    fn dollar(&mut self) -> Result<String, UnsupportedWord> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".to_owned());
            }
            return Ok(self.value(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err(self.unsupported());
        }
        let colon = self.peek() == Some(':');
        if colon {
            self.pos += 1;
        }
        let operator = self.next().ok_or_else(|| self.unsupported())?;
        if operator == '}' && !colon {
            return Ok(self.value(&name).unwrap_or_default());
        }
        if !matches!(operator, '-' | '+' | '?') {
            return Err(self.unsupported());
        }
        let word = self.process(Some('}'))?;
        let value = self.value(&name);
        let set = match &value {
            Some(v) => !(colon && v.is_empty()),
            None => false,
        };
        Ok(match operator {
            '-' if set => value.unwrap_or_default(),
            '-' => word,
            '+' if set => word,
            '+' => String::new(),
            // `?` fails the engine's build when unset; the value is what is used otherwise.
            _ => value.unwrap_or_default(),
        })
    }

    fn value(&self, name: &str) -> Option<String> {
        self.vars.get(name).cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn continuations_comments_and_keywords() {
        let text =
            "FROM a\n# note\nrun echo \\\n  # inside\n\n  one \\\n  two\nADD ht\\\ntp://x /y\n";
        let found = instructions(text, '\\');
        assert_eq!(
            found,
            [
                Instruction {
                    line: 1,
                    keyword: "FROM".into(),
                    rest: "a".into()
                },
                Instruction {
                    line: 3,
                    keyword: "RUN".into(),
                    rest: "echo   one   two".into()
                },
                Instruction {
                    line: 8,
                    keyword: "ADD".into(),
                    rest: "http://x /y".into()
                },
            ]
        );
    }

    #[test]
    fn the_escape_directive_changes_the_continuation_character() {
        let text = "# escape=`\nFROM a\nADD ht`\ntp://x /y\n";
        assert_eq!(escape_directive(text).unwrap(), '`');
        let found = instructions(text, '`');
        assert_eq!(found[1].rest, "http://x /y");
        // A directive after the first instruction is only a comment.
        assert_eq!(escape_directive("FROM a\n# escape=`\n").unwrap(), '\\');
        assert_eq!(escape_directive("#ESCAPE = \\\n").unwrap(), '\\');
        assert!(escape_directive("# escape=x\n").is_err());
    }

    #[test]
    fn whitespace_is_unicodes_except_after_the_continuation_character() {
        // A comment after a no-break space is still a comment, and its trailing `\` joins
        // nothing (moby skips comment lines before looking for continuations).
        let found = instructions("\u{a0}# note \\\nADD http://x /y\n", '\\');
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].keyword, "ADD");
        // Vertical tab and form feed separate the keyword and words.
        let found = instructions("ADD\x0b--chown=1\x0chttp://x /y\r\r\n", '\\');
        assert_eq!(found[0].keyword, "ADD");
        let (flags, rest) = split_flags(&found[0].rest);
        assert_eq!(flags.len(), 1);
        assert_eq!(argument_readings(rest), [["http://x", "/y"]]);
        // Trailing carriage returns do not stop a continuation.
        let found = instructions("ADD ht\\\r\r\ntp://x /y\n", '\\');
        assert_eq!(found[0].rest, "http://x /y");
    }

    #[test]
    fn flags_and_json_form() {
        let (flags, rest) = split_flags("--chown=1:1 --from=build /a /b");
        assert_eq!(
            flags,
            [
                ("chown".to_owned(), "1:1".to_owned()),
                ("from".to_owned(), "build".to_owned())
            ]
        );
        assert_eq!(rest, "/a /b");
        assert_eq!(
            argument_readings(r#"["a b", "c"]"#),
            [vec!["a b", "c"], vec![r#"["a"#, r#"b","#, r#""c"]"#]]
        );
        assert_eq!(argument_readings("a  b\tc"), [["a", "b", "c"]]);
        assert_eq!(argument_readings("[not json"), [["[not", "json"]]);
        // Like Go's json.Decoder: the first value, whatever follows it.
        assert_eq!(
            argument_readings(r#"["http\u003a//x", "/y"] junk"#)[0],
            ["http://x", "/y"]
        );
    }

    #[test]
    fn words_expand_like_the_engine() {
        let v = vars(&[("A", "http"), ("E", "")]);
        let x = |w: &str| expand_word(w, &v, '\\').unwrap();
        assert_eq!(x("$A://h"), "http://h");
        assert_eq!(x("${A}s://h"), "https://h");
        assert_eq!(x("${B:-http}://h"), "http://h");
        assert_eq!(x("${E:-d}"), "d");
        assert_eq!(x("${E-d}"), "");
        assert_eq!(x("${A:+yes}"), "yes");
        assert_eq!(x("${B+yes}"), "");
        assert_eq!(x(r"h\ttp"), "http");
        assert_eq!(x(r#""h"'t'tp"#), "http");
        assert_eq!(x(r#""a\"b\c""#), r#"a"b\c"#);
        assert_eq!(x("'$A'"), "$A");
        assert_eq!(x("$"), "$");
        assert_eq!(x("$B"), "");
        assert!(expand_word("${A#h}", &v, '\\').is_err());
        assert_eq!(expand_word("h`ttp", &v, '`').unwrap(), "http");
    }
}
