//! The suffix table's hash of a name: built label by label from the right, so that one pass over
//! a name gives the hash of the name and of every suffix the table is probed with.
//!
//! A key is a normalised name or the part of one after a dot (`svc.example.com.`,
//! `example.com.`, `com.`, the empty key). Its hash starts from a seed for the empty key and
//! folds in one label at a time, from the last to the first:
//! `hash(label . rest) = fold(hash(rest), label)`. The hash of a suffix therefore depends only
//! on the suffix's own bytes, which is what lets a walk over a name ([`label_before`], label by
//! label leftwards) have every suffix's hash from the one before, reading each byte about once,
//! where hashing each suffix on its own reads the name's right end once per label.
//!
//! The hash only places keys in the table: a probe still compares the key's bytes, so texts that
//! hash alike (`a` and `a.`, for one) cost a comparison, never a wrong answer. The keys come from
//! policy, not from the network, and a probe never inserts.

use crate::swar::{equal_bytes, low_bytes, word_at};

/// The hash of the empty key: the fold's starting value. It is the same word as the trie's
/// foldhash seed in `set/trie.rs` ("fqdnpath" in ASCII) only because both are arbitrary constants;
/// the two never meet (one starts this fold, the other seeds the trie's edge hashes), so
/// either may change alone.
pub(crate) const EMPTY: u64 = 0x6671_646e_7061_7468;

/// The multiplier of the fold (odd, with no structure: the 64-bit golden ratio).
const MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// The high and low halves of a full 64 x 64 bit product, xor-ed: every input bit reaches most
/// output bits in one multiply.
#[inline]
fn fold(x: u64, y: u64) -> u64 {
    let product = u128::from(x) * u128::from(y);
    #[expect(clippy::cast_possible_truncation, reason = "the low half, on purpose")]
    let low = product as u64;
    low ^ (product >> 64) as u64
}

/// The label that ends at `end` (at a dot or the text's end): where it starts (after the last
/// dot before `end`, or at 0), and `hash` with the label folded in.
///
/// The label is read a word at a time from its end: each eight bytes without a dot are folded
/// in whole; the word that holds the dot (or the text's start) gives the label's first bytes,
/// folded in with the label's length in the top byte, which they leave free. The common label,
/// shorter than eight bytes, costs one load, one dot test and one multiply. Always inlined: the
/// walk keeps its state in registers, where an iterator's `next` call kept it in memory and
/// cost twice the instructions (callgrind).
#[expect(clippy::inline_always, reason = "measured: see the doc comment")]
#[inline(always)]
pub(crate) fn label_before(bytes: &[u8], end: usize, hash: u64) -> (usize, u64) {
    let mut hash = hash;
    let mut word_end = end;
    loop {
        let (start, word) = match word_end.checked_sub(8) {
            Some(start) => (
                start,
                bytes
                    .get(start..word_end)
                    .and_then(<[u8]>::first_chunk::<8>)
                    .map_or(0, |word| u64::from_le_bytes(*word)),
            ),
            // Past `word_end` the word holds zeros, which are not dots.
            None => (0, word_at(bytes, 0) & low_bytes(word_end)),
        };
        let dots = equal_bytes(word, b'.');
        if dots == 0 && word_end >= 8 {
            hash = fold(hash ^ word, MUL);
            word_end = start;
            continue;
        }
        let (at, first) = if dots == 0 {
            (0, word)
        } else {
            // The highest dot of the word (lane 0..=7): the label's first bytes are above it.
            let lane = dots.ilog2() / 8;
            (
                start + lane as usize + 1,
                word.checked_shr(8 * (lane + 1)).unwrap_or(0),
            )
        };
        // At most seven bytes: the top byte is free for the length (its low seven bits, with
        // the high bit set so that it is never zero).
        let len = ((end - at) as u64 & 0x7f) | 0x80;
        return (at, fold(hash ^ first ^ (len << 56), MUL));
    }
}

/// Where the last label of `bytes` ends: before a trailing dot, which ends the last label
/// rather than starting an empty one (`a.b.` has the labels `a` and `b`).
#[inline]
pub(crate) fn last_label_end(bytes: &[u8]) -> usize {
    bytes.len() - usize::from(bytes.last() == Some(&b'.'))
}

/// The hash of the key `key` (see the module docs).
pub(crate) fn key_hash(key: &[u8]) -> u64 {
    if key.is_empty() {
        return EMPTY;
    }
    let mut end = last_label_end(key);
    let mut hash = EMPTY;
    loop {
        let (at, next) = label_before(key, end, hash);
        hash = next;
        if at == 0 {
            return hash;
        }
        end = at - 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The suffixes a byte-at-a-time reading gives: the empty one, then after each dot from the
    /// right (a trailing dot excepted), then the whole text.
    fn expected_starts(text: &[u8]) -> Vec<usize> {
        let mut starts = vec![text.len()];
        let body = text.strip_suffix(b".").unwrap_or(text);
        if !text.is_empty() {
            starts.extend(
                (0..body.len())
                    .rev()
                    .filter(|&i| body[i] == b'.')
                    .map(|i| i + 1),
            );
            starts.push(0);
        }
        starts
    }

    /// The suffixes a walk probes, as `(start, hash)`, the way `SuffixTable::walk` steps.
    fn suffixes(bytes: &[u8]) -> Vec<(usize, u64)> {
        let mut out = vec![(bytes.len(), EMPTY)];
        if bytes.is_empty() {
            return out;
        }
        let (mut end, mut hash) = (last_label_end(bytes), EMPTY);
        loop {
            let (at, next) = label_before(bytes, end, hash);
            hash = next;
            out.push((at, hash));
            if at == 0 {
                return out;
            }
            end = at - 1;
        }
    }

    #[test]
    fn every_suffix_of_every_slice_hashes_as_the_suffix_alone() {
        let text = b"a.bc..def.ghijklmnop.qrstuvwxyz0123456789-_abcdefghij.k.\\..l.".to_vec();
        for start in 0..text.len() {
            for end in start..=text.len() {
                let bytes = &text[start..end];
                let got = suffixes(bytes);
                let starts: Vec<usize> = got.iter().map(|&(s, _)| s).collect();
                assert_eq!(starts, expected_starts(bytes), "{bytes:?}");
                for (s, hash) in got {
                    assert_eq!(hash, key_hash(&bytes[s..]), "{bytes:?} from {s}");
                }
            }
        }
    }

    #[test]
    fn keys_that_differ_hash_apart() {
        let mut keys: Vec<String> = vec![String::new(), ".".into(), "..".into()];
        for a in [
            "",
            "a",
            "b",
            "ab",
            "ba",
            "a\0",
            "abcdefgh",
            "abcdefghi",
            "abcdefgh\0",
        ] {
            for b in ["", "com", "com\0"] {
                keys.push(format!("{a}.{b}."));
                keys.push(format!("{a}{b}."));
            }
        }
        keys.sort();
        keys.dedup();
        let mut hashes: Vec<u64> = keys.iter().map(|k| key_hash(k.as_bytes())).collect();
        hashes.sort_unstable();
        hashes.dedup();
        assert_eq!(hashes.len(), keys.len());
    }
}
