//! `Idempotency-Key` on creating POSTs: a retry with the same key and body
//! returns the first response and creates nothing; the same key with another
//! body is 422 `idempotency_key_reused`.
//!
//! The key row is inserted first, in the transaction that creates the
//! record: a concurrent retry waits on the key's unique index until the first
//! request commits, then replays its response. Keys are per user.

use crate::db::schema::idempotency_keys;
use crate::error::AppError;
use crate::error::Code;
use diesel::Connection;
use diesel::pg::PgConnection;
use diesel::prelude::*;
use serde_json::Value;
use uuid::Uuid;

/// A request's idempotency key and the hash of what it asked.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// The client's key.
    pub key: String,
    /// SHA-256 of method, path and body bytes.
    pub request_hash: String,
}

/// The response to send.
#[derive(Debug, Clone)]
pub struct Created {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: Value,
    /// Whether this is the stored response of an earlier request.
    pub replayed: bool,
}

/// Runs `create` once per key: on a retry returns the stored response.
pub fn create_once(
    conn: &mut PgConnection,
    user_id: Uuid,
    key: Option<&IdempotencyKey>,
    create: impl FnOnce(&mut PgConnection) -> Result<Value, AppError>,
) -> Result<Created, AppError> {
    let Some(k) = key else {
        return create(conn).map(|body| Created {
            status: 201,
            body,
            replayed: false,
        });
    };
    conn.transaction(|c| {
        let inserted = diesel::insert_into(idempotency_keys::table)
            .values((
                idempotency_keys::user_id.eq(user_id),
                idempotency_keys::key.eq(&k.key),
                idempotency_keys::request_hash.eq(&k.request_hash),
                idempotency_keys::status.eq(0_i16),
                idempotency_keys::response.eq(Value::Null),
            ))
            .on_conflict_do_nothing()
            .execute(c)?;
        if inserted == 0 {
            let (hash, status, body): (String, i16, Value) = idempotency_keys::table
                .find((user_id, &k.key))
                .select((
                    idempotency_keys::request_hash,
                    idempotency_keys::status,
                    idempotency_keys::response,
                ))
                .first(c)?;
            if hash != k.request_hash {
                return Err(AppError::refused(
                    Code::IdempotencyKeyReused,
                    "this Idempotency-Key was used with a different request",
                ));
            }
            return Ok(Created {
                status: u16::try_from(status).unwrap_or(201),
                body,
                replayed: true,
            });
        }
        let body = create(c)?;
        diesel::update(idempotency_keys::table.find((user_id, &k.key)))
            .set((
                idempotency_keys::status.eq(201_i16),
                idempotency_keys::response.eq(&body),
            ))
            .execute(c)?;
        Ok(Created {
            status: 201,
            body,
            replayed: false,
        })
    })
}
