"""Page templates for the replica: two legacy Joomla-style themes and the successor's.

The two legacy themes carry the same boilerplate text in different markup
(semantic divs with Bootstrap-ish classes versus an old table layout with other
ids), so a boilerplate learner can be tested on a template it has never seen.
Every boilerplate block is rendered by a function whose output text is also
what the ground truth records, so the truth cannot drift from the pages.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from .flavour import Flavour

THEMES = ("protostar", "classic")


@dataclass
class Chrome:
    """Everything around the main content of one legacy page."""

    title: str
    base_href: str
    body_class: str
    breadcrumbs: list[tuple[str, str]]  # (label, href); last one is the current page
    popup: bool
    contact: bool
    nav_active: str  # section slug
    head_links: list[str] = field(default_factory=list)  # extra <link> tags (RSS)
    charset: str = "utf-8"
    feedback: bool = True
    pager: list[tuple[str, str]] = field(default_factory=list)  # prev/next article links


def e(s: str) -> str:
    return escape(s, quote=True)


def popup_paragraphs(fl: Flavour) -> list[str]:
    return [
        f"Good news: we have a new website, www.{fl.new_host}, with more about the NHS "
        "services near you.",
        f"This website stopped being updated on {fl.frozen_words}. Our new website has "
        "the most recent news and information.",
        "To read the archived pages here, close this message with the cross in the top "
        "right corner.",
    ]


POPUP_TITLE = "Website No Longer Being Updated"


def contact_line(fl: Flavour) -> str:
    return f"Contact us on {fl.phone} or {fl.email}"


def boilerplate_texts(
    fl: Flavour, chrome: Chrome, nav_text: str, latest: list[str]
) -> list[dict[str, str]]:
    """The boilerplate blocks of a page, in page order, as the ground truth records them."""
    blocks = [{"name": "tagline", "text": fl.tagline}]
    if chrome.contact:
        blocks.append({"name": "contact", "text": contact_line(fl)})
    if chrome.popup:
        blocks.append({"name": "popup", "text": " ".join([POPUP_TITLE, *popup_paragraphs(fl)])})
    blocks.append({"name": "navigation", "text": nav_text})
    if chrome.breadcrumbs:
        crumbs = " ".join(label for label, _ in chrome.breadcrumbs)
        blocks.append({"name": "breadcrumbs", "text": f"You are here: {crumbs}"})
    if chrome.pager:
        blocks.append({"name": "pager", "text": " ".join(label for label, _ in chrome.pager)})
    if chrome.feedback:
        blocks.append(
            {
                "name": "comment-form",
                "text": "Leave a comment Comment 1000 characters left Add files Submit",
            }
        )
    blocks.append({"name": "latest-news", "text": " ".join(["Latest news", *latest])})
    blocks.append(
        {
            "name": "login-form",
            "text": "Login Form Username Password Remember Me Log in Forgot your password? "
            "Forgot your username?",
        }
    )
    blocks.append({"name": "footer", "text": footer_text(fl)})
    return blocks


FOOTER_LINKS = (
    ("Accessibility", "/accessibility"),
    ("Freedom of information", "/your-ccg/publications"),
    ("Members area", "/members-area"),
    ("Contact us", "/contact-us"),
)


def footer_text(fl: Flavour) -> str:
    return " ".join(
        [
            f"© 2019 {fl.org_name}",
            *(label for label, _ in FOOTER_LINKS),
            "Back to Top",
        ]
    )


def nav_html(fl: Flavour, active: str, theme: str) -> tuple[str, str]:
    """The nested main menu, and its text for the ground truth."""
    words = ["Home"]
    items = ['<li class="item-101 default"><a href="/">Home</a></li>']
    for i, sec in enumerate(fl.sections):
        words.append(sec.title)
        sub = []
        for j, (slug, title) in enumerate(sec.subsections):
            words.append(title)
            sub.append(
                f'<li class="item-{200 + i * 20 + j}"><a href="/{sec.slug}/{slug}">'
                f"{e(title)}</a></li>"
            )
        cls = "active deeper parent" if sec.slug == active else "deeper parent"
        items.append(
            f'<li class="item-{110 + i} {cls}"><a href="/{sec.slug}">{e(sec.title)}</a>'
            f'<ul class="nav-child unstyled small">{"".join(sub)}</ul></li>'
        )
    words.append("Contact us")
    items.append('<li class="item-190"><a href="/contact-us">Contact us</a></li>')
    if theme == "protostar":
        html = (
            '<nav class="navigation" role="navigation"><ul class="nav menu nav-pills mod-list">'
            + "".join(items)
            + "</ul></nav>"
        )
    else:
        html = (
            '<div id="mainlevel" class="module-nav"><ul class="menu">'
            + "".join(items)
            + "</ul></div>"
        )
    return html, " ".join(words)


def _breadcrumbs(chrome: Chrome, theme: str) -> str:
    if not chrome.breadcrumbs:
        return ""
    parts = []
    for label, href in chrome.breadcrumbs[:-1]:
        parts.append(f'<a href="{e(href)}" class="pathway">{e(label)}</a>')
    parts.append(f"<span>{e(chrome.breadcrumbs[-1][0])}</span>")
    if theme == "protostar":
        lis = (
            "".join(f'<li>{p}<span class="divider">&raquo;</span></li>' for p in parts[:-1])
            + f'<li class="active">{parts[-1]}</li>'
        )
        return (
            '<div class="moduletable"><ul itemscope class="breadcrumb">'
            f"<li>You are here: &#160;</li>{lis}</ul></div>"
        )
    return (
        '<div id="pathway"><span class="breadcrumbs">You are here: '
        + ' <img src="/templates/classic/images/arrow.png" alt=""> '.join(parts)
        + "</span></div>"
    )


def _popup(fl: Flavour, theme: str) -> str:
    paras = "".join(f"<p>{e(p)}</p>" for p in popup_paragraphs(fl))
    if theme == "protostar":
        return (
            '<div id="popup-notice" class="modal hide fade" tabindex="-1" role="dialog" '
            'aria-hidden="true"><div class="modal-header"><button type="button" class="close" '
            'data-dismiss="modal" aria-label="Close">&times;</button>'
            f'<h3>{POPUP_TITLE}</h3></div><div class="modal-body">{paras}</div></div>'
        )
    return (
        '<div id="overlay-box" class="lightbox" style="display:none"><a class="lb-close" '
        f'href="#" title="Close">&times;</a><h2 class="lb-title">{POPUP_TITLE}</h2>{paras}</div>'
    )


def _feedback(theme: str) -> str:
    form_id = "comment-form" if theme == "protostar" else "jc"
    return (
        f'<div id="{form_id}" class="feedback"><h4>Leave a comment</h4>'
        '<form action="/index.php?option=com_feedback&amp;task=send" method="post" '
        'enctype="multipart/form-data"><label for="fb-text">Comment</label>'
        '<textarea id="fb-text" name="text" maxlength="1000"></textarea>'
        '<span class="chars-left"><span class="count">1000</span> characters left</span>'
        '<label class="upload">Add files <input type="file" name="files[]" multiple></label>'
        '<button type="submit" class="btn">Submit</button></form></div>'
    )


def _login(theme: str) -> str:
    wrapper = "moduletable" if theme == "protostar" else "module_login"
    return (
        f'<div class="{wrapper}"><h3>Login Form</h3>'
        '<form action="/your-ccg" method="post" id="login-form" class="form-inline">'
        '<div class="userdata"><label for="modlgn-username">Username</label>'
        '<input id="modlgn-username" type="text" name="username">'
        '<label for="modlgn-passwd">Password</label>'
        '<input id="modlgn-passwd" type="password" name="password">'
        '<label for="modlgn-remember">Remember Me</label>'
        '<input id="modlgn-remember" type="checkbox" name="remember" value="yes">'
        '<button type="submit" class="btn btn-primary">Log in</button>'
        '<input type="hidden" name="option" value="com_users">'
        '<input type="hidden" name="task" value="user.login"></div>'
        '<ul class="unstyled"><li><a href="/component/users/?view=reset&amp;Itemid=101">'
        "Forgot your password?</a></li>"
        '<li><a href="/component/users/?view=remind&amp;Itemid=101">'
        "Forgot your username?</a></li></ul></form></div>"
    )


def _latest(latest: list[tuple[str, str]], theme: str) -> str:
    lis = "".join(f'<li><a href="{e(h)}">{e(t)}</a></li>' for t, h in latest)
    cls = "moduletable" if theme == "protostar" else "module"
    return f'<div class="{cls} latest"><h3>Latest news</h3><ul class="latestnews">{lis}</ul></div>'


def _footer(fl: Flavour, theme: str) -> str:
    links = "".join(f'<li><a href="{h}">{e(t)}</a></li>' for t, h in FOOTER_LINKS)
    inner = (
        f'<p>&copy; 2019 {e(fl.org_name)}</p><ul class="footer-links">{links}</ul>'
        '<p class="pull-right"><a href="#top" id="back-top">Back to Top</a></p>'
    )
    if theme == "protostar":
        return f'<footer class="footer" role="contentinfo"><div class="container">{inner}</div></footer>'
    return f'<div id="footer">{inner}</div>'


def _pager(chrome: Chrome) -> str:
    if not chrome.pager:
        return ""
    lis = "".join(f'<li><a href="{e(h)}" rel="nofollow">{e(t)}</a></li>' for t, h in chrome.pager)
    return f'<ul class="pager pagenav">{lis}</ul>'


def legacy_page(
    fl: Flavour,
    theme: str,
    chrome: Chrome,
    main_html: str,
    nav: str,
    latest: list[tuple[str, str]],
) -> str:
    """Wrap main content in the full legacy template of the chosen theme."""
    head = (
        "<!DOCTYPE html>\n"
        f'<html lang="en-gb" dir="ltr">\n<head>\n<meta charset="{chrome.charset}">\n'
        f'<base href="{e(chrome.base_href)}">\n'
        '<meta name="generator" content="Joomla! - Open Source Content Management">\n'
        f"<title>{e(chrome.title)} - {e(fl.org_short)}</title>\n"
        f'<link href="/templates/{theme}/favicon.ico" rel="shortcut icon" '
        'type="image/vnd.microsoft.icon">\n'
        f'<link href="/templates/{theme}/css/template.css" rel="stylesheet">\n'
        + "".join(link + "\n" for link in chrome.head_links)
        + '<script src="/media/jui/js/jquery.min.js"></script>\n'
        f'<script src="/templates/{theme}/js/template.js"></script>\n</head>\n'
    )
    tagline = f"<p>{e(fl.tagline)}</p>"
    contact = (
        f'<p>Contact us on {e(fl.phone)} or <a href="mailto:{e(fl.email)}">{e(fl.email)}</a></p>'
        if chrome.contact
        else ""
    )
    popup = _popup(fl, theme) if chrome.popup else ""
    feedback = _feedback(theme) if chrome.feedback else ""
    crumbs = _breadcrumbs(chrome, theme)
    if theme == "protostar":
        body = (
            f'<body class="site {e(chrome.body_class)}">\n<div class="body"><div class="container">'
            '<header class="header" role="banner"><div class="header-inner clearfix">'
            f'<a class="brand pull-left" href="/"><img src="/templates/{theme}/images/logo.png" '
            f'alt="{e(fl.org_short)}"></a><div class="header-search pull-right">'
            f'<div class="custom tagline">{tagline}</div>'
            f'<div class="custom contact-strip">{contact}</div></div></div></header>\n'
            f"{popup}\n{nav}\n{crumbs}\n"
            '<div class="row-fluid"><main id="content" role="main" class="span9">'
            '<div id="system-message-container"></div>\n'
            f"{main_html}\n{_pager(chrome)}{feedback}</main>\n"
            f'<div id="aside" class="span3">{_latest(latest, theme)}{_login(theme)}</div></div>'
            f"</div></div>\n{_footer(fl, theme)}\n</body>\n</html>\n"
        )
    else:
        body = (
            f'<body id="page_bg" class="{e(chrome.body_class)}">\n'
            '<table id="layout" width="100%" cellpadding="0" cellspacing="0"><tr>'
            f'<td colspan="2" id="top"><img src="/templates/{theme}/images/logo.png" alt="">'
            f'<div id="strapline">{tagline}{contact}</div></td></tr>\n'
            f'<tr><td colspan="2">{popup}</td></tr>\n'
            f'<tr><td id="leftcol" valign="top">{nav}{_latest(latest, theme)}{_login(theme)}</td>\n'
            f'<td id="maincol" valign="top">{crumbs}<div class="contentpane">{main_html}</div>'
            f"{_pager(chrome)}{feedback}</td></tr>\n"
            f'<tr><td colspan="2">{_footer(fl, theme)}</td></tr></table>\n</body>\n</html>\n'
        )
    return head + body


def print_page(fl: Flavour, theme: str, title: str, main_html: str, base_href: str) -> str:
    """Joomla's tmpl=component print view: the article alone with a print script."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="en-gb" dir="ltr">\n<head>\n<meta charset="utf-8">\n'
        f'<base href="{e(base_href)}">\n<title>{e(title)} - {e(fl.org_short)}</title>\n'
        f'<link href="/templates/{theme}/css/print.css" rel="stylesheet" media="print">\n'
        f'</head>\n<body class="contentpane modal">\n{main_html}\n'
        "<script>window.print();</script>\n</body>\n</html>\n"
    )


