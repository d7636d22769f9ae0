//! libxml2's HTML 4 element knowledge (from `HTMLparser.c` / `HTMLtree.c`, 2.9–2.13 series), the
//! parser Nokogiri uses for GitLab. The tree it builds from sloppy mail HTML — which start tag
//! closes which open element, which end tag may close what, which elements are void — decides
//! where html2text later puts its newlines, so these tables are reproduced as they are.

/// Whether the start tag `new` implicitly closes the open element `old` (`htmlCheckAutoClose`).
///
/// This is libxml2's `htmlStartClose` table of `(old, new)` pairs, grouped by the open element
/// so that the common case — an open element no start tag closes — costs a single match.
pub(crate) fn start_closes(new: &str, old: &str) -> bool {
    match old {
        "a" => matches!(new, "a" | "fieldset" | "table" | "td" | "th"),
        "address" => matches!(new, "dd" | "dl" | "dt" | "form" | "li" | "ul"),
        "b" => matches!(new, "center" | "p" | "td" | "th"),
        "big" => matches!(new, "p"),
        "caption" => matches!(new, "col" | "colgroup" | "tbody" | "tfoot" | "thead" | "tr"),
        "col" => matches!(new, "col" | "colgroup" | "tbody" | "tfoot" | "thead" | "tr"),
        "colgroup" => matches!(new, "colgroup" | "tbody" | "tfoot" | "thead" | "tr"),
        "dd" => matches!(new, "dt"),
        "dir" => matches!(new, "dd" | "dl" | "dt" | "form" | "ul"),
        "dl" => matches!(new, "form" | "li"),
        "dt" => matches!(new, "dd" | "dl"),
        "font" => matches!(new, "center" | "td" | "th"),
        "form" => matches!(new, "form"),
        "h1" => matches!(new, "fieldset" | "form" | "li" | "p" | "table"),
        "h2" => matches!(new, "fieldset" | "form" | "li" | "p" | "table"),
        "h3" => matches!(new, "fieldset" | "form" | "li" | "p" | "table"),
        "h4" => matches!(new, "fieldset" | "form" | "li" | "p" | "table"),
        "h5" => matches!(new, "fieldset" | "form" | "li" | "p" | "table"),
        "h6" => matches!(new, "fieldset" | "form" | "li" | "p" | "table"),
        "head" => matches!(
            new,
            "a" | "abbr"
                | "acronym"
                | "address"
                | "b"
                | "bdo"
                | "big"
                | "blockquote"
                | "body"
                | "br"
                | "center"
                | "cite"
                | "code"
                | "dd"
                | "dfn"
                | "dir"
                | "div"
                | "dl"
                | "dt"
                | "em"
                | "fieldset"
                | "font"
                | "form"
                | "frameset"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "hr"
                | "i"
                | "iframe"
                | "img"
                | "kbd"
                | "li"
                | "listing"
                | "map"
                | "menu"
                | "ol"
                | "p"
                | "pre"
                | "q"
                | "s"
                | "samp"
                | "small"
                | "span"
                | "strike"
                | "strong"
                | "sub"
                | "sup"
                | "table"
                | "tt"
                | "u"
                | "ul"
                | "var"
                | "xmp"
        ),
        "hr" => matches!(new, "form"),
        "i" => matches!(new, "center" | "p" | "td" | "th"),
        "legend" => matches!(new, "fieldset"),
        "li" => matches!(new, "li"),
        "link" => matches!(new, "body" | "frameset"),
        "listing" => matches!(
            new,
            "dd" | "dl" | "dt" | "fieldset" | "form" | "li" | "table" | "ul"
        ),
        "menu" => matches!(new, "dd" | "dl" | "dt" | "form" | "ul"),
        "ol" => matches!(new, "form"),
        "option" => matches!(new, "optgroup" | "option"),
        "p" => matches!(
            new,
            "address"
                | "blockquote"
                | "body"
                | "caption"
                | "center"
                | "col"
                | "colgroup"
                | "dd"
                | "dir"
                | "div"
                | "dl"
                | "dt"
                | "fieldset"
                | "form"
                | "frameset"
                | "h1"
                | "h2"
                | "h3"
                | "h4"
                | "h5"
                | "h6"
                | "head"
                | "hr"
                | "li"
                | "listing"
                | "menu"
                | "ol"
                | "p"
                | "pre"
                | "table"
                | "tbody"
                | "td"
                | "tfoot"
                | "th"
                | "title"
                | "tr"
                | "ul"
                | "xmp"
        ),
        "pre" => matches!(
            new,
            "dd" | "dl" | "dt" | "fieldset" | "form" | "li" | "table" | "ul"
        ),
        "s" => matches!(new, "p"),
        "script" => matches!(new, "noscript"),
        "small" => matches!(new, "p"),
        "span" => matches!(new, "td" | "th"),
        "strike" => matches!(new, "p"),
        "style" => matches!(new, "body" | "frameset"),
        "tbody" => matches!(new, "tbody" | "tfoot"),
        "td" => matches!(new, "tbody" | "td" | "tfoot" | "th" | "tr"),
        "tfoot" => matches!(new, "tbody"),
        "th" => matches!(new, "tbody" | "td" | "tfoot" | "th" | "tr"),
        "thead" => matches!(new, "tbody" | "tfoot"),
        "title" => matches!(new, "body" | "frameset"),
        "tr" => matches!(new, "tbody" | "tfoot" | "tr"),
        "tt" => matches!(new, "p"),
        "u" => matches!(new, "p" | "td" | "th"),
        "ul" => matches!(new, "address" | "form" | "menu" | "pre"),
        "xmp" => matches!(
            new,
            "dd" | "dl" | "dt" | "fieldset" | "form" | "li" | "table" | "ul"
        ),
        _ => false,
    }
}

