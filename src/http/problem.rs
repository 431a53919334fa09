//! The HTTP face of a refusal: its status (from its code's kind, decided
//! here once for the API and the pages alike) and its RFC 9457
//! `application/problem+json` response. `crate::error` itself names no
//! HTTP type, so the use cases that return it name none either.

use crate::error::{AppError, Code, FieldError, Kind, Problem};
use crate::i18n::Locale;
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use std::fmt;

#[derive(Serialize)]
struct ProblemBody<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    errors: &'a [FieldError],
    #[serde(skip_serializing_if = "Option::is_none")]
    blockers: Option<&'a serde_json::Value>,
}

impl Problem {
    /// The problem's title in `loc` (English: the status's reason phrase).
    pub fn title(&self, loc: Locale) -> String {
        let status = self.status();
        let id = format!("problem-title-{}", status.as_u16());
        if loc != Locale::En && loc.has(&id) {
            loc.text(&id)
        } else {
            status.canonical_reason().unwrap_or("Error").to_owned()
        }
    }

    /// The HTTP status of the problem, from its code's kind: decided here
    /// once for the API and the pages alike.
    pub fn status(&self) -> StatusCode {
        match self.code.kind() {
            Kind::Unreadable => StatusCode::BAD_REQUEST,
            Kind::NotSignedIn => StatusCode::UNAUTHORIZED,
            Kind::NotAllowed => StatusCode::FORBIDDEN,
            Kind::NotFound => StatusCode::NOT_FOUND,
            Kind::WrongMethod => StatusCode::METHOD_NOT_ALLOWED,
            Kind::NotNow => StatusCode::CONFLICT,
            Kind::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Kind::WrongMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Kind::Invalid => StatusCode::UNPROCESSABLE_ENTITY,
            Kind::TooMany => StatusCode::TOO_MANY_REQUESTS,
            Kind::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Kind::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

/// The problem as answered: kept on the response, so that the API's
/// language middleware can answer it again in the words `Accept-Language`
/// asks for.
#[derive(Debug, Clone)]
pub struct AnsweredProblem(pub Problem);

/// The `application/problem+json` response for a problem, in English.
pub fn problem_response(p: &Problem) -> HttpResponse {
    problem_response_in(p, Locale::En)
}

/// The `application/problem+json` response for a problem, its words in
/// `loc` (the code, fields and values never change).
pub fn problem_response_in(p: &Problem, loc: Locale) -> HttpResponse {
    let title = p.title(loc);
    let p = &p.in_locale(loc);
    let status = p.status();
    let body = ProblemBody {
        kind: format!("urn:cellqc:problem:{}", p.code),
        title: &title,
        status: status.as_u16(),
        detail: &p.detail,
        code: p.code.as_str(),
        errors: &p.errors,
        blockers: p.blockers.as_ref(),
    };
    let mut resp = HttpResponse::build(status);
    resp.insert_header((
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    ));
    if let Some(secs) = p.retry_after {
        resp.insert_header((header::RETRY_AFTER, secs.to_string()));
    }
    let mut res = resp.json(body);
    res.extensions_mut().insert(AnsweredProblem(p.clone()));
    res
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status().as_u16(),
            self.code,
            self.detail
        )
    }
}

impl ResponseError for AppError {
    fn status_code(&self) -> StatusCode {
        match self {
            AppError::Problem(p) => p.status(),
            _ if self.is_unavailable() => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            AppError::Problem(p) => problem_response(p),
            _ if self.is_unavailable() => {
                tracing::warn!(error = %self, "database unavailable");
                match AppError::unavailable() {
                    AppError::Problem(p) => problem_response(&p),
                    _ => HttpResponse::ServiceUnavailable().finish(),
                }
            }
            _ => {
                // The one place a 5xx cause is logged; the client learns nothing internal.
                tracing::error!(error = %self, "request failed");
                problem_response(&Problem {
                    code: Code::InternalError,
                    detail: "an internal error occurred; it has been logged".to_owned(),
                    errors: Vec::new(),
                    blockers: None,
                    retry_after: None,
                })
            }
        }
    }
}

impl From<actix_web::error::BlockingError> for AppError {
    fn from(e: actix_web::error::BlockingError) -> Self {
        AppError::Internal(anyhow::anyhow!("blocking pool: {e}"))
    }
}