def new_site_page(
    fl: Flavour,
    site_name: str,
    title: str,
    main_html: str,
    crumbs: list[tuple[str, str]],
    nav: list[tuple[str, str]],
) -> str:
    """A page of the successor site (a modern WordPress-style theme)."""
    nav_html = "".join(f'<li><a href="{e(h)}">{e(t)}</a></li>' for t, h in nav)
    crumb_html = (
        " / ".join([f'<a href="{e(h)}">{e(t)}</a>' for t, h in crumbs[:-1]] + [e(crumbs[-1][0])])
        if crumbs
        else ""
    )
    return (
        "<!doctype html>\n"
        f'<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{e(title)} | {e(site_name)}</title>\n"
        '<link rel="stylesheet" href="/assets/site.css">\n</head>\n<body>\n'
        f'<header class="site-header"><a class="logo" href="/">{e(site_name)}</a>'
        f'<nav class="primary"><ul>{nav_html}</ul></nav></header>\n'
        f'<main id="main"><nav class="crumbs">{crumb_html}</nav>\n<h1>{e(title)}</h1>\n'
        f"{main_html}\n</main>\n"
        f'<footer class="site-footer"><p>{e(site_name)} is a partnership between the NHS and '
        f"the council in {e(', '.join(fl.towns))}.</p></footer>\n"
        '<a class="skip-link" href="#main">Skip to content</a>\n</body>\n</html>\n'
    )
