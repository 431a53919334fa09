//! The audit trail's hash chain: what an entry's hash covers and how a chain
//! is checked link by link (21 CFR 11.10(e), EU Annex 11 §9).
//!
//! `hash = SHA-256(prev_hash || canonical JSON of the entry)`. The entry's
//! content covers every field an auditor reads: chain, sequence number, time,
//! actor, action, entity, reason and the before/after values.

use super::hashing::{hash_timestamp, sha256_hex};
use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

/// The `prev_hash` of the first entry of every chain.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// The chain for users, sessions, products and specifications.
pub const SYSTEM_CHAIN: &str = "system";

/// The system chain's key (`audit_chain_heads.id`); every other chain's key
/// is given when its head is written.
pub const SYSTEM_CHAIN_ID: i64 = 0;

/// The chain of one batch's entries.
pub fn batch_chain(batch_id: Uuid) -> String {
    format!("batch:{batch_id}")
}

/// The batch whose chain `chain` is (none: the system chain).
pub fn chain_batch(chain: &str) -> Option<Uuid> {
    chain
        .strip_prefix("batch:")
        .and_then(|id| Uuid::parse_str(id).ok())
}

/// The fields of `from` that `to` does not hold with the same value: of a
/// record's `before`, what the change altered or removed (with the earlier
/// values); of its `after`, what it altered or added. Values that are not
/// both objects are a whole change and are kept whole.
pub fn fields_not_in(from: &Value, to: &Value) -> Value {
    match (from, to) {
        (Value::Object(f), Value::Object(t)) => Value::Object(
            f.iter()
                .filter(|(k, v)| t.get(k.as_str()) != Some(*v))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        ),
        _ => from.clone(),
    }
}

/// A change as the trail keeps it: `before` holds only the fields that
/// changed, with their earlier values, and `after` only the fields that
/// changed, with their new ones; both keep the record's `id` when it has one
/// (the same on both sides, so a reader of the change sees it unchanged).
pub fn change(before: &Value, after: &Value) -> (Value, Value) {
    let keep_id = |mut fields: Value, of: &Value| {
        if let (Value::Object(f), Some(id)) = (&mut fields, of.get("id")) {
            f.insert("id".to_owned(), id.clone());
        }
        fields
    };
    (
        keep_id(fields_not_in(before, after), before),
        keep_id(fields_not_in(after, before), after),
    )
}

/// Who did it, as recorded (the printed name is kept as it was at the time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ActorRef {
    /// User id.
    pub id: Uuid,
    /// Username at the time.
    pub username: String,
    /// Printed name at the time.
    pub full_name: String,
}

/// Everything an audit entry says, before it is chained.
#[derive(Debug, Clone, PartialEq)]
pub struct EntryContent<'a> {
    /// Chain name: [`SYSTEM_CHAIN`] or [`batch_chain`].
    pub chain: &'a str,
    /// Position in the chain, from 1.
    pub seq: i64,
    /// Server time of the change.
    pub at: DateTime<Utc>,
    /// The authenticated user, or none for the system and for failed sign-ins.
    pub actor: Option<&'a ActorRef>,
    /// What happened, e.g. `user.created`.
    pub action: &'a str,
    /// Kind of record changed, e.g. `user`.
    pub entity_type: &'a str,
    /// Id of the record changed.
    pub entity_id: Option<Uuid>,
    /// Batch the record belongs to.
    pub batch_id: Option<Uuid>,
    /// Why, where a reason is required or given.
    pub reason: Option<&'a str>,
    /// The record before the change.
    pub before: Option<&'a Value>,
    /// The record after the change.
    pub after: Option<&'a Value>,
    /// The rows the entry binds, `[{"hash", "id", "table"}]` (none: an
    /// entry that binds no row, and every entry written before rows were
    /// bound; the canonical form then has no `rows` member, as before).
    pub rows: Option<&'a Value>,
}