/// `htmlEndPriority`: a misplaced end tag may only close elements of lower or equal priority.
pub(crate) fn end_priority(name: &str) -> u32 {
    match name {
        "div" => 150,
        "td" | "th" => 160,
        "tr" => 170,
        "thead" | "tbody" | "tfoot" => 180,
        "table" => 190,
        "head" | "body" => 200,
        "html" => 220,
        _ => 100,
    }
}

/// What libxml2's `html40ElementTable` says about an element, for the fields that matter here.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ElementInfo {
    /// Void element: closed right after its start tag, serialised without end tag.
    pub(crate) empty: bool,
    /// Inline element: the serialiser adds no formatting newlines around it.
    pub(crate) inline: bool,
    /// Serialised without end tag when it has no children (only `li` besides void elements).
    pub(crate) save_end_tag: bool,
}

/// `htmlTagLookup`: `None` for elements HTML 4 does not know (`details`, `o:p`, `section`…).
pub(crate) fn element_info(name: &str) -> Option<ElementInfo> {
    const BLOCK: ElementInfo = ElementInfo {
        empty: false,
        inline: false,
        save_end_tag: false,
    };
    const INLINE: ElementInfo = ElementInfo {
        empty: false,
        inline: true,
        save_end_tag: false,
    };
    const VOID_BLOCK: ElementInfo = ElementInfo {
        empty: true,
        inline: false,
        save_end_tag: true,
    };
    const VOID_INLINE: ElementInfo = ElementInfo {
        empty: true,
        inline: true,
        save_end_tag: true,
    };
    let info = match name {
        "a" | "abbr" | "acronym" | "applet" | "b" | "bdo" | "big" | "button" | "cite" | "code"
        | "del" | "dfn" | "em" | "embed" | "font" | "i" | "iframe" | "ins" | "kbd" | "label"
        | "map" | "object" | "q" | "s" | "samp" | "script" | "select" | "small" | "span"
        | "strike" | "strong" | "sub" | "sup" | "textarea" | "tt" | "u" | "var" => INLINE,
        "basefont" | "br" | "img" | "input" => VOID_INLINE,
        "area" | "base" | "col" | "frame" | "hr" | "isindex" | "link" | "meta" | "param" => {
            VOID_BLOCK
        }
        "li" => ElementInfo {
            empty: false,
            inline: false,
            save_end_tag: true,
        },
        "address" | "blockquote" | "body" | "caption" | "center" | "colgroup" | "dd" | "dir"
        | "div" | "dl" | "dt" | "fieldset" | "form" | "frameset" | "h1" | "h2" | "h3" | "h4"
        | "h5" | "h6" | "head" | "html" | "legend" | "menu" | "noframes" | "noscript" | "ol"
        | "optgroup" | "option" | "p" | "pre" | "style" | "table" | "tbody" | "td" | "tfoot"
        | "th" | "thead" | "title" | "tr" | "ul" => BLOCK,
        _ => return None,
    };
    Some(info)
}

/// `htmlIsBooleanAttr`: serialised as a bare name whatever its value.
pub(crate) fn is_boolean_attr(name: &str) -> bool {
    matches!(
        name,
        "checked"
            | "compact"
            | "declare"
            | "defer"
            | "disabled"
            | "ismap"
            | "multiple"
            | "nohref"
            | "noresize"
            | "noshade"
            | "nowrap"
            | "readonly"
            | "selected"
    )
}

