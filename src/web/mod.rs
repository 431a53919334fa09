//! The web interface: server-rendered pages for technicians, reviewers, QA,
//! auditors and admins, calling the same services as the API so that no rule
//! is written twice. Every page carries security headers (a
//! Content-Security-Policy without inline script, `frame-ancestors 'none'`);
//! every form carries the session's CSRF token.

pub mod account;
pub mod audit;
pub mod audit_review;
pub mod auth;
pub mod batch_new;
pub mod batches;
pub mod custody;
pub mod deviations;
pub mod history;
pub mod home;
pub mod import;
pub mod import_mappings;
pub mod instruments;
pub mod layout;
pub mod materials;
pub mod products;
pub mod qualifications;
pub mod release;
pub mod results;
pub mod review;
pub mod session;
pub mod trends;
pub mod users;

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::{Next, from_fn};
use actix_web::{HttpResponse, get, web};

/// The Content-Security-Policy of every page: only this origin's files, no
/// inline script or style, never framed.
pub const CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'";

/// The headers every page and the API documents carry, with `csp`.
fn insert_security_headers(h: &mut header::HeaderMap, csp: &'static str) {
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(csp),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
}

/// Middleware: the security headers of every page.
pub async fn security_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let mut res = next.call(req).await?;
    let h = res.headers_mut();
    insert_security_headers(h, CSP);
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(res)
}

/// The Content-Security-Policy of the API documents (Swagger UI): only this
/// origin's files; its inline style attributes allowed; never framed.
pub const DOCS_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; \
     img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; \
     base-uri 'none'; object-src 'none'";

/// Middleware: the pages' security headers on `/docs/` too.
pub async fn docs_headers(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let docs = req.path().starts_with("/docs");
    let mut res = next.call(req).await?;
    if docs {
        insert_security_headers(res.headers_mut(), DOCS_CSP);
    }
    Ok(res)
}

/// Paths that are not pages: the API, its documents, probes and metrics
/// answer in their own formats.
fn is_page(path: &str) -> bool {
    ![
        "/api/", "/docs", "/healthz", "/readyz", "/metrics", "/static/",
    ]
    .iter()
    .any(|p| path.starts_with(p))
}

/// Middleware: a refusal on a page path that is not already a page (an
/// unknown page, a malformed id in the address, a form over 1 MiB, a form
/// that can't be read) becomes a page in the layout, in words.
pub async fn html_errors(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let page_path = is_page(req.path());
    let mut res = next.call(req).await?.map_into_boxed_body();
    let status = res.status();
    if res
        .response()
        .extensions()
        .get::<session::SignInFirst>()
        .is_some()
    {
        let to = session::sign_in_address(res.request());
        if let Ok(v) = header::HeaderValue::from_str(&to) {
            res.headers_mut().insert(header::LOCATION, v);
        }
        return Ok(res);
    }
    // A refusal a page handler rendered: again in the reader's language,
    // now that the request says who the reader is.
    let rendered = res
        .response()
        .extensions()
        .get::<session::ErrorPage>()
        .cloned();
    if let Some(session::ErrorPage(problem)) = rendered {
        let loc = session::page_reader_locale(res.request()).await;
        if loc == crate::i18n::Locale::En {
            return Ok(res);
        }
        return Ok(res.into_response(layout::html_page(status, layout::error_page(&problem, loc))));
    }
    let is_html = res
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !page_path || is_html || !(status.is_client_error() || status.is_server_error()) {
        return Ok(res);
    }
    let detail = res
        .response()
        .error()
        .and_then(|e| e.as_error::<crate::error::AppError>())
        .map(|e| e.to_string());
    let loc = session::page_reader_locale(res.request()).await;
    let problem = layout::status_problem(status, detail, loc);
    Ok(res.into_response(layout::html_page(status, layout::error_page(&problem, loc))))
}

#[get("/static/app.css")]
async fn app_css() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .body(include_str!("static/app.css"))
}

#[get("/static/app.js")]
async fn app_js() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .body(include_str!("static/app.js"))
}

/// Browsers ask for an icon on every page: none, without an error logged.
#[get("/favicon.ico")]
async fn favicon() -> HttpResponse {
    HttpResponse::NoContent()
        .insert_header((actix_web::http::header::CACHE_CONTROL, "max-age=86400"))
        .finish()
}

/// Registers the pages.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("")
            // Forms up to the same 1 MiB as any body (actix's default is 16 KiB).
            .app_data(web::FormConfig::default().limit(crate::http::MAX_BODY_BYTES))
            .wrap(from_fn(html_errors))
            .wrap(from_fn(security_headers))
            .service(app_css)
            .service(favicon)
            .service(app_js)
            .service(home::home)
            .service(auth::login_form)
            .service(auth::login)
            .service(auth::logout)
            .service(batches::batch_list)
            .service(batch_new::new_batch_form)
            .service(batch_new::create_batch)
            .service(batches::batch_page)
            .service(batches::certificate)
            .service(batches::bag_label)
            .service(results::record_result_form)
            .service(results::record_result)
            .service(import::import_form)
            .service(import::import_results)
            .service(import::source_file)
            .service(import_mappings::mappings_page)
            .service(import_mappings::create_mapping)
            .service(import_mappings::replace_mapping)
            .service(import_mappings::retire_mapping)
            .service(results::review_queue)
            .service(results::review_form)
            .service(results::review)
            .service(review::batch_review_form)
            .service(review::batch_review)
            .service(trends::trend_page)
            .service(trends::trend_csv)
            .service(release::release_page)
            .service(audit_review::review_page)
            .service(audit_review::sign_review)
            .service(release::release_batch)
            .service(release::reject_batch)
            .service(release::recall_batch)
            .service(history::history_csv)
            .service(history::history_json)
            .service(history::history_page)
            .service(custody::custody_form)
            .service(custody::record_custody)
            .service(deviations::deviations_page)
            .service(deviations::open_deviation)
            .service(deviations::open_correction)
            .service(deviations::close_deviation)
            .service(products::product_list)
            .service(products::new_product_form)
            .service(products::create_product)
            .service(products::product_page)
            .service(products::create_spec)
            .service(products::spec_page)
            .service(products::approve_spec)
            .service(audit::audit_csv)
            .service(audit::audit_search)
            .service(audit::verify_page)
            .service(audit::run_verification)
            .service(audit::make_anchor)
            .service(users::users_page)
            .service(users::create_user)
            .service(users::unlock_user)
            .service(users::edit_user_form)
            .service(users::edit_user)
            .service(users::deactivate_user)
            .service(users::reset_password)
            .service(qualifications::matrix_page)
            .service(qualifications::grant)
            .service(qualifications::revoke)
            .service(instruments::list_page)
            .service(instruments::register)
            .service(instruments::one_page)
            .service(instruments::calibrate)
            .service(instruments::out_of_service)
            .service(instruments::return_to_service)
            .service(materials::list_page)
            .service(materials::receive)
            .service(materials::where_used_csv)
            .service(materials::one_page)
            .service(materials::release)
            .service(materials::reject)
            .service(account::password_form)
            .service(account::change_password)
            .service(account::set_locale),
    );
}