impl EntryContent<'_> {
    /// The canonical JSON that the hash covers.
    pub fn canonical(&self) -> Result<Vec<u8>, serde_json::Error> {
        let (mut out, tail) = self.canonical_around_rows()?;
        if let Some(rows) = self.rows {
            out.extend_from_slice(b",\"rows\":");
            serde_jcs::to_writer(&mut out, rows)?;
        }
        out.extend_from_slice(&tail);
        Ok(out)
    }

    /// The canonical JSON without its `rows` member, in the two parts the
    /// member goes between: the database that knows the rows a transaction
    /// wrote completes the entry's hash
    /// (`SHA-256(prev_hash || head || ,"rows":[...] || tail)`).
    pub fn canonical_around_rows(&self) -> Result<(Vec<u8>, Vec<u8>), serde_json::Error> {
        // Written directly, keys in RFC 8785 order, without building a JSON
        // tree: this runs for every entry appended and every entry verified.
        // serde_json escapes strings exactly as RFC 8785 does; the nested
        // before/after values go through the general canonicalizer. A
        // property test holds this equal to `canonical_json` of the record.
        fn put<T: Serialize + ?Sized>(
            out: &mut Vec<u8>,
            key: &[u8],
            v: &T,
        ) -> Result<(), serde_json::Error> {
            out.extend_from_slice(key);
            serde_json::to_writer(&mut *out, v)
        }
        fn nested(
            out: &mut Vec<u8>,
            key: &[u8],
            v: Option<&Value>,
        ) -> Result<(), serde_json::Error> {
            out.extend_from_slice(key);
            match v {
                None => {
                    out.extend_from_slice(b"null");
                    Ok(())
                }
                Some(v) => serde_jcs::to_writer(&mut *out, v),
            }
        }
        let mut out = Vec::with_capacity(768);
        put(&mut out, b"{\"action\":", self.action)?;
        match self.actor {
            None => out.extend_from_slice(b",\"actor\":null"),
            Some(a) => {
                put(&mut out, b",\"actor\":{\"full_name\":", &a.full_name)?;
                put(&mut out, b",\"id\":", &a.id)?;
                put(&mut out, b",\"username\":", &a.username)?;
                out.push(b'}');
            }
        }
        nested(&mut out, b",\"after\":", self.after)?;
        put(&mut out, b",\"at\":", &hash_timestamp(self.at))?;
        put(&mut out, b",\"batch_id\":", &self.batch_id)?;
        nested(&mut out, b",\"before\":", self.before)?;
        put(&mut out, b",\"chain\":", self.chain)?;
        put(&mut out, b",\"entity_id\":", &self.entity_id)?;
        put(&mut out, b",\"entity_type\":", self.entity_type)?;
        put(&mut out, b",\"reason\":", &self.reason)?;
        let mut tail = Vec::with_capacity(32);
        put(&mut tail, b",\"seq\":", &self.seq)?;
        tail.push(b'}');
        Ok((out, tail))
    }

    /// The canonical form by the general canonicalizer: the definition the
    /// direct writer above must match.
    #[cfg(test)]
    fn canonical_reference(&self) -> Result<Vec<u8>, serde_json::Error> {
        use super::hashing::canonical_json;
        use serde_json::json;
        let mut whole = json!({
            "chain": self.chain,
            "seq": self.seq,
            "at": hash_timestamp(self.at),
            "actor": self.actor,
            "action": self.action,
            "entity_type": self.entity_type,
            "entity_id": self.entity_id,
            "batch_id": self.batch_id,
            "reason": self.reason,
            "before": self.before,
            "after": self.after,
        });
        if let (Some(rows), Value::Object(fields)) = (self.rows, &mut whole) {
            fields.insert("rows".to_owned(), rows.clone());
        }
        canonical_json(&whole)
    }

    pub fn hash(&self, prev_hash: &str) -> Result<String, serde_json::Error> {
        Ok(sha256_hex(&[prev_hash.as_bytes(), &self.canonical()?]))
    }
}

/// Why a link of a chain does not hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BreakReason {
    /// A sequence number is missing or repeated.
    SeqGap { expected: i64 },
    /// `prev_hash` is not the previous entry's hash.
    PrevHashMismatch,
    /// The stored hash is not the hash of the entry's content: it was edited.
    HashMismatch,
    /// The chain head records more entries than the chain holds.
    MissingTail { head_seq: i64 },
    /// The chain head's hash is not the last entry's hash.
    HeadMismatch,
}

