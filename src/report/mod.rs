//! Printed reports. The Certificate of Analysis is rendered here from plain
//! data that `services::certificate` gathers; nothing here touches the database.

pub mod coa;
pub mod history;
pub mod label;

use actix_web::http::header::{ContentDisposition, DispositionParam, DispositionType};

/// The `Content-Disposition` of a downloaded document, built by actix's
/// header type: the file name is quoted and escaped (a batch number with a
/// quote can't add a parameter), with an RFC 5987 form beside it.
pub fn download(inline: bool, file_name: &str) -> ContentDisposition {
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