/// The static copy of an element or attribute name common in mail, so that parsing a tag does
/// not allocate its name.
pub(crate) fn common_name(name: &str) -> Option<&'static str> {
    let known = match name {
        "a" => "a",
        "b" => "b",
        "i" => "i",
        "p" => "p",
        "q" => "q",
        "s" => "s",
        "u" => "u",
        "br" => "br",
        "dd" => "dd",
        "dl" => "dl",
        "dt" => "dt",
        "em" => "em",
        "h1" => "h1",
        "h2" => "h2",
        "h3" => "h3",
        "h4" => "h4",
        "h5" => "h5",
        "h6" => "h6",
        "hr" => "hr",
        "id" => "id",
        "li" => "li",
        "ol" => "ol",
        "td" => "td",
        "th" => "th",
        "tr" => "tr",
        "tt" => "tt",
        "ul" => "ul",
        "alt" => "alt",
        "bdo" => "bdo",
        "big" => "big",
        "col" => "col",
        "del" => "del",
        "dfn" => "dfn",
        "dir" => "dir",
        "div" => "div",
        "img" => "img",
        "ins" => "ins",
        "kbd" => "kbd",
        "map" => "map",
        "nav" => "nav",
        "o:p" => "o:p",
        "pre" => "pre",
        "rel" => "rel",
        "src" => "src",
        "sub" => "sub",
        "sup" => "sup",
        "svg" => "svg",
        "var" => "var",
        "wbr" => "wbr",
        "xml" => "xml",
        "abbr" => "abbr",
        "area" => "area",
        "base" => "base",
        "body" => "body",
        "cite" => "cite",
        "code" => "code",
        "data" => "data",
        "face" => "face",
        "font" => "font",
        "form" => "form",
        "head" => "head",
        "href" => "href",
        "html" => "html",
        "lang" => "lang",
        "link" => "link",
        "main" => "main",
        "mark" => "mark",
        "menu" => "menu",
        "meta" => "meta",
        "name" => "name",
        "role" => "role",
        "samp" => "samp",
        "size" => "size",
        "span" => "span",
        "time" => "time",
        "type" => "type",
        "align" => "align",
        "aside" => "aside",
        "audio" => "audio",
        "class" => "class",
        "color" => "color",
        "embed" => "embed",
        "frame" => "frame",
        "input" => "input",
        "label" => "label",
        "param" => "param",
        "small" => "small",
        "style" => "style",
        "table" => "table",
        "tbody" => "tbody",
        "tfoot" => "tfoot",
        "thead" => "thead",
        "title" => "title",
        "value" => "value",
        "video" => "video",
        "vlink" => "vlink",
        "width" => "width",
        "xmlns" => "xmlns",
        "applet" => "applet",
        "border" => "border",
        "button" => "button",
        "center" => "center",
        "figure" => "figure",
        "footer" => "footer",
        "header" => "header",
        "height" => "height",
        "hspace" => "hspace",
        "iframe" => "iframe",
        "legend" => "legend",
        "nowrap" => "nowrap",
        "object" => "object",
        "option" => "option",
        "script" => "script",
        "select" => "select",
        "source" => "source",
        "strike" => "strike",
        "strong" => "strong",
        "target" => "target",
        "valign" => "valign",
        "vspace" => "vspace",
        "acronym" => "acronym",
        "address" => "address",
        "article" => "article",
        "bgcolor" => "bgcolor",
        "caption" => "caption",
        "charset" => "charset",
        "colspan" => "colspan",
        "content" => "content",
        "details" => "details",
        "isindex" => "isindex",
        "picture" => "picture",
        "rowspan" => "rowspan",
        "section" => "section",
        "summary" => "summary",
        "xmlns:m" => "xmlns:m",
        "xmlns:o" => "xmlns:o",
        "xmlns:v" => "xmlns:v",
        "xmlns:w" => "xmlns:w",
        "basefont" => "basefont",
        "colgroup" => "colgroup",
        "fieldset" => "fieldset",
        "frameset" => "frameset",
        "noframes" => "noframes",
        "noscript" => "noscript",
        "optgroup" => "optgroup",
        "tabindex" => "tabindex",
        "textarea" => "textarea",
        "background" => "background",
        "blockquote" => "blockquote",
        "figcaption" => "figcaption",
        "http-equiv" => "http-equiv",
        "cellpadding" => "cellpadding",
        "cellspacing" => "cellspacing",
        _ => return None,
    };
    Some(known)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_close_pairs() {
        assert!(start_closes("div", "p"));
        assert!(start_closes("p", "b"));
        assert!(!start_closes("details", "p"));
        assert!(!start_closes("span", "p"));
        assert_eq!(common_name("href"), Some("href"));
        assert_eq!(common_name("x-unknown"), None);
    }
}
