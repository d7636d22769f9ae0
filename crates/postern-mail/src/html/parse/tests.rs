//! Unit tests of the parser: the tree shapes libxml2 builds (and an HTML5 parser would not),
//! attributes, entities and the depth limit, checked on a compact rendering of the tree.

use super::*;
use crate::html::dom::{DOCUMENT, Kind};

/// A compact rendering of the tree for assertions: `name(children)`, text quoted.
fn shape(dom: &Dom, id: NodeId) -> String {
    let children: Vec<String> = dom.children(id).iter().map(|&c| shape(dom, c)).collect();
    match &dom.node(id).kind {
        Kind::Document => children.join(""),
        Kind::Element { name, .. } => format!("{name}({})", children.join(",")),
        Kind::Text(text) => format!("{text:?}"),
        Kind::Comment(_) => "#".to_owned(),
    }
}

fn tree(html: &str) -> String {
    let dom = parse(html);
    shape(&dom, DOCUMENT)
}

#[test]
fn implies_html_body_and_leading_paragraph() {
    assert_eq!(
        tree("Hello<br>world"),
        r#"html(body(p("Hello",br(),"world")))"#
    );
    assert_eq!(tree("<div>x</div>"), r#"html(body(div("x")))"#);
    assert_eq!(tree("<b>x</b> y"), r#"html(body(b("x")," y"))"#);
}

#[test]
fn follows_libxml2_not_html5_for_unknown_and_stray_tags() {
    assert_eq!(
        tree("<p><details>d</details></p>"),
        r#"html(body(p(details("d"))))"#
    );
    assert_eq!(
        tree("<p><div>x</div></p>y"),
        r#"html(body(p(),div("x"),"y"))"#
    );
    assert_eq!(tree("<div/>x"), r#"html(body(div(),"x"))"#);
    assert_eq!(
        tree("<div><span>a</div>b"),
        r#"html(body(div(span("a")),"b"))"#
    );
    assert_eq!(
        tree("<div><span>a</span></div></span>b"),
        r#"html(body(div(span("a")),"b"))"#
    );
}

#[test]
fn head_content_and_entities() {
    assert_eq!(
        tree("<title>t</title><p>a &amp; b &foo; &copy &hellip; &#65;&#x42;</p>"),
        r#"html(head(title("t")),body(p("a & b &foo; &copy … AB")))"#
    );
    assert_eq!(tree("<p>a<!-- c -->b</p>"), r#"html(body(p("a",#,"b")))"#);
    assert_eq!(
        tree("<style>p > b { }</style>x"),
        r#"html(head(style("p > b { }")),body(p("x")))"#
    );
}

#[test]
fn attributes_keep_source_order_and_first_duplicate() {
    let dom = parse(r#"<a href="x&amp;y" HREF=z title='t' nowrap>l</a>"#);
    let link = dom
        .preorder(DOCUMENT)
        .into_iter()
        .find(|&id| dom.element_name(id) == Some("a"));
    let link = link.unwrap_or(DOCUMENT);
    let attrs: Vec<(String, Option<String>)> = dom
        .attrs(link)
        .iter()
        .map(|a| (a.name.to_string(), a.value.clone()))
        .collect();
    assert_eq!(
        attrs,
        vec![
            ("href".into(), Some("x&y".into())),
            ("title".into(), Some("t".into())),
            ("nowrap".into(), None)
        ]
    );
}

#[test]
fn duplicate_attributes_keep_the_first_even_in_long_lists() {
    let names: String = (0..40).map(|i| format!(" a{i}={i}")).collect();
    let dom = parse(&format!("<p{names} a3=x a30=y>t</p>"));
    let p = dom
        .preorder(DOCUMENT)
        .into_iter()
        .find(|&id| dom.element_name(id) == Some("p"))
        .unwrap_or(DOCUMENT);
    assert_eq!(dom.attrs(p).len(), 40);
    assert_eq!(dom.attr(p, "a3"), Some("3"));
    assert_eq!(dom.attr(p, "a30"), Some("30"));
}

#[test]
fn depth_limit_halts_like_libxml2() {
    let html = "<div>".repeat(1000) + "deep";
    let dom = parse(&html);
    let depth = dom.preorder(DOCUMENT).len();
    // html + body + divs up to the limit; the text is never reached.
    assert_eq!(depth, MAX_DEPTH + 2);
}
