//! The page shell, navigation and small view helpers shared by every page.

use super::session::WebUser;
use crate::domain::roles::Role;
use crate::error::Problem;
use chrono::{DateTime, Utc};
use maud::{DOCTYPE, Markup, html};

/// A timestamp: shown in the reader's local time, UTC on hover.
pub fn time(at: DateTime<Utc>) -> Markup {
    let utc = at.format("%Y-%m-%d %H:%M UTC").to_string();
    html! { time datetime=(at.to_rfc3339()) title=(utc) { (utc) } }
}

/// A status badge.
pub fn status(s: &str) -> Markup {
    html! { span class={"status " (s)} { (s.replace('_', " ")) } }
}

/// Pass or fail, coloured and in words.
pub fn outcome(o: &str) -> Markup {
    html! { span class=(if o == "pass" { "pass" } else { "fail" }) { (o.to_uppercase()) } }
}

/// A hidden CSRF field.
pub fn csrf(user: &WebUser) -> Markup {
    html! { input type="hidden" name="csrf" value=(user.0.csrf_token); }
}

/// The full page.
pub fn page(title: &str, user: Option<&WebUser>, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · cellqc" }
                link rel="stylesheet" href="/static/app.css";
            }
            body {
                header.top {
                    a href="/batches" { "cellqc" }
                    @if let Some(u) = user {
                        nav aria-label="Main" {
                            a href="/batches" { "Batches" }
                            @if u.0.actor.has(Role::Reviewer) { a href="/review" { "Review queue" } }
                            @if u.0.actor.has(Role::Admin) { a href="/users" { "Users" } }
                            a href="/docs/" { "API docs" }
                        }
                        span.who {
                            (u.0.actor.full_name) " (" (u.0.actor.username) ") "
                            form method="post" action="/logout" {
                                (csrf(u))
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main id="main" { h1 { (title) } (body) }
                script src="/static/app.js" {}
            }
        }
    }
}

/// A refusal or failure as a page.
pub fn error_page(p: &Problem) -> Markup {
    page(
        p.status.canonical_reason().unwrap_or("Error"),
        None,
        html! {
            div.notice.error role="alert" {
                p { (p.detail) }
                @for e in &p.errors { p.field-error { (e.field) ": " (e.message) } }
            }
            p { a href="/batches" { "Back to the batches" } }
        },
    )
}
