//! A document or kept file as a download: its `Content-Disposition`, and
//! a kept file's digests; both faces answer with these.

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};

/// The response carrying a kept file exactly as it was received (the API's
/// and the pages' download): its media type, its SHA-256 as the ETag and as
/// `Repr-Digest` (and the older `Digest`), its base name, never cached.
pub fn kept_file(
    file_name: &str,
    media_type: &str,
    sha256_hex: &str,
    bytes: Vec<u8>,
) -> actix_web::HttpResponse {
    use actix_web::http::header;
    use base64::Engine;
    let digest = hex::decode(sha256_hex)
        .map(|d| base64::engine::general_purpose::STANDARD.encode(d))
        .unwrap_or_default();
    actix_web::HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, format!("{media_type}; charset=utf-8")))
        .insert_header((header::ETAG, format!("\"{sha256_hex}\"")))
        .insert_header(("Repr-Digest", format!("sha-256=:{digest}:")))
        .insert_header(("Digest", format!("sha-256={digest}")))
        .insert_header(download(false, file_name))
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .body(bytes)
}

/// The `Content-Disposition` of a downloaded document, built by actix's
/// header type: the base name only ([`crate::report::base_name`]), quoted and escaped (a
/// batch number with a quote can't add a parameter), with an RFC 5987 form
/// beside it.
pub fn download(inline: bool, file_name: &str) -> ContentDisposition {
    let file_name = crate::report::base_name(file_name);
    let ascii: String = file_name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' {
                c
            } else {
                '_'
            }
        })
        .collect();
    ContentDisposition {
        disposition: if inline {
            DispositionType::Inline
        } else {
            DispositionType::Attachment
        },
        parameters: vec![
            DispositionParam::Filename(ascii),
            DispositionParam::FilenameExt(actix_web::http::header::ExtendedValue {
                charset: actix_web::http::header::Charset::Ext("UTF-8".to_owned()),
                language_tag: None,
                value: file_name.as_bytes().to_vec(),
            }),
        ],
    }
}
