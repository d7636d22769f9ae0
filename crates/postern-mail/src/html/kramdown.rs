//! GitLab's override for `em`, `strong`, `details` and `img`: the element (stripped of its
//! attributes, except `alt` and `src` on `img`) is serialised and converted by
//! `Kramdown::Document.new(html, input: 'html').to_commonmark`, and that text replaces what
//! html2text would have written.
//!
//! This module reproduces the part of Kramdown those elements reach: the HTML parser's element
//! conversion (`em`/`i` → `*…*`, `strong`/`b` → `**…**`, `a`, `img`, `br`, `code`; an emphasis
//! whose text starts or ends with whitespace stays raw HTML; other elements stay HTML with
//! Kramdown's text, whitespace and attribute rules) and the kramdown converter's output
//! (Markdown escaping, `{::}` between adjacent emphases, reference-style links with their
//! definitions appended, `{: …}` attribute lists for attributes Markdown cannot say).
//!
//! Kramdown's native conversion of block structure found *inside* these elements (paragraphs,
//! lists, tables, headings, `pre` — rare in mail) is not reproduced: such elements are written
//! back as HTML. Recursion here is bounded by the parser's [`super::parse::MAX_DEPTH`].

use super::dom::{Dom, Kind, NodeId};
use super::html2text::ruby_strip;
use super::serialize::{escape_text, serialized_value};

/// Converts the element `root` the way GitLab's `iterate_over` override does.
pub(crate) fn convert(dom: &Dom, root: NodeId) -> String {
    let name = dom.element_name(root).unwrap_or("");
    // GitLab's `remove_attributes`: only `img` keeps anything (`alt`, `src`).
    let keep: &[&str] = if name == "img" { &["alt", "src"] } else { &[] };
    let builder = Builder {
        dom,
        edges: TextEdges::new(dom, root),
    };
    let mut document = KEl::new(Ty::Root);
    if let Some(element) = builder.element(root, true, false, Some(keep)) {
        document.children.push(element);
    }
    remove_whitespace_children(&mut document.children);

    let mut context = Context::default();
    let mut out = String::new();
    inner(&document, &Opts::default(), &mut context, &mut out);
    // `create_link_defs`.
    if !context.link_refs.is_empty() {
        out.push_str("\n\n");
        for (index, (href, title)) in context.link_refs.iter().enumerate() {
            out.push_str(&format!(
                "[{}]: {href}{}\n",
                index + 1,
                parse_title(title.as_deref())
            ));
        }
    }
    out
}

/// For every node under a root, the first and last character of its descendant text — all
/// Kramdown's emphasis rule needs to know, computed once bottom-up so that nested emphasis does
/// not rescan its subtree at every level.
struct TextEdges {
    base: NodeId,
    edges: Vec<Option<(char, char)>>,
}

impl TextEdges {
    fn new(dom: &Dom, root: NodeId) -> Self {
        let order = dom.preorder(root);
        // Node ids of a subtree are close together (the parser appends in document order), so
        // a vector indexed from the smallest id is compact.
        let base = order.iter().copied().min().unwrap_or(root);
        let top = order.iter().copied().max().unwrap_or(root);
        let mut edges = TextEdges {
            base,
            edges: vec![None; top - base + 1],
        };
        for &id in order.iter().rev() {
            let edge = match &dom.node(id).kind {
                Kind::Text(text) => text.chars().next().zip(text.chars().next_back()),
                Kind::Element { .. } => {
                    let children = dom.children(id);
                    let first = children.iter().find_map(|&c| edges.get(c)).map(|e| e.0);
                    let last = children
                        .iter()
                        .rev()
                        .find_map(|&c| edges.get(c))
                        .map(|e| e.1);
                    first.zip(last)
                }
                _ => None,
            };
            if let Some(slot) = id.checked_sub(base).and_then(|i| edges.edges.get_mut(i)) {
                *slot = edge;
            }
        }
        edges
    }

    fn get(&self, id: NodeId) -> Option<(char, char)> {
        id.checked_sub(self.base)
            .and_then(|i| self.edges.get(i))
            .copied()
            .flatten()
    }
}

// ---- Kramdown's element tree ---------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Root,
    Text,
    Em,
    Strong,
    A,
    Img,
    Br,
    Codespan,
    Html,
    Comment,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    Span,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ContentModel {
    Block,
    Span,
    Raw,
}

