//! RFC 6962 / RFC 9162 reference vectors (the certificate-transparency and
//! transparency-dev merkle test data) plus exhaustive round trips.

#![allow(clippy::cast_possible_truncation)]

use super::*;

/// The eight reference leaves.
const LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots of the trees of sizes 0..=8 over `LEAVES`.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// (leaf index, tree size, proof)
const INCLUSION: [(u64, u64, &[&str]); 4] = [
    (
        0,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        5,
        8,
        &[
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        3,
        &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
    ),
    (
        1,
        5,
        &[
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

/// (old size, new size, proof)
const CONSISTENCY: [(u64, u64, &[&str]); 4] = [
    (1, 1, &[]),
    (
        1,
        8,
        &[
            "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
        ],
    ),
    (
        6,
        8,
        &[
            "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
            "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        ],
    ),
    (
        2,
        5,
        &[
            "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
            "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
        ],
    ),
];

fn h(text: &str) -> Hash {
    Hash::from_hex(text).unwrap()
}

fn reference_tree() -> Tree {
    let mut tree = Tree::new();
    for leaf in LEAVES {
        tree.push(leaf_hash(&unhex(leaf).unwrap()));
    }
    tree
}

#[test]
fn roots_match_reference_vectors() {
    let tree = reference_tree();
    for (size, root) in ROOTS.iter().enumerate() {
        assert_eq!(tree.root_at(size as u64).unwrap(), h(root), "size {size}");
    }
}

#[test]
fn incremental_roots_match_reference_vectors() {
    let mut tree = Tree::new();
    assert_eq!(tree.root(), h(ROOTS[0]));
    for (i, leaf) in LEAVES.iter().enumerate() {
        tree.push(leaf_hash(&unhex(leaf).unwrap()));
        assert_eq!(tree.root(), h(ROOTS[i + 1]));
    }
}

#[test]
fn inclusion_proofs_match_reference_vectors() {
    let tree = reference_tree();
    for (index, size, expected) in INCLUSION {
        let proof = tree.inclusion_proof(index, size).unwrap();
        let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
        assert_eq!(proof, expected, "leaf {index} in {size}");
        let leaf = tree.leaf(index).unwrap();
        let root = h(ROOTS[size as usize]);
        verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
    }
}

#[test]
fn consistency_proofs_match_reference_vectors() {
    let tree = reference_tree();
    for (old, new, expected) in CONSISTENCY {
        let proof = tree.consistency_proof(old, new).unwrap();
        let expected: Vec<Hash> = expected.iter().map(|e| h(e)).collect();
        assert_eq!(proof, expected, "{old} -> {new}");
        let (a, b) = (h(ROOTS[old as usize]), h(ROOTS[new as usize]));
        verify_consistency(old, new, &a, &b, &proof).unwrap();
    }
}

#[test]
fn every_proof_round_trips_and_tampering_fails() {
    let mut tree = Tree::new();
    for i in 0u32..70 {
        tree.push(leaf_hash(&i.to_be_bytes()));
    }
    for size in 1..=70u64 {
        let root = tree.root_at(size).unwrap();
        for index in 0..size {
            let proof = tree.inclusion_proof(index, size).unwrap();
            assert!(proof.len() <= 64 - (size - 1).leading_zeros() as usize);
            let leaf = tree.leaf(index).unwrap();
            verify_inclusion(index, size, &leaf, &proof, &root).unwrap();
            let other = leaf_hash(b"other");
            assert!(verify_inclusion(index, size, &other, &proof, &root).is_err());
            if let Some(first) = proof.first() {
                let mut bad = proof.clone();
                bad[0] = node_hash(first, first);
                assert!(verify_inclusion(index, size, &leaf, &bad, &root).is_err());
                assert!(verify_inclusion(index, size, &leaf, &proof[1..], &root).is_err());
            }
        }
        for old in 0..=size {
            let proof = tree.consistency_proof(old, size).unwrap();
            let old_root = tree.root_at(old).unwrap();
            verify_consistency(old, size, &old_root, &root, &proof).unwrap();
            if old > 0 && old < size {
                let wrong = leaf_hash(b"x");
                assert!(verify_consistency(old, size, &wrong, &root, &proof).is_err());
                assert!(verify_consistency(old, size, &old_root, &wrong, &proof).is_err());
            }
        }
    }
}

#[test]
fn truncate_restores_earlier_tree() {
    let mut tree = reference_tree();
    tree.truncate(5);
    assert_eq!(tree.root(), h(ROOTS[5]));
    tree.push(leaf_hash(&unhex(LEAVES[5]).unwrap()));
    assert_eq!(tree.root(), h(ROOTS[6]));
}
