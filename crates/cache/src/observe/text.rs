//! Wire names as text, written alike by both readers so that selectors see the same characters.

use hickory_proto::rr::Name;

/// A wire name as text the way Cilium's DNS library (miekg/dns) writes it, so that selectors
/// see the same characters: `.`, space, `'`, `@`, `;`, `(`, `)`, `"` and `\\` inside a label are
/// escaped with a backslash, bytes outside `!`..`~` as `\\DDD` (decimal), everything else as
/// it is; each label ends with a dot, and the root is `.`. (hickory's own `to_ascii` escapes a
/// leading `-` and writes octal, which a `*` would then fail to match.)
pub fn name_text(name: &Name) -> String {
    let mut out = Vec::with_capacity(name.len() + 1);
    for label in name {
        push_label_text(&mut out, label);
    }
    if out.is_empty() {
        out.push(b'.');
    }
    ascii_string(out)
}

/// How [`name_text`] writes a byte.
const AS_IS: u8 = 0;
const BACKSLASH: u8 = 1;
const DECIMAL: u8 = 2;

/// Each byte's class (`AS_IS`, `BACKSLASH` or `DECIMAL`), indexed by the byte.
static BYTE_CLASS: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut classes = [DECIMAL; 256];
    let mut b = 0x21;
    while b <= 0x7e {
        classes[b] = AS_IS;
        b += 1;
    }
    let escaped = b".' @;()\"\\";
    let mut i = 0;
    while i < escaped.len() {
        classes[escaped[i] as usize] = BACKSLASH;
        i += 1;
    }
    classes
}

/// Appends one label of [`name_text`] and its dot to `out`, as ASCII bytes (shared with the
/// fast path, so the two readers write names alike).
pub(crate) fn push_label_text(out: &mut Vec<u8>, label: &[u8]) {
    // The usual label needs no escape: one copy.
    if label.iter().all(|&b| BYTE_CLASS[usize::from(b)] == AS_IS) {
        out.extend_from_slice(label);
    } else {
        for &b in label {
            match BYTE_CLASS[usize::from(b)] {
                AS_IS => out.push(b),
                BACKSLASH => out.extend_from_slice(&[b'\\', b]),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'0' + b / 100,
                    b'0' + b / 10 % 10,
                    b'0' + b % 10,
                ]),
            }
        }
    }
    out.push(b'.');
}

/// Bytes written by [`push_label_text`] (always ASCII) as a `String`, reusing their buffer.
pub(crate) fn ascii_string(bytes: Vec<u8>) -> String {
    String::from_utf8(bytes)
        .unwrap_or_else(|error| String::from_utf8_lossy(error.as_bytes()).into_owned())
}
