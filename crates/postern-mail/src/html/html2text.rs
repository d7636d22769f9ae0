//! The html2text gem (soundasleep/html2text_ruby 0.2.x, the version GitLab's
//! `HtmlToMarkdownParser` subclasses) over a libxml2-shaped tree, with GitLab's override: `em`,
//! `strong`, `details` and `img` are converted by Kramdown instead (see [`super::kramdown`]).
//!
//! html2text's rules, per element: a prefix before the children, a suffix after them, links
//! turned into `[text](href)` afterwards; text nodes have each whitespace run squeezed to one
//! space. The result is then cleaned: blanks around newlines dropped, spaces around tabs
//! dropped, three or more newlines squeezed to two, and the whole stripped.

use super::dom::{DOCUMENT, Dom, Kind, NodeId};
use super::kramdown;

/// The horizontal rule html2text writes for `<hr>`.
const HR: &str = "---------------------------------------------------------------\n";

/// Elements whose whole subtree html2text ignores.
fn is_ignored(name: &str) -> bool {
    matches!(name, "style" | "head" | "title" | "meta" | "script")
}

/// Elements GitLab routes through Kramdown (`ALLOWED_TAG_ATTRIBUTES`).
fn is_kramdown(name: &str) -> bool {
    matches!(name, "em" | "strong" | "details" | "img")
}

fn is_heading(name: &str) -> bool {
    matches!(name, "h1" | "h2" | "h3" | "h4" | "h5" | "h6")
}

enum Step {
    /// A node, with its parent and its position there (for `next_node_name`).
    Enter {
        id: NodeId,
        parent: NodeId,
        index: usize,
    },
    /// After the children: the suffix, and for `<a>` the link wrapping of everything written
    /// since `start`.
    Exit {
        id: NodeId,
        parent: NodeId,
        index: usize,
        start: usize,
    },
}

/// Converts the document, returning html2text's cleaned output.
pub(crate) fn convert(dom: &Dom) -> String {
    let mut out = String::new();
    let mut steps = Vec::new();
    push_children(dom, DOCUMENT, &mut steps);
    while let Some(step) = steps.pop() {
        match step {
            Step::Enter { id, parent, index } => match &dom.node(id).kind {
                Kind::Text(text) => squeeze_whitespace(text, &mut out),
                Kind::Comment(_) | Kind::Document => {}
                Kind::Element { name, .. } => {
                    if is_kramdown(name) {
                        out.push_str(&kramdown::convert(dom, id));
                    } else if !is_ignored(name) {
                        let start = out.len();
                        out.push_str(prefix(name));
                        steps.push(Step::Exit {
                            id,
                            parent,
                            index,
                            start,
                        });
                        push_children(dom, id, &mut steps);
                    }
                }
            },
            Step::Exit {
                id,
                parent,
                index,
                start,
            } => {
                let name = dom.element_name(id).unwrap_or("");
                let next = dom.next_element_name(parent, index);
                out.push_str(suffix(name, next));
                if name == "a" {
                    let inner = out.split_off(start.min(out.len()));
                    out.push_str(&wrap_link(dom, id, &inner, next));
                }
            }
        }
    }
    clean(&out)
}

fn push_children(dom: &Dom, id: NodeId, steps: &mut Vec<Step>) {
    for (index, &child) in dom.children(id).iter().enumerate().rev() {
        steps.push(Step::Enter {
            id: child,
            parent: id,
            index,
        });
    }
}

/// `prefix_whitespace`.
fn prefix(name: &str) -> &'static str {
    match name {
        "hr" => HR,
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "ol" | "ul" => "\n",
        "tr" | "p" | "div" => "\n",
        "td" | "th" => "\t",
        "li" => "- ",
        _ => "",
    }
}

/// `suffix_whitespace`; `next` is the name of the next element sibling.
fn suffix(name: &str, next: Option<&str>) -> &'static str {
    match name {
        "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "li" => "\n",
        "p" | "br" if next != Some("div") => "\n",
        "div" if next.is_some_and(|next| next != "div") => "\n",
        _ => "",
    }
}

