//! libxml2's HTML 4 element knowledge (from `HTMLparser.c` / `HTMLtree.c`, 2.9–2.13 series), the
//! parser Nokogiri uses for GitLab. The tree it builds from sloppy mail HTML — which start tag
//! closes which open element, which end tag may close what, which elements are void — decides
//! where html2text later puts its newlines, so these tables are reproduced as they are.

/// `(open element, new start tag)`: the new start tag implicitly closes the open element
/// (`htmlStartClose`). Sorted by `(old, new)` for binary search.
const START_CLOSE: [(&str, &str); 249] = [
    ("a", "a"),
    ("a", "fieldset"),
    ("a", "table"),
    ("a", "td"),
    ("a", "th"),
    ("address", "dd"),
    ("address", "dl"),
    ("address", "dt"),
    ("address", "form"),
    ("address", "li"),
    ("address", "ul"),
    ("b", "center"),
    ("b", "p"),
    ("b", "td"),
    ("b", "th"),
    ("big", "p"),
    ("caption", "col"),
    ("caption", "colgroup"),
    ("caption", "tbody"),
    ("caption", "tfoot"),
    ("caption", "thead"),
    ("caption", "tr"),
    ("col", "col"),
    ("col", "colgroup"),
    ("col", "tbody"),
    ("col", "tfoot"),
    ("col", "thead"),
    ("col", "tr"),
    ("colgroup", "colgroup"),
    ("colgroup", "tbody"),
    ("colgroup", "tfoot"),
    ("colgroup", "thead"),
    ("colgroup", "tr"),
    ("dd", "dt"),
    ("dir", "dd"),
    ("dir", "dl"),
    ("dir", "dt"),
    ("dir", "form"),
    ("dir", "ul"),
    ("dl", "form"),
    ("dl", "li"),
    ("dt", "dd"),
    ("dt", "dl"),
    ("font", "center"),
    ("font", "td"),
    ("font", "th"),
    ("form", "form"),
    ("h1", "fieldset"),
    ("h1", "form"),
    ("h1", "li"),
    ("h1", "p"),
    ("h1", "table"),
    ("h2", "fieldset"),
    ("h2", "form"),
    ("h2", "li"),
    ("h2", "p"),
    ("h2", "table"),
    ("h3", "fieldset"),
    ("h3", "form"),
    ("h3", "li"),
    ("h3", "p"),
    ("h3", "table"),
    ("h4", "fieldset"),
    ("h4", "form"),
    ("h4", "li"),
    ("h4", "p"),
    ("h4", "table"),
    ("h5", "fieldset"),
    ("h5", "form"),
    ("h5", "li"),
    ("h5", "p"),
    ("h5", "table"),
    ("h6", "fieldset"),
    ("h6", "form"),
    ("h6", "li"),
    ("h6", "p"),
    ("h6", "table"),
    ("head", "a"),
    ("head", "abbr"),
    ("head", "acronym"),
    ("head", "address"),
    ("head", "b"),
    ("head", "bdo"),
    ("head", "big"),
    ("head", "blockquote"),
    ("head", "body"),
    ("head", "br"),
    ("head", "center"),
    ("head", "cite"),
    ("head", "code"),
    ("head", "dd"),
    ("head", "dfn"),
    ("head", "dir"),
    ("head", "div"),
    ("head", "dl"),
    ("head", "dt"),
    ("head", "em"),
    ("head", "fieldset"),
    ("head", "font"),
    ("head", "form"),
    ("head", "frameset"),
    ("head", "h1"),
    ("head", "h2"),
    ("head", "h3"),
    ("head", "h4"),
    ("head", "h5"),
    ("head", "h6"),
    ("head", "hr"),
    ("head", "i"),
    ("head", "iframe"),
    ("head", "img"),
    ("head", "kbd"),
    ("head", "li"),
    ("head", "listing"),
    ("head", "map"),
    ("head", "menu"),
    ("head", "ol"),
    ("head", "p"),
    ("head", "pre"),
    ("head", "q"),
    ("head", "s"),
    ("head", "samp"),
    ("head", "small"),
    ("head", "span"),
    ("head", "strike"),
    ("head", "strong"),
    ("head", "sub"),
    ("head", "sup"),
    ("head", "table"),
    ("head", "tt"),
    ("head", "u"),
    ("head", "ul"),
    ("head", "var"),
    ("head", "xmp"),
    ("hr", "form"),
    ("i", "center"),
    ("i", "p"),
    ("i", "td"),
    ("i", "th"),
    ("legend", "fieldset"),
    ("li", "li"),
    ("link", "body"),
    ("link", "frameset"),
    ("listing", "dd"),
    ("listing", "dl"),
    ("listing", "dt"),
    ("listing", "fieldset"),
    ("listing", "form"),
    ("listing", "li"),
    ("listing", "table"),
    ("listing", "ul"),
    ("menu", "dd"),
    ("menu", "dl"),
    ("menu", "dt"),
    ("menu", "form"),
    ("menu", "ul"),
    ("ol", "form"),
    ("option", "optgroup"),
    ("option", "option"),
    ("p", "address"),
    ("p", "blockquote"),
    ("p", "body"),
    ("p", "caption"),
    ("p", "center"),
    ("p", "col"),
    ("p", "colgroup"),
    ("p", "dd"),
    ("p", "dir"),
    ("p", "div"),
    ("p", "dl"),
    ("p", "dt"),
    ("p", "fieldset"),
    ("p", "form"),
    ("p", "frameset"),
    ("p", "h1"),
    ("p", "h2"),
    ("p", "h3"),
    ("p", "h4"),
    ("p", "h5"),
    ("p", "h6"),
    ("p", "head"),
    ("p", "hr"),
    ("p", "li"),
    ("p", "listing"),
    ("p", "menu"),
    ("p", "ol"),
    ("p", "p"),
    ("p", "pre"),
    ("p", "table"),
    ("p", "tbody"),
    ("p", "td"),
    ("p", "tfoot"),
    ("p", "th"),
    ("p", "title"),
    ("p", "tr"),
    ("p", "ul"),
    ("p", "xmp"),
    ("pre", "dd"),
    ("pre", "dl"),
    ("pre", "dt"),
    ("pre", "fieldset"),
    ("pre", "form"),
    ("pre", "li"),
    ("pre", "table"),
    ("pre", "ul"),
    ("s", "p"),
    ("script", "noscript"),
    ("small", "p"),
    ("span", "td"),
    ("span", "th"),
    ("strike", "p"),
    ("style", "body"),
    ("style", "frameset"),
    ("tbody", "tbody"),
    ("tbody", "tfoot"),
    ("td", "tbody"),
    ("td", "td"),
    ("td", "tfoot"),
    ("td", "th"),
    ("td", "tr"),
    ("tfoot", "tbody"),
    ("th", "tbody"),
    ("th", "td"),
    ("th", "tfoot"),
    ("th", "th"),
    ("th", "tr"),
    ("thead", "tbody"),
    ("thead", "tfoot"),
    ("title", "body"),
    ("title", "frameset"),
    ("tr", "tbody"),
    ("tr", "tfoot"),
    ("tr", "tr"),
    ("tt", "p"),
    ("u", "p"),
    ("u", "td"),
    ("u", "th"),
    ("ul", "address"),
    ("ul", "form"),
    ("ul", "menu"),
    ("ul", "pre"),
    ("xmp", "dd"),
    ("xmp", "dl"),
    ("xmp", "dt"),
    ("xmp", "fieldset"),
    ("xmp", "form"),
    ("xmp", "li"),
    ("xmp", "table"),
    ("xmp", "ul"),
];

/// Whether the start tag `new` implicitly closes the open element `old` (`htmlCheckAutoClose`).
pub(crate) fn start_closes(new: &str, old: &str) -> bool {
    START_CLOSE
        .binary_search_by(|&(o, n)| o.cmp(old).then_with(|| n.cmp(new)))
        .is_ok()
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_close_table_is_sorted_for_binary_search() {
        assert!(START_CLOSE.windows(2).all(|pair| pair[0] < pair[1]));
        assert!(start_closes("div", "p"));
        assert!(start_closes("p", "b"));
        assert!(!start_closes("details", "p"));
        assert!(!start_closes("span", "p"));
    }
}