impl BreakReason {
    /// A sentence for the verification report.
    pub fn describe(&self) -> String {
        match self {
            BreakReason::SeqGap { expected } => {
                format!("sequence gap: expected entry {expected}")
            }
            BreakReason::PrevHashMismatch => {
                "prev_hash does not match the previous entry's hash".to_owned()
            }
            BreakReason::HashMismatch => {
                "hash does not match the entry's content: the entry was altered".to_owned()
            }
            BreakReason::MissingTail { head_seq } => {
                format!("entries after this one are missing: the chain head records {head_seq}")
            }
            BreakReason::HeadMismatch => {
                "the chain head's hash does not match the last entry".to_owned()
            }
        }
    }
}

/// Walks one chain in sequence order, checking each link.
#[derive(Debug, Clone)]
pub struct ChainCursor {
    expected_seq: i64,
    prev_hash: String,
}

impl Default for ChainCursor {
    fn default() -> Self {
        ChainCursor {
            expected_seq: 1,
            prev_hash: GENESIS_HASH.to_owned(),
        }
    }
}

impl ChainCursor {
    /// Checks the next entry and returns why its link is broken, if it is.
    /// After a break the cursor continues from the entry as stored, so a
    /// report names each broken link rather than every entry after the first.
    pub fn check(
        &mut self,
        content: &EntryContent<'_>,
        prev_hash: &str,
        stored_hash: &str,
    ) -> Result<Option<BreakReason>, serde_json::Error> {
        let outcome = if content.seq != self.expected_seq {
            Some(BreakReason::SeqGap {
                expected: self.expected_seq,
            })
        } else if prev_hash != self.prev_hash {
            Some(BreakReason::PrevHashMismatch)
        } else if content.hash(prev_hash)? != stored_hash {
            Some(BreakReason::HashMismatch)
        } else {
            None
        };
        self.expected_seq = content.seq.saturating_add(1);
        stored_hash.clone_into(&mut self.prev_hash);
        Ok(outcome)
    }

    /// Checks the end of the chain against its head (which records the last
    /// sequence number and hash written): deleted tail entries show up here.
    /// Returns the sequence number to report and the reason.
    pub fn finish(&self, head_seq: i64, head_hash: &str) -> Option<(i64, BreakReason)> {
        let last_seq = self.expected_seq - 1;
        if head_seq > last_seq {
            Some((last_seq, BreakReason::MissingTail { head_seq }))
        } else if head_seq == last_seq && head_hash != self.prev_hash {
            Some((last_seq, BreakReason::HeadMismatch))
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn entry<'a>(seq: i64, after: &'a Value) -> EntryContent<'a> {
        EntryContent {
            chain: SYSTEM_CHAIN,
            seq,
            at: Utc.with_ymd_and_hms(2026, 5, 1, 12, 0, 0).unwrap(),
            actor: None,
            action: "user.created",
            entity_type: "user",
            entity_id: None,
            batch_id: None,
            reason: None,
            before: None,
            after: Some(after),
            rows: None,
        }
    }

    fn chain_of(n: i64, values: &[Value]) -> Vec<(String, String)> {
        let mut prev = GENESIS_HASH.to_owned();
        let mut out = Vec::new();
        for seq in 1..=n {
            let idx = usize::try_from(seq - 1).unwrap();
            let hash = entry(seq, &values[idx]).hash(&prev).unwrap();
            out.push((prev.clone(), hash.clone()));
            prev = hash;
        }
        out
    }

    fn text() -> impl proptest::strategy::Strategy<Value = String> {
        // Control characters, quotes, backslashes, non-ASCII and astral.
        proptest::string::string_regex("[\\x00-\\x1f\"\\\\a-zA-Z0-9 é€\u{1F600}\u{7f}]{0,12}")
            .unwrap()
    }

