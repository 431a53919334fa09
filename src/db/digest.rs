//! A SHA-256 hash as the database stores it (32 bytes, `bytea`) and as the
//! code and the API use it (64 lower-case hex characters): every hash the
//! chain covers is the hex text, so the conversion happens here, once, at
//! the row's edge.

use diesel::deserialize::{self, FromSql};
use diesel::pg::{Pg, PgValue};
use diesel::serialize::{self, Output, ToSql};
use diesel::sql_types::Bytea;
use std::io::Write;

/// A hash read from or written to a `bytea` column, held as hex text.
#[derive(Debug, Clone, PartialEq, Eq, diesel::AsExpression, diesel::FromSqlRow)]
#[diesel(sql_type = Bytea)]
pub struct HexDigest(pub String);

impl From<HexDigest> for String {
    fn from(d: HexDigest) -> String {
        d.0
    }
}

impl From<String> for HexDigest {
    fn from(s: String) -> HexDigest {
        HexDigest(s)
    }
}

impl FromSql<Bytea, Pg> for HexDigest {
    fn from_sql(value: PgValue<'_>) -> deserialize::Result<Self> {
        Ok(HexDigest(hex::encode(value.as_bytes())))
    }
}

impl ToSql<Bytea, Pg> for HexDigest {
    fn to_sql<'b>(&'b self, out: &mut Output<'b, '_, Pg>) -> serialize::Result {
        out.write_all(&hex::decode(&self.0)?)?;
        Ok(serialize::IsNull::No)
    }
}

/// The 32 bytes of a hex hash, for a statement's bind.
pub fn bytes(hex_hash: &str) -> Result<Vec<u8>, hex::FromHexError> {
    hex::decode(hex_hash)
}
