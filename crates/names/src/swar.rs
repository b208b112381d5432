//! Byte tests eight bytes at a time in a `u64` ("SIMD within a register"), in safe code.
//!
//! Matching a name reads it twice: once for upper-case letters ([`crate::normalize`]) and once
//! for its dots and labels (the suffix table's hashes, `crate::keyhash`). Done a byte at a time
//! with a branch per byte, those two loops cost more than all the hash probes of a match. Each
//! test here turns a word of eight bytes into a mask that has the high bit of every byte that
//! passes set, and nothing else.

/// The low seven bits of every byte.
const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
/// The high bit of every byte.
const HIGH: u64 = 0x8080_8080_8080_8080;

/// `b` in every byte of a word.
const fn splat(b: u8) -> u64 {
    0x0101_0101_0101_0101 * b as u64
}

/// The high bit of every byte of `word` that is zero.
///
/// Exact, with no false positive: adding `0x7f` to a byte's low seven bits carries into its
/// high bit unless they are all zero, and never carries into the next byte.
#[inline]
fn zero_bytes(word: u64) -> u64 {
    !(((word & LOW7) + LOW7) | word | LOW7)
}

/// The high bit of every byte of `word` equal to `b`.
#[inline]
pub(crate) fn equal_bytes(word: u64, b: u8) -> u64 {
    zero_bytes(word ^ splat(b))
}

/// The high bit of every byte of `word` that is an ASCII upper-case letter.
#[inline]
pub(crate) fn upper_bytes(word: u64) -> u64 {
    let low = word & LOW7;
    // The high bit of `low + (0x80 - c)` is set when the byte is `c` or more (no carry: the sum
    // stays under 0x100); a byte with its own high bit set is not ASCII.
    let from_a = low + splat(0x80 - b'A');
    let past_z = low + splat(0x80 - b'Z' - 1);
    from_a & !past_z & !word & HIGH
}

/// The eight bytes of `bytes` from `at`, little-endian, or what there is of them padded with
/// zeros (which no test here passes).
#[inline]
pub(crate) fn word_at(bytes: &[u8], at: usize) -> u64 {
    let rest = bytes.get(at..).unwrap_or_default();
    if let Some(word) = rest.first_chunk::<8>() {
        return u64::from_le_bytes(*word);
    }
    // Fewer than eight bytes left: read the text's last eight bytes and shift out those before
    // `at` (a copy of a variable length would be a call to `memcpy`).
    if let (Some(last), false) = (bytes.last_chunk::<8>(), rest.is_empty()) {
        let before = 8 - rest.len();
        return u64::from_le_bytes(*last) >> (8 * before);
    }
    rest.iter()
        .rev()
        .fold(0, |word, &b| (word << 8) | u64::from(b))
}

/// A mask of the low `n` bytes of a word (all of them from eight on).
#[inline]
pub(crate) fn low_bytes(n: usize) -> u64 {
    if n >= 8 {
        u64::MAX
    } else {
        (1_u64 << (8 * n)) - 1
    }
}

/// Whether any byte of `bytes` is an ASCII upper-case letter.
#[inline]
pub(crate) fn any_upper(bytes: &[u8]) -> bool {
    let (words, rest) = bytes.as_chunks::<8>();
    let mut any = words
        .iter()
        .fold(0, |any, word| any | upper_bytes(u64::from_le_bytes(*word)));
    if !rest.is_empty() {
        // The last eight bytes again, overlapping the words already read (an upper-case letter
        // is found twice at worst), or the whole text when it is shorter than a word.
        let last = bytes
            .last_chunk::<8>()
            .map_or_else(|| word_at(bytes, 0), |word| u64::from_le_bytes(*word));
        any |= upper_bytes(last);
    }
    any != 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_value_in_every_lane_tests_like_the_scalar_test() {
        for b in 0..=255_u8 {
            for lane in 0..8 {
                // The byte under test among neighbours that pass and that fail each test.
                for fill in [0_u8, b'.', b'A', b'z', 0x80, 0xff] {
                    let mut bytes = [fill; 8];
                    bytes[lane] = b;
                    let word = u64::from_le_bytes(bytes);
                    let bit = |mask: u64| mask >> (lane * 8 + 7) & 1 == 1;
                    assert_eq!(
                        bit(equal_bytes(word, b'.')),
                        b == b'.',
                        "{b:#x} lane {lane}"
                    );
                    assert_eq!(bit(upper_bytes(word)), b.is_ascii_uppercase(), "{b:#x}");
                    assert_eq!(equal_bytes(word, b'.') & !HIGH, 0);
                    assert_eq!(upper_bytes(word) & !HIGH, 0);
                }
            }
        }
    }

    #[test]
    fn words_and_upper_case_agree_with_byte_loops_at_every_length() {
        let text: Vec<u8> = b"a.bC..d\xc3\x89f.ghijklmnop.Q.rstuvwxyz.0123456789..-_.".to_vec();
        for start in 0..text.len() {
            for end in start..=text.len() {
                let bytes = &text[start..end];
                assert_eq!(any_upper(bytes), bytes.iter().any(u8::is_ascii_uppercase));
                for at in 0..=bytes.len() + 1 {
                    let mut word = [0_u8; 8];
                    let rest = bytes.get(at..).unwrap_or_default();
                    let n = rest.len().min(8);
                    word[..n].copy_from_slice(&rest[..n]);
                    assert_eq!(
                        word_at(bytes, at),
                        u64::from_le_bytes(word),
                        "{bytes:?} at {at}"
                    );
                }
            }
        }
    }
}