#[derive(Debug, Clone)]
struct KEl {
    ty: Ty,
    /// Element name for `Html`.
    name: String,
    /// Text (as Kramdown's parser holds it: entity references as written), comment source or
    /// code span content.
    value: String,
    /// Attributes as Kramdown parsed them from the serialisation.
    attrs: Vec<(String, String)>,
    children: Vec<KEl>,
    category: Category,
    model: ContentModel,
}

impl KEl {
    fn new(ty: Ty) -> Self {
        KEl {
            ty,
            name: String::new(),
            value: String::new(),
            attrs: Vec::new(),
            children: Vec::new(),
            category: Category::Span,
            model: ContentModel::Raw,
        }
    }

    fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `Element#block?`.
    fn is_block(&self) -> bool {
        matches!(self.ty, Ty::Html | Ty::Comment) && self.category == Category::Block
    }

    /// `Element.category`, where the root has none.
    fn category(&self) -> Option<Category> {
        match self.ty {
            Ty::Root => None,
            Ty::Html | Ty::Comment => Some(self.category),
            _ => Some(Category::Span),
        }
    }
}

/// Kramdown's `HTML_SPAN_ELEMENTS`.
fn is_span_element(name: &str) -> bool {
    matches!(
        name,
        "a" | "abbr"
            | "acronym"
            | "b"
            | "big"
            | "bdo"
            | "br"
            | "button"
            | "cite"
            | "code"
            | "del"
            | "dfn"
            | "em"
            | "i"
            | "img"
            | "input"
            | "ins"
            | "kbd"
            | "label"
            | "mark"
            | "option"
            | "q"
            | "rb"
            | "rbc"
            | "rp"
            | "rt"
            | "rtc"
            | "ruby"
            | "samp"
            | "select"
            | "small"
            | "span"
            | "strong"
            | "sub"
            | "sup"
            | "tt"
            | "u"
            | "var"
    )
}

/// Kramdown's `HTML_CONTENT_MODEL` (raw by default).
fn content_model(name: &str) -> ContentModel {
    match name {
        "address" | "applet" | "article" | "aside" | "blockquote" | "body" | "dd" | "details"
        | "div" | "dl" | "fieldset" | "figure" | "figcaption" | "footer" | "form" | "header"
        | "hgroup" | "iframe" | "li" | "main" | "map" | "menu" | "nav" | "noscript" | "object"
        | "section" | "summary" | "td" => ContentModel::Block,
        "a" | "abbr" | "acronym" | "b" | "bdo" | "big" | "button" | "cite" | "caption" | "del"
        | "dfn" | "dt" | "em" | "h1" | "h2" | "h3" | "h4" | "h5" | "h6" | "i" | "ins" | "label"
        | "legend" | "optgroup" | "p" | "q" | "rb" | "rbc" | "rp" | "rt" | "rtc" | "ruby"
        | "select" | "small" | "span" | "strong" | "sub" | "sup" | "th" | "tt" => {
            ContentModel::Span
        }
        _ => ContentModel::Raw,
    }
}

fn removes_text_children(name: &str) -> bool {
    matches!(
        name,
        "html"
            | "head"
            | "hgroup"
            | "ol"
            | "ul"
            | "dl"
            | "table"
            | "colgroup"
            | "tbody"
            | "thead"
            | "tfoot"
            | "tr"
            | "select"
            | "optgroup"
    )
}

fn removes_whitespace_children(name: &str) -> bool {
    matches!(
        name,
        "body"
            | "section"
            | "nav"
            | "article"
            | "aside"
            | "header"
            | "footer"
            | "address"
            | "div"
            | "li"
            | "dd"
            | "blockquote"
            | "figure"
            | "figcaption"
            | "td"
            | "th"
            | "fieldset"
            | "form"
    )
}

fn strips_whitespace(name: &str) -> bool {
    matches!(
        name,
        "address"
            | "article"
            | "aside"
            | "blockquote"
            | "body"
            | "caption"
            | "dd"
            | "div"
            | "dl"
            | "dt"
            | "fieldset"
            | "figcaption"
            | "form"
            | "footer"
            | "header"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "legend"
            | "li"
            | "nav"
            | "p"
            | "section"
            | "td"
            | "th"
    )
}

/// Elements Kramdown converts with a dedicated method, which skips the generic whitespace
/// clean-up even when (as here) the element ends up as HTML.
fn has_own_converter(name: &str) -> bool {
    matches!(
        name,
        "a" | "b"
            | "strong"
            | "i"
            | "em"
            | "h1"
            | "h2"
            | "h3"
            | "h4"
            | "h5"
            | "h6"
            | "code"
            | "pre"
            | "table"
            | "script"
            | "textarea"
    )
}

