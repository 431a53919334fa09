//! Authentication: password hashing, access tokens, and the extractors that
//! put the signed-in user and their role requirement into a handler's signature.

pub mod extractors;
pub mod jwt;
pub mod password;
