//! Request extractors whose failures are problem+json naming the field:
//! [`Json`] (400 malformed JSON, 413 too large, 415 not JSON, 422 wrong
//! field), [`Creation`] (the same plus `Idempotency-Key`), [`Query`] (422
//! naming the parameter), path ids (400), and the page parameters of lists.

use crate::domain::hashing::sha256_hex;
use crate::error::AppError;
use crate::error::Code;
use crate::services::PageRequest;
use crate::services::idempotency::IdempotencyKey;
use actix_web::dev::Payload;
use actix_web::error::PayloadError;
use actix_web::http::header;
use actix_web::{FromRequest, HttpRequest, web};
use futures_util::future::LocalBoxFuture;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::marker::PhantomData;
use uuid::Uuid;

/// A JSON body, read but not yet parsed: [`Json::parse`] runs in the
/// handler, after the authorization extractors, so a caller who may not act
/// learns nothing about the body (401/403 come before 400/415/422).
/// `LIMIT` is the largest body taken (413 above it): 1 MiB, but for an
/// instrument's export.
#[derive(Debug)]
pub struct Json<T, const LIMIT: usize = { crate::http::MAX_BODY_BYTES }> {
    bytes: web::Bytes,
    is_json: bool,
    _body: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned + utoipa::PartialSchema, const LIMIT: usize> Json<T, LIMIT> {
    /// Parses the body: 415 unless JSON, 400 if empty or malformed, 422
    /// naming a field of the wrong shape.
    pub fn parse(self) -> Result<T, AppError> {
        parse_body(self.is_json, &self.bytes)
    }
}

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

fn parse_body<T: DeserializeOwned + utoipa::PartialSchema>(
    is_json: bool,
    bytes: &[u8],
) -> Result<T, AppError> {
    if !is_json {
        return Err(AppError::unsupported_media_type(
            "send the body as Content-Type: application/json",
        ));
    }
    if bytes.is_empty() {
        return Err(AppError::refused(
            Code::MalformedJson,
            "the body is empty; send a JSON object",
        ));
    }
    parse_json(bytes)
}

/// Parses a JSON body: syntax errors are 400, each field of the wrong
/// shape 422 (`http::command::from_json`).
pub fn parse_json<T: DeserializeOwned + utoipa::PartialSchema>(body: &[u8]) -> Result<T, AppError> {
    crate::http::command::from_json(body)
}

/// Reads a body's bytes, at most `limit`; only a body over it (413) fails
/// here.
fn body_bytes(
    req: &HttpRequest,
    payload: &mut Payload,
    limit: usize,
) -> LocalBoxFuture<'static, Result<web::Bytes, AppError>> {
    let body = web::Payload::from_request(req, payload);
    Box::pin(async move {
        let body = body.await.map_err(|e| {
            AppError::refused(
                Code::UnreadableBody,
                format!("the body could not be read: {e}"),
            )
        })?;
        match body.to_bytes_limited(limit).await {
            Ok(Ok(bytes)) => Ok(bytes),
            Ok(Err(e)) => Err(match e.as_error::<PayloadError>() {
                Some(PayloadError::Overflow) => too_large(limit),
                _ => AppError::refused(
                    Code::UnreadableBody,
                    format!("the body could not be read: {e}"),
                ),
            }),
            Err(_) => Err(too_large(limit)),
        }
    })
}

fn too_large(limit: usize) -> AppError {
    AppError::payload_too_large(format!(
        "the body is larger than {} MiB",
        limit / (1024 * 1024)
    ))
}

impl<T: 'static, const LIMIT: usize> FromRequest for Json<T, LIMIT> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let is_json = is_json(req);
        let bytes = body_bytes(req, payload, LIMIT);
        Box::pin(async move {
            Ok(Json {
                bytes: bytes.await?,
                is_json,
                _body: PhantomData,
            })
        })
    }
}

/// The body of a creating POST with its optional `Idempotency-Key`, parsed
/// by [`Creation::parse`] after authorization.
#[derive(Debug)]
pub struct Creation<T, const LIMIT: usize = { crate::http::MAX_BODY_BYTES }> {
    body: Json<T, LIMIT>,
    key: Option<String>,
    target: String,
}

impl<T: DeserializeOwned + utoipa::PartialSchema, const LIMIT: usize> Creation<T, LIMIT> {
    /// The parsed body and, when a key was sent, the key with the hash of
    /// this exact request.
    pub fn parse(self) -> Result<(T, Option<IdempotencyKey>), AppError> {
        let key = match self.key {
            None => None,
            Some(k) => Some(check_idempotency_key(&k)?),
        };
        let idempotency = key.map(|key| IdempotencyKey {
            key,
            // The exact bytes: a retry sends the same request again.
            request_hash: sha256_hex(&[self.target.as_bytes(), b"\n", &self.body.bytes]),
        });
        Ok((self.body.parse()?, idempotency))
    }
}

fn check_idempotency_key(raw: &str) -> Result<String, AppError> {
    let k = raw.trim();
    if (1..=255).contains(&k.len()) && k.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(k.to_owned())
    } else {
        Err(AppError::refused(
            Code::InvalidIdempotencyKey,
            "Idempotency-Key must be 1 to 255 visible ASCII characters",
        ))
    }
}

impl<T: 'static, const LIMIT: usize> FromRequest for Creation<T, LIMIT> {
    type Error = AppError;
    type Future = LocalBoxFuture<'static, Result<Self, AppError>>;

    fn from_request(req: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let key = req
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().unwrap_or("\u{0}").to_owned());
        let target = format!("{} {}", req.method(), req.path());
        let body = Json::<T, LIMIT>::from_request(req, payload);
        Box::pin(async move {
            Ok(Creation {
                body: body.await?,
                key,
                target,
            })
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
    crate::http::command::from_query(raw)
}

/// Path errors (a malformed id) are 400 problems, unless the path is a
/// documented one under a method it does not serve (405 with `Allow`).
pub fn path_config() -> web::PathConfig {
    web::PathConfig::default().error_handler(|err, req| {
        if let Some(resp) = super::method_not_allowed(req) {
            return actix_web::error::InternalError::from_response(err, resp).into();
        }
        AppError::refused(
            Code::InvalidPath,
            format!("malformed path parameter: {err}"),
        )
        .into()
    })
}

/// The raw JSON text of a decimal field (number or string), as sent.
pub fn raw_text(v: &serde_json::value::RawValue) -> String {
    v.get().to_owned()
}

/// `?limit=&cursor=` of every list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
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
            return Err(AppError::invalid_field_said(
                "limit",
                "fe-must-be-between-1-and-500",
            ));
        }
        let after = match self.cursor.as_deref() {
            None | Some("") => None,
            Some(c) => Some(Uuid::parse_str(c).map_err(|_| {
                AppError::invalid_field_said("cursor", "fe-is-not-a-cursor-returned-by-this-list")
            })?),
        };
        Ok(PageRequest { limit, after })
    }
}

/// An integer field as JSON Schema reads `integer`: `91` and `91.0` alike
/// (a number with no fraction), nothing else.
pub fn integral<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(f as i64),
        _ => Err(serde::de::Error::custom(format!(
            "invalid type: {n}, expected an integer"
        ))),
    }
}