/// Ruby's `\s`.
fn is_ruby_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// `gsub(/\s+/, ' ')`.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for c in text.chars() {
        if is_ruby_space(c) {
            if !in_run {
                out.push(' ');
            }
            in_run = true;
        } else {
            out.push(c);
            in_run = false;
        }
    }
    out
}

/// All text under `id`, in document order (Kramdown's `extract_text`).
fn descendant_text(dom: &Dom, id: NodeId) -> String {
    let mut text = String::new();
    for node in dom.preorder(id) {
        if let Kind::Text(value) = &dom.node(node).kind {
            text.push_str(value);
        }
    }
    text
}

// ---- the HTML parser's ElementConverter ------------------------------------------------------

struct Builder<'a> {
    dom: &'a Dom,
    edges: TextEdges,
}

impl Builder<'_> {
    /// Builds the Kramdown element for DOM node `id`. `keep` filters the attributes of the root
    /// element (GitLab's `remove_attributes`); descendants keep theirs.
    fn element(
        &self,
        id: NodeId,
        convert: bool,
        preserve: bool,
        keep: Option<&[&str]>,
    ) -> Option<KEl> {
        let Kind::Element { name, attrs } = &self.dom.node(id).kind else {
            return None;
        };
        let mut el = KEl::new(Ty::Html);
        el.name = name.to_string();
        el.attrs = attrs
            .iter()
            .filter(|attr| keep.is_none_or(|keep| keep.contains(&attr.name.as_ref())))
            .map(|attr| {
                (
                    attr.name.to_string(),
                    serialized_value(name, attr).unwrap_or_default(),
                )
            })
            .collect();
        if !convert {
            return Some(self.raw_html(id, el, preserve));
        }
        match name.as_ref() {
            "em" | "i" | "strong" | "b" => {
                let edge_space = self
                    .edges
                    .get(id)
                    .is_some_and(|(first, last)| is_ruby_space(first) || is_ruby_space(last));
                if edge_space {
                    // Emphasis Markdown cannot express stays raw HTML, unconverted inside.
                    return Some(self.raw_html(id, el, preserve));
                }
                el.ty = if matches!(name.as_ref(), "em" | "i") {
                    Ty::Em
                } else {
                    Ty::Strong
                };
                el.children = self.children(id, el.ty, "", true, false);
            }
            "a" => {
                if el.attr("href").is_none() {
                    return Some(self.raw_html(id, el, preserve));
                }
                el.ty = Ty::A;
                el.children = self.children(id, Ty::A, "a", true, false);
            }
            "img" => el.ty = Ty::Img,
            "br" => el.ty = Ty::Br,
            "code" => {
                el.ty = Ty::Codespan;
                el.value = descendant_text(self.dom, id);
            }
            _ => {
                el.category = if is_span_element(name) {
                    Category::Span
                } else {
                    Category::Block
                };
                el.model = content_model(name);
                let mut children = self.children(id, Ty::Html, name, true, preserve);
                if removes_text_children(name) {
                    children.retain(|child| child.ty != Ty::Text);
                }
                if !has_own_converter(name) {
                    if strips_whitespace(name) {
                        strip_whitespace(&mut children);
                    }
                    if removes_whitespace_children(name) {
                        remove_whitespace_children(&mut children);
                    }
                }
                el.children = children;
            }
        }
        Some(el)
    }

    /// `process_html_element(el, false)`: HTML kept as written, text untouched.
    fn raw_html(&self, id: NodeId, mut el: KEl, preserve: bool) -> KEl {
        el.ty = Ty::Html;
        el.category = if is_span_element(&el.name) {
            Category::Span
        } else {
            Category::Block
        };
        el.model = ContentModel::Raw;
        let name = el.name.clone();
        el.children = self.children(id, Ty::Html, &name, false, preserve);
        el
    }

    /// `process_children`: text and comments become Kramdown text and XML comments, elements
    /// are converted recursively (depth bounded by the parser's limit).
    fn children(
        &self,
        id: NodeId,
        parent_ty: Ty,
        parent_name: &str,
        convert: bool,
        preserve: bool,
    ) -> Vec<KEl> {
        let in_raw_text_element = matches!(parent_name, "script" | "style");
        let mut children = Vec::new();
        for &child in self.dom.children(id) {
            match &self.dom.node(child).kind {
                Kind::Text(text) => {
                    let mut serialized = String::with_capacity(text.len());
                    if in_raw_text_element {
                        serialized.push_str(text);
                    } else {
                        escape_text(text, &mut serialized);
                    }
                    let mut el = KEl::new(Ty::Text);
                    el.value = if preserve || !convert {
                        serialized
                    } else {
                        collapse_whitespace(&serialized)
                    };
                    children.push(el);
                }
                Kind::Comment(content) => {
                    // The comment's category follows the parent's content model ('div' at the
                    // root, the element type's name for converted elements).
                    let parent_model = match parent_ty {
                        Ty::Html => content_model(parent_name),
                        Ty::Em => content_model("em"),
                        Ty::Strong => content_model("strong"),
                        Ty::A => content_model("a"),
                        _ => ContentModel::Block,
                    };
                    let mut el = KEl::new(Ty::Comment);
                    el.value = format!("<!--{content}-->");
                    el.category = if parent_model == ContentModel::Span {
                        Category::Span
                    } else {
                        Category::Block
                    };
                    children.push(el);
                }
                Kind::Element { .. } => {
                    if let Some(el) = self.element(child, convert, preserve, None) {
                        children.push(el);
                    }
                }
                Kind::Document => {}
            }
        }
        children
    }
}

