//! Canonical JSON (RFC 8785) and SHA-256, the two primitives behind the audit
//! hash chains and signature record hashes.
//!
//! Field concatenation without delimiters broke hash chains elsewhere (two
//! different records hashing alike); canonical JSON gives every record exactly
//! one byte form, independent of key order and whitespace.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

/// The canonical JSON bytes of `value` (RFC 8785: sorted keys, no whitespace,
/// ECMAScript number form).
pub fn canonical_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    serde_jcs::to_vec(value)
}

/// Lower-case hex SHA-256 of the concatenated parts.
pub fn sha256_hex(parts: &[&[u8]]) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hex::encode(hasher.finalize())
}

/// The one textual form of a timestamp inside hashed records: UTC, exactly six
/// fractional digits, `Z` (e.g. `2026-11-21T23:32:27.000000Z`).
///
/// PostgreSQL keeps microseconds, so a timestamp read back from the database
/// formats the same as the one that was hashed before it was written, from any
/// session time zone or date style.
pub fn hash_timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Micros, true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    #[test]
    fn canonical_json_is_independent_of_key_order() {
        let a = json!({"b": 1, "a": [true, null, "x"]});
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "a": [true,null,"x"], "b": 1 }"#).unwrap();
        assert_eq!(canonical_json(&a).unwrap(), canonical_json(&b).unwrap());
        assert_eq!(
            String::from_utf8(canonical_json(&a).unwrap()).unwrap(),
            r#"{"a":[true,null,"x"],"b":1}"#
        );
    }

    #[test]
    fn sha256_matches_a_known_vector() {
        assert_eq!(
            sha256_hex(&[b"ab", b"c"]),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn timestamps_always_have_six_fraction_digits_in_utc() {
        let at = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(hash_timestamp(at), "2026-01-02T03:04:05.000000Z");
    }
}
