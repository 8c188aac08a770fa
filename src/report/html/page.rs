//! The page itself: the template, its stylesheet and script (files in
//! `assets/`, embedded at build time) and the data as JSON.

use super::PageData;

const TEMPLATE: &str = include_str!("assets/page.html");
const STYLE: &str = include_str!("assets/report.css");
const HISTOGRAMS: &str = include_str!("assets/histograms.js");
/// Drives the job table when the URL ends in `#selfcheck` (scripts/html-check.sh).
const SELFCHECK: &str = include_str!("assets/selfcheck.js");
const SCRIPT: &str = include_str!("assets/report.js");

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// JSON safe inside a `<script>` element: `<` only occurs inside JSON
/// strings, where `\u003c` means the same, so no `</script>` or `<!--` in
/// the data can end the element early.
fn script_json(data: &PageData) -> String {
    // Our own plain types always serialise; the page says so if not.
    let json = serde_json::to_string(data).unwrap_or_else(|err| format!("{{\"error\":{:?}}}", err.to_string()));
    json.replace('<', "\\u003c")
}

/// The whole page of `data`.
pub fn html(data: &PageData) -> String {
    let title = match data.summary {
        Some(s) => format!("{} {} seed {}", s.verdict, s.scenario, s.seed),
        None => format!("trace {}", data.source),
    };
    fill(
        TEMPLATE,
        &[
            ("TITLE", &escape(&title)),
            ("STYLE", STYLE),
            ("HISTOGRAMS", HISTOGRAMS),
            ("SELFCHECK", SELFCHECK),
            ("SCRIPT", SCRIPT),
            ("DATA", &script_json(data)),
        ],
    )
}

/// `template` with every `{{NAME}}` replaced by its value, in one pass so
/// that no value's text is ever taken for a placeholder.
fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + values.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let value = after.find("}}").and_then(|end| {
            values
                .iter()
                .find(|(name, _)| *name == &after[..end])
                .map(|v| (v.1, end))
        });
        match value {
            Some((value, end)) => {
                out.push_str(value);
                rest = &after[end + 2..];
            }
            None => {
                out.push_str("{{");
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// A page that only says what went wrong.
pub fn error_page(message: &str) -> String {
    format!(
        "<!doctype html><meta charset=\"utf-8\"><title>simctl report</title><p>{}</p>\n",
        escape(message)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Placeholders are filled once; a value's own braces stay as they are.
    #[test]
    fn fills_placeholders_in_one_pass() {
        let filled = fill("<{{A}}|{{B}}|{{C}}>", &[("A", "{{B}}"), ("B", "b")]);
        assert_eq!(filled, "<{{B}}|b|{{C}}>");
    }

    /// Markup in text cannot open an element.
    #[test]
    fn escapes_markup() {
        assert_eq!(
            escape("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }
}