/// `strip_whitespace`: the first text child loses leading, the last trailing whitespace.
fn strip_whitespace(children: &mut [KEl]) {
    if let Some(first) = children.first_mut()
        && first.ty == Ty::Text
    {
        first.value = first.value.trim_start_matches(is_ruby_space).to_owned();
    }
    if let Some(last) = children.last_mut()
        && last.ty == Ty::Text
    {
        last.value = last
            .value
            .trim_end_matches(|c| is_ruby_space(c) || c == '\0')
            .to_owned();
    }
}

/// `remove_whitespace_children`: blank text first, last, or between two blocks goes.
fn remove_whitespace_children(children: &mut Vec<KEl>) {
    let count = children.len();
    let blocks: Vec<bool> = children
        .iter()
        .map(|child| child.category() == Some(Category::Block))
        .collect();
    let mut index = 0;
    children.retain(|child| {
        let i = index;
        index += 1;
        let blank = child.ty == Ty::Text && child.value.chars().all(is_ruby_space);
        let removable = i == 0
            || i + 1 == count
            || (i
                .checked_sub(1)
                .and_then(|p| blocks.get(p))
                .copied()
                .unwrap_or(false)
                && blocks.get(i + 1).copied().unwrap_or(false));
        !(blank && removable)
    });
}

// ---- the kramdown converter (GitLab's Commonmark subclass) -----------------------------------
//
// Ruby builds each element's string and concatenates it into its parent's; here everything is
// written into one buffer, so deep nesting costs no repeated copying. Where Kramdown tests a
// child result for emptiness, the position before it is remembered instead.

#[derive(Debug, Default)]
struct Context {
    /// Reference links in order of first use: `(href, title)`.
    link_refs: Vec<(String, Option<String>)>,
}

#[derive(Debug, Clone, Default)]
struct Opts {
    raw_text: bool,
    block_raw_text: bool,
    force_raw_text: bool,
    prev: Option<Ty>,
    next: Option<Ty>,
}

fn inner(el: &KEl, opts: &Opts, context: &mut Context, out: &mut String) {
    for (index, child) in el.children.iter().enumerate() {
        let mut child_opts = opts.clone();
        child_opts.prev = index
            .checked_sub(1)
            .and_then(|i| el.children.get(i))
            .map(|c| c.ty);
        child_opts.next = el.children.get(index + 1).map(|c| c.ty);
        convert_el(child, child_opts, el, context, out);
    }
}

fn convert_el(el: &KEl, mut opts: Opts, parent: &KEl, context: &mut Context, out: &mut String) {
    match el.ty {
        Ty::Root => inner(el, &opts, context, out),
        Ty::Text => convert_text(el, &opts, parent, out),
        Ty::Em | Ty::Strong => {
            let mark = if el.ty == Ty::Em { "*" } else { "**" };
            out.push_str(mark);
            inner(el, &opts, context, out);
            out.push_str(mark);
            // `{::}` keeps two adjacent emphases apart.
            if matches!(opts.next, Some(Ty::Em | Ty::Strong)) && ial_for(el).is_none() {
                out.push_str("{::}");
            }
        }
        Ty::A => convert_a(el, &opts, context, out),
        Ty::Img => convert_img(el, out),
        Ty::Br => out.push_str("  \n"),
        Ty::Codespan => convert_codespan(&el.value, out),
        Ty::Comment => {
            out.push_str(&el.value);
            let raw_parent = parent.ty == Ty::Html && parent.model == ContentModel::Raw;
            if el.category == Category::Block && !raw_parent {
                out.push('\n');
            }
        }
        Ty::Html => convert_html_element(el, &mut opts, parent, context, out),
    }
    if el.ty != Ty::Html
        && let Some(ial) = ial_for(el)
    {
        out.push_str(&ial);
        if el.is_block() {
            out.push_str("\n\n");
        }
    } else if el.is_block() && (el.ty != Ty::Html || parent.ty != Ty::Html) {
        out.push('\n');
    }
}