/// `wrap_link`: `[text](href)`, or the bare text when it already says the address.
fn wrap_link(dom: &Dom, id: NodeId, inner: &str, next: Option<&str>) -> String {
    let title = dom.attr(id, "title");
    let mut output = ruby_strip(inner).to_owned();
    // A linked image came out as `[alt]`: drop the brackets, preferring the link's title.
    if output.len() >= 2 && output.starts_with('[') && output.ends_with(']') {
        output = output.get(1..output.len() - 1).unwrap_or("").to_owned();
        if let Some(title) = title {
            output = title.to_owned();
        }
    }
    if output.is_empty()
        && let Some(title) = title
    {
        output = title.to_owned();
    }
    match dom.attr(id, "href") {
        None => {
            if dom.attr(id, "name").is_some() {
                output = format!("[{output}]");
            }
        }
        Some(href) => {
            let restates_href = href == output
                || href.strip_prefix("mailto:") == Some(output.as_str())
                || href.strip_prefix("http://") == Some(output.as_str())
                || href.strip_prefix("https://") == Some(output.as_str());
            if !restates_href {
                output = if output.is_empty() {
                    href.to_owned()
                } else {
                    format!("[{output}]({href})")
                };
            }
        }
    }
    if next.is_some_and(is_heading) {
        output.push('\n');
    }
    output
}

/// Ruby's `String#strip`: ASCII whitespace and NUL only, unlike `str::trim`.
pub(crate) fn ruby_strip(text: &str) -> &str {
    text.trim_matches(|c: char| matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | '\0'))
}

/// `trimmed_whitespace`: each run of `[\t\n\f\r ]` becomes one space.
fn squeeze_whitespace(text: &str, out: &mut String) {
    super::collapse_runs(text, out, |c| {
        matches!(c, '\t' | '\n' | '\u{c}' | '\r' | ' ')
    });
}

/// html2text's final clean-up: `gsub(/[ \t]*\n[ \t]*/, "\n")`, `gsub(/ *\t */, "\t")`,
/// `gsub(/\n\n\n*/, "\n\n")`, then `strip`.
fn clean(text: &str) -> String {
    // Blanks around newlines.
    let mut pass = String::with_capacity(text.len());
    let mut pending = String::new();
    let mut after_newline = false;
    for c in text.chars() {
        match c {
            ' ' | '\t' if after_newline => {}
            ' ' | '\t' => pending.push(c),
            '\n' => {
                pending.clear();
                pass.push('\n');
                after_newline = true;
            }
            c => {
                pass.push_str(&pending);
                pending.clear();
                pass.push(c);
                after_newline = false;
            }
        }
    }
    pass.push_str(&pending);

    // Spaces around tabs.
    let mut tabs = String::with_capacity(pass.len());
    let mut spaces = 0usize;
    let mut after_tab = false;
    for c in pass.chars() {
        match c {
            ' ' if after_tab => {}
            ' ' => spaces += 1,
            '\t' => {
                spaces = 0;
                tabs.push('\t');
                after_tab = true;
            }
            c => {
                tabs.extend(std::iter::repeat_n(' ', spaces));
                spaces = 0;
                tabs.push(c);
                after_tab = false;
            }
        }
    }
    tabs.extend(std::iter::repeat_n(' ', spaces));

    // At most one empty line.
    let mut lines = String::with_capacity(tabs.len());
    let mut newlines = 0usize;
    for c in tabs.chars() {
        if c == '\n' {
            newlines += 1;
            if newlines <= 2 {
                lines.push('\n');
            }
        } else {
            newlines = 0;
            lines.push(c);
        }
    }
    ruby_strip(&lines).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_matches_the_gem_regexes() {
        assert_eq!(
            clean("  a \t\n \t b  \n\n\n\n c \t \t d "),
            "a\nb\n\nc\t\td"
        );
        assert_eq!(clean("x \n"), "x");
        assert_eq!(clean("\n\n\tcell"), "cell");
    }

    #[test]
    fn squeezes_only_ascii_whitespace() {
        let mut out = String::new();
        squeeze_whitespace("a \n\t b\u{3000}c", &mut out);
        assert_eq!(out, "a b\u{3000}c");
    }
}
