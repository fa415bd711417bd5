//! The review queue's HTML, rendered on the server by maud (compiled templates: every
//! interpolated string is escaped). Everything works without JavaScript; one inline script,
//! allowed by the response's CSP nonce, adds the keyboard shortcuts.

use maud::{DOCTYPE, Markup, PreEscaped, html};

use super::queue::{self, Verdict};
use crate::store::{ReviewFacets, ReviewItem, ReviewedItem};

/// One queue row: the stored decision, its score and the features that pushed it most.
pub struct Row {
    pub item: ReviewItem,
    pub score: Option<f32>,
    pub towards_scam: Vec<String>,
    pub towards_ok: Vec<String>,
}

/// What the queue page shows besides its rows.
pub struct QueuePage<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
    pub rows: &'a [Row],
    /// Doubtful comments waiting (the rows are the first of them).
    pub waiting: usize,
    pub facets: &'a ReviewFacets,
    pub account: Option<&'a str>,
    pub rule: Option<&'a str>,
    pub lang: Option<&'a str>,
    pub note: Option<&'a str>,
    pub band: (f32, f32),
}

const STYLE: &str = "
*{box-sizing:border-box}
body{font:16px/1.45 system-ui,sans-serif;margin:0;color:#1a1a1a;background:#fafafa}
header,main{max-width:60rem;margin:0 auto;padding:.75rem 1rem}
header{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:center;border-bottom:1px solid #ccc;background:#fff}
header nav{display:flex;gap:1rem;flex-wrap:wrap}
h1{font-size:1.25rem;margin:0 auto 0 0}
a{color:#0645ad}
.item{background:#fff;border:1px solid #bbb;border-radius:6px;padding:.75rem;margin:.75rem 0}
.item.current{border:3px solid #0645ad}
.text{white-space:pre-wrap;overflow-wrap:anywhere;font-size:1.05rem;margin:.25rem 0 .5rem}
.meta{color:#444;font-size:.9rem}
.actions{display:flex;flex-wrap:wrap;gap:.5rem;margin-top:.5rem}
button{font:inherit;padding:.5rem 1rem;border-radius:4px;border:1px solid #333;background:#fff;color:#1a1a1a;cursor:pointer;min-height:44px}
button.right{background:#e6f4ea}button.wrong{background:#fce8e6}button.remove{background:#fff4d6}
:focus-visible{outline:3px solid #b35c00;outline-offset:2px}
label{display:block;font-weight:600;margin:.5rem 0 .25rem}
input,select{font:inherit;padding:.4rem;border:1px solid #555;border-radius:4px;max-width:100%}
.note{background:#fff4d6;border:1px solid #b38600;padding:.5rem;border-radius:4px}
.filters{display:flex;flex-wrap:wrap;gap:.5rem 1rem;align-items:end}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:.3rem;text-align:left;vertical-align:top;overflow-wrap:anywhere}
.warn{color:#8a1c00}
@media (max-width:40rem){header,main{padding:.5rem}.actions button{flex:1 1 100%}}
";

/// j/k move between rows; r, w, x press the row's right, wrong and remove buttons.
const SHORTCUTS: &str = "(function(){
var rows=[].slice.call(document.querySelectorAll('.item'));var i=0;
function sel(n){if(!rows.length)return;i=Math.max(0,Math.min(rows.length-1,n));
rows.forEach(function(r,k){r.classList.toggle('current',k===i);});rows[i].focus();}
document.addEventListener('keydown',function(e){
if(e.ctrlKey||e.metaKey||e.altKey||(e.target.matches&&e.target.matches('input,select,textarea')))return;
if(e.key==='j'){sel(i+1);e.preventDefault();return;}
if(e.key==='k'){sel(i-1);e.preventDefault();return;}
var v={r:'right',w:'wrong',x:'remove'}[e.key];if(!v||!rows[i])return;
var b=rows[i].querySelector('button[value=\"'+v+'\"]');if(b){e.preventDefault();b.click();}});
sel(0);})();";

fn layout(nonce: &str, title: &str, who: Option<(&str, &str)>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · igmod review" }
                style nonce=(nonce) { (PreEscaped(STYLE)) }
            }
            body {
                header {
                    h1 { "igmod review" }
                    @if let Some((user, csrf)) = who {
                        nav aria-label="Pages" {
                            a href="/" { "Queue" }
                            a href="/recent" { "Recent decisions" }
                            a href="/search" { "Search" }
                            a href="/model" { "Model" }
                        }
                        form method="post" action="/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            span { "Signed in as " strong { (user) } " " }
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { (body) }
            }
        }
    }
}

/// The only page a client without a session ever sees.
/// `token` is the pre-session CSRF token, matched on POST with the login cookie.
pub fn login(nonce: &str, token: &str, message: Option<&str>) -> Markup {
    layout(
        nonce,
        "Log in",
        None,
        html! {
            h2 { "Log in" }
            @if let Some(m) = message { p.note role="alert" { (m) } }
            form method="post" action="/login" {
                input type="hidden" name="login_csrf" value=(token);
                label for="user" { "Name" }
                input id="user" name="user" type="text" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input id="password" name="password" type="password" autocomplete="current-password" required;
                p { button type="submit" { "Log in" } }
            }
        },
    )
}

fn verdict_button(v: Verdict, item: &ReviewItem) -> Markup {
    let (class, text, key) = match (v, item.action.as_str()) {
        (Verdict::Right, "delete") => ("right", "Right: a scam, stays deleted", "r"),
        (Verdict::Right, _) => ("right", "Right: a scam, stays hidden", "r"),
        (Verdict::Wrong, "hide") => ("wrong", "Wrong: fine, unhide it", "w"),
        (Verdict::Wrong, "delete") => ("wrong", "Wrong: fine (label only)", "w"),
        (Verdict::Wrong, _) => ("wrong", "Fine: leave it", "w"),
        (Verdict::Remove, _) => ("remove", "Remove: a scam", "x"),
    };
    html! {
        button type="submit" name="verdict" value=(v.as_str()) class=(class) aria-keyshortcuts=(key) {
            (text) " (" kbd { (key) } ")"
        }
    }
}

fn row(r: &Row, csrf: &str, back: &str) -> Markup {
    let i = &r.item;
    html! {
        article.item tabindex="-1" id={ "c-" (i.comment_id) } aria-label={ "comment by " (i.username.as_deref().unwrap_or("unknown")) } {
            p.meta {
                strong { "@" (i.username.as_deref().unwrap_or("?")) }
                " on post " (i.media_id) " · " (i.account) " · " (i.decided_at)
                " · language " (i.lang.as_deref().unwrap_or("unknown"))
            }
            p.text { (i.text.as_deref().unwrap_or("(no text stored)")) }
            p.meta {
                "Rule " strong { (i.rule) } " (" (i.action) ")"
                @if let Some(s) = r.score { " · score " strong { (format!("{s:.2}")) } }
                " · on Instagram: " strong { (queue::on_instagram(i)) }
            }
            @if !r.towards_scam.is_empty() || !r.towards_ok.is_empty() {
                p.meta {
                    @if !r.towards_scam.is_empty() { "Towards scam: " (r.towards_scam.join(", ")) ". " }
                    @if !r.towards_ok.is_empty() { "Towards ok: " (r.towards_ok.join(", ")) "." }
                }
            }
            @if i.action == "delete" {
                p.meta.warn { "A delete cannot be undone: \"wrong\" only records the label." }
            }
            form.actions method="post" action="/settle" {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="comment" value=(i.comment_id);
                input type="hidden" name="back" value=(back);
                @for v in queue::verdicts(i) { (verdict_button(*v, i)) }
            }
        }
    }
}

/// The queue: doubtful comments, newest first, with filters.
pub fn queue(nonce: &str, p: &QueuePage<'_>, back: &str) -> Markup {
    let body = html! {
        h2 { "Queue" }
        p { (p.waiting) " doubtful comments waiting (flags, and hides or deletes scored "
            (format!("{:.2}", p.band.0)) " to below " (format!("{:.2}", p.band.1)) "). "
            "Keys: j/k move, r right, w wrong, x remove." }
        @if let Some(n) = p.note { p.note role="status" { (n) } }
        form.filters method="get" action="/" {
            div {
                label for="account" { "Account" }
                select id="account" name="account" {
                    option value="" { "all" }
                    @for a in &p.facets.accounts { option value=(a) selected[p.account == Some(a.as_str())] { (a) } }
                }
            }
            div {
                label for="rule" { "Rule" }
                select id="rule" name="rule" {
                    option value="" { "all" }
                    @for r in &p.facets.rules { option value=(r) selected[p.rule == Some(r.as_str())] { (r) } }
                }
            }
            div {
                label for="lang" { "Language" }
                select id="lang" name="lang" {
                    option value="" { "all" }
                    @for l in &p.facets.langs { option value=(l) selected[p.lang == Some(l.as_str())] { (l) } }
                }
            }
            div { button type="submit" { "Filter" } }
        }
        @if p.rows.is_empty() { p { "Nothing to review." } }
        @for r in p.rows { (row(r, p.csrf, back)) }
        script nonce=(nonce) { (PreEscaped(SHORTCUTS)) }
    };
    layout(nonce, "Queue", Some((p.user, p.csrf)), body)
}

fn reviewed_table(items: &[ReviewedItem]) -> Markup {
    html! {
        table {
            thead { tr { th { "When" } th { "Who" } th { "Verdict" } th { "Rule / action" } th { "User" } th { "Text" } } }
            tbody {
                @for i in items {
                    tr {
                        td { (i.reviewed_at.as_deref().unwrap_or("not reviewed")) }
                        td { (i.who.as_deref().unwrap_or("")) }
                        td { (i.verdict.as_deref().unwrap_or("")) }
                        td { (i.rule.as_deref().unwrap_or("")) " / " (i.action.as_deref().unwrap_or("")) }
                        td { "@" (i.username.as_deref().unwrap_or("?")) }
                        td { (i.text.as_deref().unwrap_or("")) }
                    }
                }
            }
        }
    }
}

pub fn recent(nonce: &str, user: &str, csrf: &str, items: &[ReviewedItem]) -> Markup {
    let body = html! {
        h2 { "Recent decisions" }
        @if items.is_empty() { p { "No comment has been reviewed yet." } }
        @else { (reviewed_table(items)) }
    };
    layout(nonce, "Recent decisions", Some((user, csrf)), body)
}

pub fn search(
    nonce: &str,
    user: &str,
    csrf: &str,
    q: &str,
    items: Option<&[ReviewedItem]>,
) -> Markup {
    let body = html! {
        h2 { "Search" }
        form method="get" action="/search" {
            label for="q" { "Username or text" }
            input id="q" name="q" type="search" value=(q);
            " " button type="submit" { "Search" }
        }
        @if let Some(items) = items {
            @if items.is_empty() { p { "Nothing matches." } }
            @else { (reviewed_table(items)) }
        }
    };
    layout(nonce, "Search", Some((user, csrf)), body)
}

/// What the model page shows.
pub struct ModelPage<'a> {
    pub user: &'a str,
    pub csrf: &'a str,
    /// The running model's file, as the rules name it.
    pub model: Option<&'a str>,
    pub labeled: i64,
    pub trained_on_labels: Option<u64>,
    /// A classifier rule and `[review] training_data` are there.
    pub can_train: bool,
    pub candidate: super::candidate::State,
}

pub fn model(nonce: &str, p: &ModelPage<'_>) -> Markup {
    let since = p.trained_on_labels.map(|t| {
        p.labeled
            .saturating_sub(i64::try_from(t).unwrap_or(i64::MAX))
    });
    let body = html! {
        h2 { "Model" }
        @match p.model {
            Some(m) => p { "The rules run " code { (m) } "." },
            None => p { "No rule uses the classifier." },
        }
        p { strong #labels-since { (since.unwrap_or(p.labeled)) } " labels gathered since the running model was trained ("
            (p.labeled) " labeled comments in all"
            @if let Some(t) = p.trained_on_labels { "; it learned from " (t) } ")." }
        h3 { "A candidate model" }
        p { "Trains a model with the running one's settings on " code { "[review] training_data" }
            " plus every label, then replays the last 7 days of stored comments with it, as "
            code { "igmod rules replay --model" } " does. Nothing is switched: that stays a person's command ("
            code { "igmod model train … --labels-from-db" } ")." }
        @let training = matches!(p.candidate, super::candidate::State::Training);
        @if training { p.note role="status" { "A candidate is training; reload this page in a moment." } }
        @if !p.can_train { p { "Set " code { "training_data" } " in " code { "[review]" } " (and use the classifier in a rule) to train one here." } }
        form method="post" action="/model/candidate" {
            input type="hidden" name="csrf" value=(p.csrf);
            button type="submit" disabled[training || !p.can_train] { "Train a candidate and replay" }
        }
        @match &p.candidate {
            super::candidate::State::Done(figures) => pre #candidate { (figures) },
            super::candidate::State::Failed(why) => p.note #candidate-failed role="alert" { "The candidate failed: " (why) },
            _ => {},
        }
    };
    layout(nonce, "Model", Some((p.user, p.csrf)), body)
}

/// A short page for a refused or failed request (with a session).
pub fn message(nonce: &str, user: &str, csrf: &str, title: &str, text: &str) -> Markup {
    layout(
        nonce,
        title,
        Some((user, csrf)),
        html! { h2 { (title) } p { (text) } p { a href="/" { "Back to the queue" } } },
    )
}