fn convert_text(el: &KEl, opts: &Opts, parent: &KEl, out: &mut String) {
    if opts.raw_text || (parent.ty == Ty::Html && parent.model == ContentModel::Raw) {
        out.push_str(&el.value);
        return;
    }
    let value = match el.value.strip_prefix('\n') {
        Some(rest) if opts.prev == Some(Ty::Br) => rest,
        _ => el.value.as_str(),
    };
    let collapsed = collapse_whitespace(value);
    let colon = if opts.prev.is_none() || opts.prev == Some(Ty::Br) {
        Colon::Escape
    } else {
        Colon::Keep
    };
    out.push_str(&escape_markdown(&collapsed, colon));
}

/// What `ESCAPED_CHAR_RE`'s line-start colon alternative turns into.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Colon {
    /// Text at the start of its parent or after a line break: `\:`.
    Escape,
    /// Other text: left as written.
    Keep,
    /// Image alt text: the colon without the spaces before it.
    Bare,
}

/// `gsub(ESCAPED_CHAR_RE)`, `ESCAPED_CHAR_RE = /(\$\$|[\\*_`\[\]{"'|])|^ {0,3}(:)/`.
fn escape_markdown(text: &str, colon: Colon) -> String {
    let mut out = String::with_capacity(text.len() + 8);
    let mut rest = text;
    let mut line_start = true;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with("$$") {
            out.push_str("\\$$");
            rest = rest.get(2..).unwrap_or("");
            line_start = false;
            continue;
        }
        if matches!(
            c,
            '\\' | '*' | '_' | '`' | '[' | ']' | '{' | '"' | '\'' | '|'
        ) {
            out.push('\\');
            out.push(c);
            rest = rest.get(c.len_utf8()..).unwrap_or("");
            line_start = false;
            continue;
        }
        if line_start {
            let spaces = rest.bytes().take_while(|&b| b == b' ').count().min(3);
            if rest.as_bytes().get(spaces) == Some(&b':') {
                match colon {
                    Colon::Escape => out.push_str("\\:"),
                    Colon::Keep => out.push_str(rest.get(..=spaces).unwrap_or(":")),
                    Colon::Bare => out.push(':'),
                }
                rest = rest.get(spaces + 1..).unwrap_or("");
                line_start = false;
                continue;
            }
        }
        out.push(c);
        line_start = c == '\n';
        rest = rest.get(c.len_utf8()..).unwrap_or("");
    }
    out
}

/// Whether Ruby's `href =~ /^(?:http|ftp)/` matches (`^` is any line start).
fn is_absolute_link(href: &str) -> bool {
    href.split('\n')
        .any(|line| line.starts_with("http") || line.starts_with("ftp"))
}

fn convert_a(el: &KEl, opts: &Opts, context: &mut Context, out: &mut String) {
    let href = el.attr("href").unwrap_or("");
    if href.is_empty() {
        out.push('[');
        inner(el, opts, context, out);
        out.push_str("]()");
    } else if is_absolute_link(href) || href.contains(['(', ')']) {
        // The reference number is taken before the text is converted, as in Kramdown.
        let index = match context
            .link_refs
            .iter()
            .position(|(known, _)| known == href)
        {
            Some(position) => position + 1,
            None => {
                context
                    .link_refs
                    .push((href.to_owned(), el.attr("title").map(str::to_owned)));
                context.link_refs.len()
            }
        };
        out.push('[');
        inner(el, opts, context, out);
        out.push_str(&format!("][{index}]"));
    } else {
        out.push('[');
        inner(el, opts, context, out);
        out.push_str(&format!("]({href}{})", parse_title(el.attr("title"))));
    }
}