    proptest::proptest! {
        #[test]
        fn the_direct_canonical_form_equals_the_general_one(
            action in text(), username in text(), full_name in text(), reason in proptest::option::of(text()),
            chain in text(), entity_type in text(), seq in 0_i64..=9_007_199_254_740_991,
            micros in 0_i64..4_000_000_000_000_000, with_actor: bool, ids: (Option<u128>, Option<u128>),
            key in text(), n in proptest::num::f64::NORMAL, flag: bool, with_rows: bool,
        ) {
            let actor = ActorRef { id: Uuid::from_u128(7), username, full_name };
            let after = json!({"zeta": n, key.clone(): [flag, null, key.clone()], "a": {"b": 1, "A": "x"}});
            let before = json!({"value": "95.0", "n": 1e21});
            let rows = json!([{"table": "results", "id": Uuid::from_u128(9), "hash": "ab"}]);
            let content = EntryContent {
                chain: &chain,
                seq,
                at: DateTime::from_timestamp_micros(micros).unwrap(),
                actor: with_actor.then_some(&actor),
                action: &action,
                entity_type: &entity_type,
                entity_id: ids.0.map(Uuid::from_u128),
                batch_id: ids.1.map(Uuid::from_u128),
                reason: reason.as_deref(),
                before: flag.then_some(&before),
                after: Some(&after),
                rows: with_rows.then_some(&rows),
            };
            proptest::prop_assert_eq!(
                String::from_utf8(content.canonical().unwrap()).unwrap(),
                String::from_utf8(content.canonical_reference().unwrap()).unwrap()
            );
        }
    }

    #[test]
    fn an_intact_chain_verifies() {
        let values: Vec<Value> = (0..3).map(|i| json!({"n": i})).collect();
        let links = chain_of(3, &values);
        let mut cursor = ChainCursor::default();
        for (i, (prev, hash)) in links.iter().enumerate() {
            let seq = i64::try_from(i).unwrap() + 1;
            assert_eq!(
                cursor.check(&entry(seq, &values[i]), prev, hash).unwrap(),
                None
            );
        }
        assert_eq!(cursor.finish(3, &links[2].1), None);
    }

    #[test]
    fn an_edited_value_breaks_its_own_link_only() {
        let values: Vec<Value> = (0..3).map(|i| json!({"n": i})).collect();
        let links = chain_of(3, &values);
        let edited = json!({"n": 99});
        let mut cursor = ChainCursor::default();
        assert_eq!(
            cursor
                .check(&entry(1, &values[0]), &links[0].0, &links[0].1)
                .unwrap(),
            None
        );
        assert_eq!(
            cursor
                .check(&entry(2, &edited), &links[1].0, &links[1].1)
                .unwrap(),
            Some(BreakReason::HashMismatch)
        );
        assert_eq!(
            cursor
                .check(&entry(3, &values[2]), &links[2].0, &links[2].1)
                .unwrap(),
            None
        );
    }

    #[test]
    fn gaps_and_deleted_tails_are_reported() {
        let values: Vec<Value> = (0..3).map(|i| json!({"n": i})).collect();
        let links = chain_of(3, &values);
        let mut cursor = ChainCursor::default();
        cursor
            .check(&entry(1, &values[0]), &links[0].0, &links[0].1)
            .unwrap();
        assert_eq!(
            cursor
                .check(&entry(3, &values[2]), &links[2].0, &links[2].1)
                .unwrap(),
            Some(BreakReason::SeqGap { expected: 2 })
        );
        let mut short = ChainCursor::default();
        short
            .check(&entry(1, &values[0]), &links[0].0, &links[0].1)
            .unwrap();
        assert_eq!(
            short.finish(3, &links[2].1),
            Some((1, BreakReason::MissingTail { head_seq: 3 }))
        );
    }

    #[test]
    fn a_change_keeps_only_what_changed_and_the_id() {
        let before =
            json!({"id": "q1", "status": "active", "test": "VIAB", "note": "x", "gone": 1});
        let after =
            json!({"id": "q1", "status": "revoked", "test": "VIAB", "note": null, "new": [1]});
        let (b, a) = change(&before, &after);
        assert_eq!(
            b,
            json!({"id": "q1", "status": "active", "note": "x", "gone": 1})
        );
        assert_eq!(
            a,
            json!({"id": "q1", "status": "revoked", "note": null, "new": [1]})
        );
        // Nothing changed: nothing but the id.
        let (b, a) = change(&before, &before);
        assert_eq!((b, a), (json!({"id": "q1"}), json!({"id": "q1"})));
        // Not records: kept whole.
        assert_eq!(fields_not_in(&json!("a"), &json!("b")), json!("a"));
    }

