//! Kramdown's element tree, as its HTML parser builds it from GitLab's DOM and its converter
//! reads it: the element type ([`KEl`]) with its kinds, categories and content models, and
//! Kramdown's tables that classify HTML elements by name (span elements, content models, and
//! which elements get their text or whitespace children removed or stripped).
//!
//! Both stages depend on these, so they sit apart from either.

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Ty {
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
pub(super) enum Category {
    Span,
    Block,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ContentModel {
    Block,
    Span,
    Raw,
}

#[derive(Debug, Clone)]
pub(super) struct KEl {
    pub(super) ty: Ty,
    /// Element name for `Html`.
    pub(super) name: String,
    /// Text (as Kramdown's parser holds it: entity references as written), comment source or
    /// code span content.
    pub(super) value: String,
    /// Attributes as Kramdown parsed them from the serialisation.
    pub(super) attrs: Vec<(String, String)>,
    pub(super) children: Vec<KEl>,
    pub(super) category: Category,
    pub(super) model: ContentModel,
}

impl KEl {
    pub(super) fn new(ty: Ty) -> Self {
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

    pub(super) fn attr(&self, name: &str) -> Option<&str> {
        self.attrs
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// `Element#block?`.
    pub(super) fn is_block(&self) -> bool {
        matches!(self.ty, Ty::Html | Ty::Comment) && self.category == Category::Block
    }

    /// `Element.category`, where the root has none.
    pub(super) fn category(&self) -> Option<Category> {
        match self.ty {
            Ty::Root => None,
            Ty::Html | Ty::Comment => Some(self.category),
            _ => Some(Category::Span),
        }
    }
}

/// Kramdown's `HTML_SPAN_ELEMENTS`.
pub(super) fn is_span_element(name: &str) -> bool {
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
pub(super) fn content_model(name: &str) -> ContentModel {
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

pub(super) fn removes_text_children(name: &str) -> bool {
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

pub(super) fn removes_whitespace_children(name: &str) -> bool {
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

pub(super) fn strips_whitespace(name: &str) -> bool {
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
pub(super) fn has_own_converter(name: &str) -> bool {
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
