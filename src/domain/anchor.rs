//! Signed anchors of the audit trail: a Merkle root over every chain's head,
//! signed with a key kept outside the database, so that a rewrite or a
//! truncation made with database superuser rights (which plain chain
//! verification can't see: the rewriter recomputes the hashes and moves the
//! heads) is found by comparing the trail with an anchor kept elsewhere.
//!
//! The tree is RFC 6962's Merkle Tree Hash (Certificate Transparency): leaf
//! `SHA-256(0x00 || data)`, node `SHA-256(0x01 || left || right)`, the left
//! subtree holding the largest power of two below the count. Its data per
//! leaf is the canonical JSON (RFC 8785) of `{chain, seq, hash}`, leaves in
//! byte order of the chain names. It is fifteen lines and fixed by the RFC,
//! so it is written here rather than taken from a crate whose tree shape
//! (odd-node promotion) differs from the published one.

use super::hashing::canonical_json;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// One chain's head as anchored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct AnchoredHead {
    /// Chain name.
    pub chain: String,
    /// Sequence number of its last entry.
    pub seq: i64,
    /// Hash of its last entry (hex).
    pub hash: String,
}

fn leaf_hash(head: &AnchoredHead) -> Result<[u8; 32], serde_json::Error> {
    let data = canonical_json(head)?;
    let mut h = Sha256::new();
    h.update([0u8]);
    h.update(&data);
    Ok(h.finalize().into())
}

fn node_hash(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update([1u8]);
    h.update(left);
    h.update(right);
    h.finalize().into()
}

fn tree_hash(leaves: &[[u8; 32]]) -> [u8; 32] {
    match leaves {
        [] => Sha256::digest([]).into(),
        [one] => *one,
        _ => {
            let mut k = 1;
            while k * 2 < leaves.len() {
                k *= 2;
            }
            let (left, right) = leaves.split_at(k);
            node_hash(&tree_hash(left), &tree_hash(right))
        }
    }
}

/// The heads in the anchor's fixed order: by chain name, bytewise.
pub fn ordered(mut heads: Vec<AnchoredHead>) -> Vec<AnchoredHead> {
    heads.sort_by(|a, b| a.chain.as_bytes().cmp(b.chain.as_bytes()));
    heads
}

/// The Merkle root (hex) over `heads`, which must be [`ordered`].
pub fn merkle_root(heads: &[AnchoredHead]) -> Result<String, serde_json::Error> {
    let leaves = heads.iter().map(leaf_hash).collect::<Result<Vec<_>, _>>()?;
    Ok(hex::encode(tree_hash(&leaves)))
}

/// What an anchor signs: everything but the signature, as canonical JSON.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AnchorBody {
    /// Anchor id.
    pub id: uuid::Uuid,
    /// When it was made (RFC 3339, microseconds, UTC).
    pub created_at: String,
    /// Chains covered.
    pub chains: i64,
    /// Entries covered (the sum of the heads' sequence numbers).
    pub entries: i64,
    /// Merkle root over the heads (hex).
    pub root: String,
    /// Id of the signing key (first 16 hex digits of SHA-256 of the public key).
    pub key_id: String,
    /// The heads the root covers, in order.
    pub heads: Vec<AnchoredHead>,
}

impl AnchorBody {
    /// The bytes signed.
    pub fn signed_bytes(&self) -> Result<Vec<u8>, serde_json::Error> {
        canonical_json(self)
    }

    /// Whether `root`, `chains` and `entries` are what the heads give.
    pub fn is_consistent(&self) -> bool {
        let entries: i64 = self.heads.iter().map(|h| h.seq).sum();
        let sorted = ordered(self.heads.clone()) == self.heads;
        sorted
            && i64::try_from(self.heads.len()) == Ok(self.chains)
            && entries == self.entries
            && merkle_root(&self.heads).is_ok_and(|r| r == self.root)
    }
}

/// The id of a public key.
pub fn key_id(public_key: &[u8]) -> String {
    let digest = Sha256::digest(public_key);
    hex::encode(digest).chars().take(16).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(chain: &str, seq: i64) -> AnchoredHead {
        AnchoredHead {
            chain: chain.into(),
            seq,
            hash: format!("{seq:064x}"),
        }
    }

    #[test]
    fn the_tree_is_rfc_6962s() {
        // RFC 6962 / Certificate Transparency test vectors: the empty tree,
        // and the node rule on two and three leaves.
        assert_eq!(
            hex::encode(tree_hash(&[])),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        let mut l0 = Sha256::new();
        l0.update([0u8]);
        let l0: [u8; 32] = l0.finalize().into();
        assert_eq!(
            hex::encode(l0),
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"
        );
        let (a, b, c) = ([1u8; 32], [2u8; 32], [3u8; 32]);
        assert_eq!(tree_hash(&[a, b]), node_hash(&a, &b));
        assert_eq!(tree_hash(&[a, b, c]), node_hash(&node_hash(&a, &b), &c));
    }

    #[test]
    fn any_change_of_a_head_changes_the_root() {
        let heads = ordered(vec![
            head("system", 9),
            head("batch:a", 3),
            head("batch:b", 5),
        ]);
        assert_eq!(heads[0].chain, "batch:a");
        let root = merkle_root(&heads).unwrap();
        let mut truncated = heads.clone();
        truncated[1].seq = 4;
        assert_ne!(merkle_root(&truncated).unwrap(), root);
        let mut rewritten = heads.clone();
        rewritten[2].hash = "0".repeat(64);
        assert_ne!(merkle_root(&rewritten).unwrap(), root);
        let fewer = heads[..2].to_vec();
        assert_ne!(merkle_root(&fewer).unwrap(), root);
    }

    #[test]
    fn a_body_is_consistent_only_with_its_own_root_and_counts() {
        let heads = ordered(vec![head("system", 9), head("batch:a", 3)]);
        let body = AnchorBody {
            id: uuid::Uuid::nil(),
            created_at: "2026-12-01T00:00:00.000000Z".into(),
            chains: 2,
            entries: 12,
            root: merkle_root(&heads).unwrap(),
            key_id: "k".into(),
            heads,
        };
        assert!(body.is_consistent());
        let mut off = body.clone();
        off.entries = 11;
        assert!(!off.is_consistent());
        let mut swapped = body.clone();
        swapped.heads.reverse();
        assert!(!swapped.is_consistent());
    }
}
