//! Placeholder expansion for agent adapter files: `${name}` is replaced by
//! the value of `name`, `$$` is a literal `$`, and any other `$` is kept as
//! it is. An unknown or unterminated placeholder is an error that names it,
//! never an empty string: a config with a hole in it would make the agent
//! fail for a reason that has nothing to do with the agent.

use std::collections::BTreeMap;

/// The values placeholders expand to, by name.
pub type Vars = BTreeMap<String, String>;

/// Longest placeholder name accepted, in bytes (past it, a missing `}` is
/// the likelier story).
pub const PLACEHOLDER_NAME_BYTES_MAX: usize = 128;

/// Why a template could not be expanded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// `${name}` names no known value.
    #[error("unknown placeholder `${{{name}}}` (known: {known})")]
    Unknown { name: String, known: String },
    /// `${` without a closing `}` on the same line.
    #[error("placeholder at byte {at} has no closing `}}`")]
    Unterminated { at: usize },
}

/// Expands every placeholder of `text` from `vars`.
pub fn expand(text: &str, vars: &Vars) -> Result<String, TemplateError> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut offset = 0;
    while let Some(dollar) = rest.find('$') {
        out.push_str(&rest[..dollar]);
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            offset += dollar + 2;
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{') {
            let close = body
                .find(['}', '\n'])
                .filter(|&i| body.as_bytes()[i] == b'}' && i <= PLACEHOLDER_NAME_BYTES_MAX)
                .ok_or(TemplateError::Unterminated { at: offset + dollar })?;
            let name = &body[..close];
            let value = vars.get(name).ok_or_else(|| unknown(name, vars))?;
            out.push_str(value);
            offset += dollar + 2 + close + 1;
            rest = &body[close + 1..];
        } else {
            out.push('$');
            offset += dollar + 1;
            rest = after;
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// The names of every well-formed placeholder in `text`, in order.
pub fn names(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(dollar) = rest.find('$') {
        let after = &rest[dollar + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{')
            && let Some(close) = body.find('}')
            && !body[..close].contains('\n')
        {
            found.push(body[..close].to_owned());
            rest = &body[close + 1..];
        } else {
            rest = after;
        }
    }
    found
}

fn unknown(name: &str, vars: &Vars) -> TemplateError {
    let known: Vec<&str> = vars
        .keys()
        .map(String::as_str)
        // Per-key session values are many; one example stands for them.
        .filter(|k| !k.starts_with("session.") || *k == "session.idle_timeout_ms")
        .collect();
    TemplateError::Unknown {
        name: name.to_owned(),
        known: known.join(", "),
    }
}

/// `items` as a TOML (and JSON) array of strings.
pub fn string_array(items: &[String]) -> String {
    let quoted: Vec<String> = items.iter().map(|s| quoted(s)).collect();
    format!("[{}]", quoted.join(", "))
}

/// `text` as a TOML basic string (also a JSON string).
pub fn quoted(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars() -> Vars {
        [("url", "ws://127.0.0.1:4100/"), ("n", "8")]
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect()
    }

    /// Placeholders expand, `$$` is a dollar, and a lone `$` or TOML braces stay as written.
    #[test]
    fn placeholders_expand_and_other_text_stays() {
        let text = "url = \"${url}\"\nmax = ${n}\nprice = \"$$5\"\nt = { a = 1 }\ncost = $3";
        let expected = "url = \"ws://127.0.0.1:4100/\"\nmax = 8\nprice = \"$5\"\nt = { a = 1 }\ncost = $3";
        assert_eq!(expand(text, &vars()).unwrap(), expected);
    }

    /// An unknown placeholder is an error naming it and the known ones.
    #[test]
    fn unknown_placeholder_is_named() {
        let err = expand("x = ${nope}", &vars()).unwrap_err();
        assert_eq!(
            err,
            TemplateError::Unknown {
                name: "nope".into(),
                known: "n, url".into()
            }
        );
        assert!(err.to_string().contains("`${nope}`"), "{err}");
    }

    /// A placeholder without its closing brace on the line is an error at its byte.
    #[test]
    fn unterminated_placeholder_is_an_error() {
        assert_eq!(
            expand("ok\nx = ${url\n}", &vars()),
            Err(TemplateError::Unterminated { at: 7 })
        );
    }

    /// Placeholder names are listed in order, escapes skipped.
    #[test]
    fn names_lists_placeholders() {
        assert_eq!(names("${a} $${b} ${c:d}"), vec!["a", "c:d"]);
    }

    /// Strings are quoted so that TOML and JSON read them back unchanged.
    #[test]
    fn quoting_round_trips_through_toml() {
        let tricky = "a \"b\" \\ c\nd".to_owned();
        let array = string_array(&[tricky.clone(), "m".into()]);
        let parsed: toml::Value = toml::from_str(&format!("x = {array}")).unwrap();
        assert_eq!(parsed["x"][0].as_str(), Some(tricky.as_str()));
        let json: serde_json::Value = serde_json::from_str(&array).unwrap();
        assert_eq!(json[1], "m");
    }
}
