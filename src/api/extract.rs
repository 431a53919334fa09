//! Request extractors whose failures are problem+json naming the field:
//! [`Json`] (400 malformed JSON, 413 too large, 415 not JSON, 422 wrong
//! field), [`Query`] (422 naming the parameter), path ids (400), and the
//! page parameters shared by every list.

use crate::error::{AppError, FieldError};
use crate::services::PageRequest;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::error::Category;
use uuid::Uuid;

/// A JSON body, deserialised with the path of any failing field.
#[derive(Debug)]
pub struct Json<T>(pub T);

fn is_json(req: &HttpRequest) -> bool {
    match req.headers().get(header::CONTENT_TYPE) {
        None => true,
        Some(v) => v.to_str().is_ok_and(|s| {
            let essence = s
                .split(';')
                .next()
                .unwrap_or_default()
                .trim()
                .to_ascii_lowercase();
            essence == "application/json" || essence.ends_with("+json")
        }),
    }
}

/// Parses a JSON body: syntax errors are 400, a field of the wrong shape 422.
pub fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, AppError> {
    let de = &mut serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        match inner.classify() {
            Category::Data => {
                let field = if path == "." { "body".to_owned() } else { path };
                AppError::validation(vec![FieldError::new(field, data_message(&inner))])
            }
            Category::Syntax | Category::Eof | Category::Io => AppError::bad_request(
                "malformed_json",
                format!("the body is not valid JSON: {inner}"),
            ),
        }
    })
}

/// serde's message without the " at line 1 column 9" position suffix.
fn data_message(e: &serde_json::Error) -> String {
    let msg = e.to_string();
    match msg.rfind(" at line ") {
        Some(i) => msg[..i].to_owned(),
        None => msg,
    }
}

impl<T: DeserializeOwned + 'static> FromRequest for Json<T> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let json = is_json(req);
        let body = web::Bytes::from_request(req, payload);
        Box::pin(async move {
            if !json {
                return Err(AppError::unsupported_media_type(
                    "send the body as Content-Type: application/json",
                ));
            }
            let bytes = body.await.map_err(|e| match e.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => {
                    AppError::payload_too_large("the body is larger than 1 MiB")
                }
                _ => AppError::bad_request(
                    "unreadable_body",
                    format!("the body could not be read: {e}"),
                ),
            })?;
            if bytes.is_empty() {
                return Err(AppError::bad_request(
                    "malformed_json",
                    "the body is empty; send a JSON object",
                ));
            }
            parse_json(&bytes).map(Json)
        })
    }
}

/// Query parameters, deserialised with the name of any failing parameter.
#[derive(Debug)]
pub struct Query<T>(pub T);

impl<T: DeserializeOwned + 'static> FromRequest for Query<T> {
    type Error = AppError;
    type Future = std::future::Ready<Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let parsed = url_form(req.query_string().as_bytes());
        std::future::ready(parsed.map(Query))
    }
}

fn url_form<T: DeserializeOwned>(raw: &[u8]) -> Result<T, AppError> {
    let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(raw));
    serde_path_to_error::deserialize(de).map_err(|e| {
        let path = e.path().to_string();
        let field = if path == "." {
            "query".to_owned()
        } else {
            path
        };
        AppError::invalid_field(field, e.into_inner().to_string())
    })
}

/// Path errors (a malformed id) are 400 problems.
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, _req| {
        AppError::bad_request("invalid_path", format!("malformed path parameter: {err}")).into()
    })
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize)]
pub struct PageQuery {
    /// Page size, 1 to 500 (default 50).
    pub limit: Option<i64>,
    /// The `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

/// Default page size.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest page size.
pub const MAX_LIMIT: i64 = 500;

impl PageQuery {
    /// Checks the parameters.
    pub fn to_request(&self) -> Result<PageRequest, AppError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(AppError::invalid_field(
                "limit",
                "must be between 1 and 500",
            ));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(Uuid::parse_str(c).map_err(|_| {
                AppError::invalid_field("cursor", "is not a cursor returned by this list")
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}
