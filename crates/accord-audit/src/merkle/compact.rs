//! The right edge of a Merkle tree (a compact range over `[0, size)`): one
//! hash per set bit of the size, the roots of the perfect subtrees the
//! leaves so far fill, largest first. Enough to append and to compute the
//! root, in O(log n) memory, without the leaves — what a reader needs to
//! check a stream of leaves against a signed checkpoint.

use super::{Hash, empty_root, node_hash};

/// A tree's right edge.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RightEdge {
    size: u64,
    // INVARIANT: peaks[i] is the root of a perfect subtree; their sizes
    // are the set bits of `size`, largest first.
    peaks: Vec<Hash>,
}

impl RightEdge {
    pub fn new() -> Self {
        RightEdge::default()
    }

    pub fn size(&self) -> u64 {
        self.size
    }

    /// Appends a leaf hash.
    pub fn push(&mut self, leaf: Hash) {
        let mut carry = leaf;
        let mut size = self.size;
        // Each trailing one bit of the size is a peak of equal height:
        // merge with it, as a binary counter carries.
        while size & 1 == 1 {
            match self.peaks.pop() {
                Some(left) => carry = node_hash(&left, &carry),
                None => break,
            }
            size >>= 1;
        }
        self.peaks.push(carry);
        self.size += 1;
    }

    /// The RFC 9162 root of the leaves so far.
    pub fn root(&self) -> Hash {
        let mut peaks = self.peaks.iter().rev();
        let Some(last) = peaks.next() else {
            return empty_root();
        };
        peaks.fold(*last, |right, left| node_hash(left, &right))
    }

    /// The edge as bytes: size (u64 BE) then the peaks.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 32 * self.peaks.len());
        out.extend_from_slice(&self.size.to_be_bytes());
        for peak in &self.peaks {
            out.extend_from_slice(&peak.0);
        }
        out
    }

    /// Reads [`encode`](Self::encode)'s bytes; `None` if they are not an
    /// edge (wrong length for the size).
    pub fn decode(bytes: &[u8]) -> Option<RightEdge> {
        let (size, rest) = bytes.split_first_chunk::<8>()?;
        let size = u64::from_be_bytes(*size);
        if rest.len() != 32 * size.count_ones() as usize {
            return None;
        }
        let peaks = rest.chunks_exact(32).filter_map(Hash::from_slice).collect();
        Some(RightEdge { size, peaks })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::merkle::{Tree, leaf_hash};

    #[test]
    fn the_right_edge_gives_the_same_root_as_the_full_tree_at_every_size() {
        let mut tree = Tree::new();
        let mut edge = RightEdge::new();
        assert_eq!(edge.root(), tree.root());
        for i in 0..300u32 {
            let leaf = leaf_hash(&i.to_be_bytes());
            tree.push(leaf);
            edge.push(leaf);
            assert_eq!(edge.size(), tree.size());
            assert_eq!(edge.root(), tree.root(), "size {}", tree.size());
            assert_eq!(RightEdge::decode(&edge.encode()).unwrap(), edge);
        }
        assert!(RightEdge::decode(&[0u8; 9]).is_none());
    }
}
