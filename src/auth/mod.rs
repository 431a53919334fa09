//! The cryptography of authentication: password hashing, access tokens,
//! the anchor key. The extractors that put the signed-in user into a
//! handler's signature are the HTTP layer's ([`crate::http::auth`]).

pub mod anchor_key;
pub mod jwt;
pub mod password;

/// Compares secrets (CSRF and metrics tokens) without stopping at the first
/// difference (`subtle`).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}
