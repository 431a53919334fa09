//! Authentication: password hashing, access tokens, and the extractors that
//! put the signed-in user and their role requirement into a handler's signature.

pub mod anchor_key;
pub mod extractors;
pub mod jwt;
pub mod password;

/// Compares secrets (CSRF and metrics tokens) without stopping at the first
/// difference (`subtle`).
pub fn secrets_equal(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}
