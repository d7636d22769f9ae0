//! How the converter writes an element's attributes: on HTML kept as HTML (escaped the way
//! Kramdown escapes attribute values), or as a Kramdown `{: …}` inline attribute list after
//! Markdown that cannot carry them (`.class`, `#id`, `key="value"`).
//!
//! Both follow Ruby's string semantics (`strip`, `split(/\s+/)`) where GitLab's output
//! depends on them.

use super::element::{KEl, Ty};
use super::is_ruby_space;
use crate::html::html2text::ruby_strip;

/// `html_attributes`: ` name="value"`, value escaped for an attribute (existing references
/// kept), an empty `id` dropped.
pub(super) fn html_attributes(attrs: &[(String, String)]) -> String {
    let mut out = String::new();
    for (key, value) in attrs {
        if key == "id" && ruby_strip(value).is_empty() {
            continue;
        }
        out.push_str(&format!(" {key}=\"{}\"", escape_attribute(value)));
    }
    out
}

/// `escape_html(value, :attribute)`: `<`, `>`, `"` and `&` escaped unless the `&` starts a
/// character or entity reference.
fn escape_attribute(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        let width = c.len_utf8();
        match c {
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '&' => match reference_len(rest) {
                Some(len) => {
                    out.push_str(rest.get(..len).unwrap_or("&"));
                    rest = rest.get(len..).unwrap_or("");
                    continue;
                }
                None => out.push_str("&amp;"),
            },
            c => out.push(c),
        }
        rest = rest.get(width..).unwrap_or("");
    }
    out
}

/// Length of the reference (`&name;`, `&#123;`, `&#x1F;`) at the start of `text`, if any.
fn reference_len(text: &str) -> Option<usize> {
    let body = text.strip_prefix('&')?;
    let end = body.find(';')?;
    let name = body.get(..end)?;
    let valid = if let Some(hex) = name.strip_prefix("#x") {
        !hex.is_empty() && hex.chars().all(|c| c.is_ascii_hexdigit())
    } else if let Some(digits) = name.strip_prefix('#') {
        !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit())
    } else {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
            && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
    };
    valid.then_some(end + 2)
}

/// `ial_for_element`: the `{: …}` attribute list for attributes Markdown cannot express.
pub(super) fn ial_for(el: &KEl) -> Option<String> {
    let mut list = String::new();
    for (key, value) in &el.attrs {
        if matches!(el.ty, Ty::Img | Ty::A)
            && matches!(key.as_str(), "href" | "src" | "alt" | "title")
        {
            continue;
        }
        if key == "class" && !value.is_empty() && !value.contains(['.', '#']) {
            let classes: Vec<String> = ruby_split_whitespace(value)
                .into_iter()
                .map(|w| format!(".{w}"))
                .collect();
            list.push(' ');
            list.push_str(&classes.join(" "));
        } else if key == "id" && !ruby_strip(value).is_empty() {
            list.push_str(&format!(" #{value}"));
        } else {
            list.push_str(&format!(" {key}=\"{value}\""));
        }
    }
    if ruby_strip(&list).is_empty() {
        None
    } else {
        Some(format!("{{:{list}}}"))
    }
}

/// Ruby's `split(/\s+/)`: a leading empty field is kept, trailing ones are dropped.
fn ruby_split_whitespace(value: &str) -> Vec<&str> {
    let mut fields: Vec<&str> = value.split(is_ruby_space).collect();
    // Runs of whitespace split into empty fields in Rust; Ruby's regex split does not, except
    // for one leading empty field.
    let leading = fields.first().is_some_and(|f| f.is_empty()) && fields.len() > 1;
    fields.retain(|f| !f.is_empty());
    if leading && !fields.is_empty() {
        fields.insert(0, "");
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_classes_like_ruby() {
        assert_eq!(ruby_split_whitespace(" a  b "), vec!["", "a", "b"]);
        assert_eq!(ruby_split_whitespace("   "), Vec::<&str>::new());
    }
}