fn convert_img(el: &KEl, out: &mut String) {
    let alt = escape_markdown(el.attr("alt").unwrap_or(""), Colon::Bare);
    let src = el.attr("src").unwrap_or("");
    if src.is_empty() {
        out.push_str(&format!("![{alt}]()"));
        return;
    }
    let title = parse_title(el.attr("title"));
    if src.contains(['(', ')']) {
        out.push_str(&format!("![{alt}](<{src}>{title})"));
    } else {
        out.push_str(&format!("![{alt}]({src}{title})"));
    }
}

fn convert_codespan(value: &str, out: &mut String) {
    let longest = value.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    let delimiter = "`".repeat(longest + 1);
    let pad = if delimiter.len() > 1 { " " } else { "" };
    out.push_str(&format!("{delimiter}{pad}{value}{pad}{delimiter}"));
}

/// `parse_title`: ` "title"` with `"` as `&quot;`, or nothing.
fn parse_title(title: Option<&str>) -> String {
    match title {
        Some(title) if !title.is_empty() => format!(" \"{}\"", title.replace('"', "&quot;")),
        _ => String::new(),
    }
}

fn convert_html_element(
    el: &KEl,
    opts: &mut Opts,
    parent: &KEl,
    context: &mut Context,
    out: &mut String,
) {
    let markdown_attr = el.category == Category::Block
        && el
            .children
            .iter()
            .any(|child| child.ty != Ty::Html && child.is_block());
    if matches!(el.name.as_str(), "script" | "pre" | "code") {
        opts.force_raw_text = true;
    }
    opts.raw_text = opts.force_raw_text
        || opts.block_raw_text
        || (el.category != Category::Span && !markdown_attr);
    if el.category == Category::Block && opts.raw_text {
        opts.block_raw_text = true;
    }
    let with_body = matches!(
        el.name.as_str(),
        "div" | "script" | "iframe" | "textarea" | "th" | "td"
    );
    let mut attrs = el.attrs.clone();
    if markdown_attr {
        match attrs.iter_mut().find(|(key, _)| key == "markdown") {
            Some(existing) => existing.1 = "1".to_owned(),
            None => attrs.push(("markdown".to_owned(), "1".to_owned())),
        }
    }
    out.push('<');
    out.push_str(&el.name);
    out.push_str(&html_attributes(&attrs));
    let open_end = out.len();
    let block_body = el.category == Category::Block && el.model == ContentModel::Block;
    out.push_str(if block_body { ">\n" } else { ">" });
    let content_start = out.len();
    inner(el, opts, context, out);
    let empty = out.len() == content_start;
    if el.category == Category::Span {
        if !empty || with_body {
            out.push_str(&format!("</{}>", el.name));
        } else {
            out.truncate(open_end);
            out.push_str(" />");
        }
        return;
    }
    if !empty {
        out.push_str(&format!("</{}>", el.name));
    } else if with_body {
        out.truncate(open_end);
        out.push_str(&format!("></{}>", el.name));
    } else {
        out.truncate(open_end);
        out.push_str(" />");
    }
    if !(parent.ty == Ty::Html && parent.model == ContentModel::Raw) {
        out.push('\n');
    }
}

/// `html_attributes`: ` name="value"`, value escaped for an attribute (existing references
/// kept), an empty `id` dropped.
fn html_attributes(attrs: &[(String, String)]) -> String {
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
fn ial_for(el: &KEl) -> Option<String> {
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
    fn escapes_like_escaped_char_re() {
        assert_eq!(
            escape_markdown("a*b_c [d] {e} \"f\" 'g' |h| $$ $", Colon::Keep),
            "a\\*b\\_c \\[d\\] \\{e} \\\"f\\\" \\'g\\' \\|h\\| \\$$ $"
        );
        assert_eq!(escape_markdown(" :x", Colon::Escape), "\\:x");
        assert_eq!(escape_markdown(" :x", Colon::Keep), " :x");
        assert_eq!(escape_markdown("a\n  :b", Colon::Bare), "a\n:b");
    }

    #[test]
    fn code_spans_grow_their_delimiters() {
        let mut out = String::new();
        convert_codespan("x", &mut out);
        convert_codespan("a`b", &mut out);
        assert_eq!(out, "`x``` a`b ``");
    }

    #[test]
    fn splits_classes_like_ruby() {
        assert_eq!(ruby_split_whitespace(" a  b "), vec!["", "a", "b"]);
        assert_eq!(ruby_split_whitespace("   "), Vec::<&str>::new());
    }
}