    #[test]
    fn the_hash_covers_the_time_to_the_microsecond() {
        let v = json!({});
        let a = entry(1, &v);
        let mut b = a.clone();
        b.at += chrono::Duration::microseconds(1);
        assert_ne!(a.hash(GENESIS_HASH).unwrap(), b.hash(GENESIS_HASH).unwrap());
    }
}

/// What a verification found broken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BreakKind {
    /// A link of a hash chain: an altered entry, a gap, a missing tail.
    Link,
    /// An anchor that does not hold, or a chain that lost an anchored entry.
    Anchor,
    /// A row that is not what its newest entry covers (changed, added or
    /// removed outside the application).
    RowAltered,
    /// A signature whose record hash no longer matches the row it signs.
    SignatureMismatch,
    /// A signature row without the server's seal, or whose seal does not
    /// match it: written by someone without the site's key.
    SignatureUnsealed,
    /// Verification against anchors was asked for and there is none.
    NoAnchors,
}

/// One thing a verification found broken: a link of a chain, an anchor, a
/// row or a signature.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct BrokenLink {
    /// What broke.
    pub kind: BreakKind,
    /// Chain (of the entry, or of the row or signature).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chain: Option<String>,
    /// Entry's sequence number (of a row: its newest entry's; 0 when no
    /// entry covers it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub seq: Option<i64>,
    /// The table of the row.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table: Option<String>,
    /// The row's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<Uuid>,
    /// The signature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub signature_id: Option<Uuid>,
    /// What is wrong, in words.
    pub reason: String,
}

impl BrokenLink {
    /// A broken link of `chain` at entry `seq`.
    pub fn link(chain: &str, seq: i64, reason: String) -> Self {
        BrokenLink {
            kind: BreakKind::Link,
            chain: Some(chain.to_owned()),
            seq: Some(seq),
            table: None,
            id: None,
            signature_id: None,
            reason,
        }
    }

    /// An anchor that does not hold (`what` names it or the chain it
    /// anchored, at entry `seq`).
    pub fn anchor(what: String, seq: i64, reason: String) -> Self {
        BrokenLink {
            kind: BreakKind::Anchor,
            ..BrokenLink::link(&what, seq, reason)
        }
    }

    /// A row of `table` that is not what entry `seq` of `chain` covers.
    pub fn row_altered(table: &str, id: Uuid, chain: &str, seq: i64, reason: String) -> Self {
        BrokenLink {
            kind: BreakKind::RowAltered,
            table: Some(table.to_owned()),
            id: Some(id),
            ..BrokenLink::link(chain, seq, reason)
        }
    }

    /// A signature that does not hold (`kind`: mismatch or unsealed), on the
    /// row `table`/`id` it signs.
    pub fn signature(
        kind: BreakKind,
        signature_id: Uuid,
        signed: Option<(&str, Uuid)>,
        chain: &str,
        reason: String,
    ) -> Self {
        BrokenLink {
            kind,
            chain: Some(chain.to_owned()),
            seq: None,
            table: signed.map(|(t, _)| t.to_owned()),
            id: signed.map(|(_, id)| id),
            signature_id: Some(signature_id),
            reason,
        }
    }

    /// No anchor to verify against.
    pub fn no_anchors() -> Self {
        BrokenLink {
            kind: BreakKind::NoAnchors,
            chain: None,
            seq: None,
            table: None,
            id: None,
            signature_id: None,
            reason: "no anchor exists: the database keeps none and no anchor file was found"
                .to_owned(),
        }
    }

    /// Where it is, in words: `chain system, entry 4`, `results row ...`.
    pub fn place(&self) -> String {
        let mut parts = Vec::new();
        if let Some(id) = self.signature_id {
            parts.push(format!("signature {id}"));
        }
        if let (Some(t), Some(id)) = (&self.table, self.id) {
            parts.push(format!("{t} row {id}"));
        }
        if let Some(chain) = &self.chain {
            match self.seq {
                Some(seq) if seq > 0 => parts.push(format!("chain {chain}, entry {seq}")),
                _ => parts.push(format!("chain {chain}")),
            }
        }
        parts.join(", ")
    }
}
