//! A compact immutable string for ids: 24 bytes, holding up to [`INLINE_MAX`] bytes in place, a
//! canonical UUID (36 bytes, `8-4-4-4-12` hex digits, all lowercase or all uppercase) in place
//! as its 16 bytes, and any other string in one heap allocation. The ids of a presence are
//! mostly short (user ids, socket ids) or UUIDs, so the index keeps them without an allocation
//! of their own.
//!
//! A UUID kept as its 16 bytes is written out again (36 bytes on the stack) when its bytes are
//! asked for: [`SmallStr::as_bytes`] hands out a [`Bytes`], which dereferences to `[u8]`, and
//! [`SmallStr::with_bytes`] lends them to a closure.
//! Comparison and ordering are those of the original strings: two UUIDs of the same case
//! compare as their 16 bytes (their dashes are at the same places, and the hex digits of one
//! case are in the order of their values), any other pair as the bytes written out.
//!
//! Only UUIDs are encoded: they are the common ids too long to be kept in place as they are
//! (36 bytes). A Socket.IO socket id (20 bytes of base64url) is kept in place as it is, so
//! encoding it as its 15 bytes would save nothing and cost a decoding on every reply. A UUID
//! with letters of both cases is kept as it is (in its own allocation): only a string with
//! exactly one representation is encoded, so that equal strings stay equal representations.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest string kept in place as it is, in bytes.
pub const INLINE_MAX: usize = 22;

/// The length of a UUID written out: 32 hex digits and 4 dashes.
const UUID_LEN: usize = 36;

/// Whether byte `at` of a UUID written out is a dash.
fn is_dash(at: usize) -> bool {
    matches!(at, 8 | 13 | 18 | 23)
}

/// How the bytes are kept. A string of at most [`INLINE_MAX`] bytes is always `Inline`, a
/// canonical UUID always `Uuid`, any other string always `Heap`, so that equal strings have
/// equal representations (the derived equality is that of the strings).
#[derive(Clone, PartialEq, Eq)]
enum Repr {
    /// The first `len` bytes of `bytes`, the rest zero.
    Inline { len: u8, bytes: [u8; INLINE_MAX] },
    /// A UUID, its hex digits as 16 bytes: uppercase when `upper` (it has a letter, and all
    /// its letters are uppercase), lowercase otherwise (its letters are, or it has none).
    Uuid { upper: bool, bytes: [u8; 16] },
    /// Any other string, longer than [`INLINE_MAX`] bytes.
    Heap(Box<str>),
}

/// An immutable string of 24 bytes. Comparison, ordering and hashing are those of the `str` it
/// holds.
#[derive(Clone, PartialEq, Eq)]
pub struct SmallStr(Repr);

/// The bytes of a [`SmallStr`]: borrowed, or a UUID written out on the stack. Dereferences to
/// `[u8]`, without allocating.
pub struct Bytes<'a>(BytesRepr<'a>);

/// How a [`Bytes`] holds them.
enum BytesRepr<'a> {
    /// The bytes as the [`SmallStr`] keeps them.
    Borrowed(&'a [u8]),
    /// A UUID written out.
    Uuid([u8; UUID_LEN]),
}

impl Deref for Bytes<'_> {
    type Target = [u8];

    #[inline]
    fn deref(&self) -> &[u8] {
        match &self.0 {
            BytesRepr::Borrowed(bytes) => bytes,
            BytesRepr::Uuid(bytes) => bytes,
        }
    }
}

impl Bytes<'_> {
    /// The bytes as a `str`. They are those of a `str` (a [`SmallStr`] is only built from one,
    /// and a UUID is written out in ASCII): the check never fails.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(self).unwrap_or_default()
    }
}

/// The UUID `s` is, as (uppercase, its 16 bytes), when it is one in a canonical form: 36 bytes,
/// dashes after the 8th, 12th, 16th and 20th hex digit, letters all lowercase or all uppercase.
#[inline(never)]
fn encode_uuid(s: &[u8]) -> Option<(bool, [u8; 16])> {
    if s.len() != UUID_LEN {
        return None;
    }
    let (mut lower, mut upper) = (false, false);
    let mut digits = [0u8; 32];
    let mut n = 0;
    for (at, &c) in s.iter().enumerate() {
        if is_dash(at) {
            if c != b'-' {
                return None;
            }
            continue;
        }
        let value = match c {
            b'0'..=b'9' => c - b'0',
            b'a'..=b'f' => {
                lower = true;
                c - b'a' + 10
            }
            b'A'..=b'F' => {
                upper = true;
                c - b'A' + 10
            }
            _ => return None,
        };
        *digits.get_mut(n)? = value;
        n += 1;
    }
    if lower && upper {
        return None;
    }
    let mut bytes = [0u8; 16];
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        *byte = (pair[0] << 4) | pair[1];
    }
    Some((upper, bytes))
}

/// Where each of a UUID's 16 bytes is written out: its two hex digits from there on.
const BYTE_AT: [u8; 16] = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/// The two hex digits of each byte, with the given digits.
const fn hex_pairs(digits: &[u8; 16]) -> [[u8; 2]; 256] {
    let mut pairs = [[0; 2]; 256];
    let mut byte = 0;
    while byte < 256 {
        pairs[byte] = [digits[byte >> 4], digits[byte & 15]];
        byte += 1;
    }
    pairs
}

/// The lowercase hex digits of each byte.
static LOWER_PAIRS: [[u8; 2]; 256] = hex_pairs(b"0123456789abcdef");

/// The uppercase hex digits of each byte.
static UPPER_PAIRS: [[u8; 2]; 256] = hex_pairs(b"0123456789ABCDEF");

/// The UUID of `bytes` written out, with uppercase letters when `upper`.
fn decode_uuid(upper: bool, bytes: &[u8; 16]) -> [u8; UUID_LEN] {
    let pairs = if upper { &UPPER_PAIRS } else { &LOWER_PAIRS };
    let mut out = [b'-'; UUID_LEN];
    for (&byte, &at) in bytes.iter().zip(&BYTE_AT) {
        let at = usize::from(at);
        if let Some(place) = out.get_mut(at..at + 2) {
            place.copy_from_slice(&pairs[usize::from(byte)]);
        }
    }
    out
}

impl SmallStr {
    /// The string's bytes when they are kept as they are (not a UUID kept as its 16 bytes).
    #[inline]
    pub(crate) fn plain(&self) -> Option<&[u8]> {
        match &self.0 {
            Repr::Inline { len, bytes } => Some(bytes.get(..usize::from(*len)).unwrap_or_default()),
            Repr::Uuid { .. } => None,
            Repr::Heap(s) => Some(s.as_bytes()),
        }
    }

    /// The order of this string and the string of bytes `other`.
    #[inline]
    pub(crate) fn cmp_bytes(&self, other: &[u8]) -> Ordering {
        match self.plain() {
            Some(bytes) => bytes.cmp(other),
            None => self.cmp_written_out(other),
        }
    }

    /// [`SmallStr::cmp_bytes`] of a UUID kept as its 16 bytes (out of line, as
    /// [`SmallStr::cmp_encoded`]).
    #[inline(never)]
    fn cmp_written_out(&self, other: &[u8]) -> Ordering {
        (*self.as_bytes()).cmp(other)
    }

    /// [`Ord::cmp`] when either string is a UUID kept as its 16 bytes (out of line, so that the
    /// comparison of plain strings stays small enough to inline).
    #[inline(never)]
    fn cmp_encoded(&self, other: &Self) -> Ordering {
        match (&self.0, &other.0) {
            (
                Repr::Uuid { upper, bytes },
                Repr::Uuid {
                    upper: other_upper,
                    bytes: other_bytes,
                },
            ) if upper == other_upper => bytes.cmp(other_bytes),
            _ => self.as_bytes().cmp(&other.as_bytes()),
        }
    }

    /// The string's bytes, without allocating and without checking them again as UTF-8.
    #[inline]
    pub fn as_bytes(&self) -> Bytes<'_> {
        Bytes(match &self.0 {
            Repr::Inline { len, bytes } => {
                BytesRepr::Borrowed(bytes.get(..usize::from(*len)).unwrap_or_default())
            }
            Repr::Uuid { upper, bytes } => BytesRepr::Uuid(decode_uuid(*upper, bytes)),
            Repr::Heap(s) => BytesRepr::Borrowed(s.as_bytes()),
        })
    }

    /// The length of the string's own allocation: 0 when it is kept in place.
    #[cfg(test)]
    pub(crate) fn heap_len(&self) -> usize {
        match &self.0 {
            Repr::Heap(s) => s.len(),
            _ => 0,
        }
    }

    /// Calls `f` with the string's bytes, written out on the stack for a UUID: the same bytes as
    /// [`SmallStr::as_bytes`], for a caller that reads them once (a reply), at the cost of one
    /// look at the representation.
    #[inline]
    pub fn with_bytes<R>(&self, f: impl FnOnce(&[u8]) -> R) -> R {
        match &self.0 {
            Repr::Inline { len, bytes } => f(bytes.get(..usize::from(*len)).unwrap_or_default()),
            Repr::Uuid { upper, bytes } => f(&decode_uuid(*upper, bytes)),
            Repr::Heap(s) => f(s.as_bytes()),
        }
    }
}

impl From<&str> for SmallStr {
    #[inline]
    fn from(s: &str) -> Self {
        if s.len() <= INLINE_MAX {
            let mut bytes = [0; INLINE_MAX];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            SmallStr(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else if let Some((upper, bytes)) = encode_uuid(s.as_bytes()) {
            SmallStr(Repr::Uuid { upper, bytes })
        } else {
            SmallStr(Repr::Heap(Box::from(s)))
        }
    }
}

impl PartialEq<str> for SmallStr {
    #[inline]
    fn eq(&self, other: &str) -> bool {
        match self.plain() {
            Some(bytes) => bytes == other.as_bytes(),
            None => self.cmp_bytes(other.as_bytes()).is_eq(),
        }
    }
}

impl PartialOrd for SmallStr {
    #[inline]
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallStr {
    #[inline]
    fn cmp(&self, other: &Self) -> Ordering {
        match (self.plain(), other.plain()) {
            (Some(bytes), Some(other_bytes)) => bytes.cmp(other_bytes),
            _ => self.cmp_encoded(other),
        }
    }
}

impl Hash for SmallStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_bytes().as_str().hash(state);
    }
}

impl fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_bytes().as_str(), f)
    }
}

impl fmt::Display for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_bytes().as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    const LOWER: &str = "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b7";
    const UPPER: &str = "0F8E2C1A-9B7D-4E5F-A6B3-C2D1E0F9A8B7";

    #[test]
    fn is_24_bytes_with_or_without_an_option() {
        assert_eq!(std::mem::size_of::<SmallStr>(), 24);
        assert_eq!(std::mem::size_of::<Option<SmallStr>>(), 24);
    }

    #[test]
    fn keeps_every_length_and_kind_of_string() {
        let long = "x".repeat(300);
        for s in [
            "",
            "a",
            "000000123456",
            "s0000000000000000001",
            "exactly-22-bytes-long!",
            "exactly-23-bytes-long!!",
            "é ü 日本語 emoji 🎉 and more than twenty-two bytes",
            "日本語",
            LOWER,
            UPPER,
            "0f8e2c1a-9b7d-4e5f-A6B3-c2d1e0f9a8b7",
            "00000000-0000-0000-0000-000000000000",
            "ffffffff-ffff-ffff-ffff-ffffffffffff",
            "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF",
            "12345678-1234-1234-1234-123456789012",
            "Ab3_xY-9kLmN0pQrStUv",
            "-_-_-_-_-_-_-_-_-_-_",
            long.as_str(),
        ] {
            let small = SmallStr::from(s);
            assert_eq!(&*small.as_bytes(), s.as_bytes());
            assert_eq!(small.as_bytes().as_str(), s);
            assert_eq!(small.to_string(), s);
            assert_eq!(format!("{small:?}"), format!("{s:?}"));
            assert_eq!(small.clone(), small);
            assert!(small == *s);
        }
    }

    #[test]
    fn inline_up_to_22_bytes() {
        assert!(matches!(
            SmallStr::from("exactly-22-bytes-long!").0,
            Repr::Inline { len: 22, .. }
        ));
        assert!(matches!(
            SmallStr::from("Ab3_xY-9kLmN0pQrStUv").0,
            Repr::Inline { len: 20, .. }
        ));
        assert!(matches!(
            SmallStr::from("exactly-23-bytes-long!!").0,
            Repr::Heap(_)
        ));
    }

    #[test]
    fn keeps_canonical_uuids_as_16_bytes() {
        let kept = |s: &str| match SmallStr::from(s).0 {
            Repr::Uuid { upper, bytes } => Some((upper, bytes)),
            _ => None,
        };
        let bytes = [
            0x0f, 0x8e, 0x2c, 0x1a, 0x9b, 0x7d, 0x4e, 0x5f, 0xa6, 0xb3, 0xc2, 0xd1, 0xe0, 0xf9,
            0xa8, 0xb7,
        ];
        assert_eq!(kept(LOWER), Some((false, bytes)));
        assert_eq!(kept(UPPER), Some((true, bytes)));
        // Digits only: one form, the lowercase one.
        assert_eq!(
            kept("12345678-1234-1234-1234-123456789012").map(|(upper, _)| upper),
            Some(false)
        );
        for plain in [
            "0f8e2c1a-9b7d-4e5f-A6B3-c2d1e0f9a8b7",
            "0f8e2c1a9b7d4e5fa6b3c2d1e0f9a8b7",
            "{0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b}",
            "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b7-",
            "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b",
            "0f8e2c1a-9b7d-4e5f-a6b3c-2d1e0f9a8b7",
            "0f8e2c1a_9b7d_4e5f_a6b3_c2d1e0f9a8b7",
            "0f8e2c1g-9b7d-4e5f-a6b3-c2d1e0f9a8b7",
            "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8bé",
            "urn:uuid:0f8e2c1a-9b7d-4e5f-a6b3-c2d",
            "------------------------------------",
        ] {
            assert_eq!(kept(plain), None, "{plain}");
            let small = SmallStr::from(plain);
            assert_eq!(&*small.as_bytes(), plain.as_bytes());
        }
    }

    /// Every kind of id against every other: ordering, equality and hashing are those of the
    /// strings.
    fn agrees_with_str(a: &str, b: &str, state: &RandomState) {
        let (x, y) = (SmallStr::from(a), SmallStr::from(b));
        assert_eq!(x.cmp(&y), a.cmp(b), "{a} {b}");
        assert_eq!(x.partial_cmp(&y), a.partial_cmp(b));
        assert_eq!(x == y, a == b, "{a} {b}");
        assert_eq!(x == *b, a == b, "{a} {b}");
        assert_eq!(state.hash_one(&x), state.hash_one(a));
    }

    #[test]
    fn compares_and_hashes_like_str() {
        let words = [
            "",
            "a",
            "ab",
            "b",
            "B",
            "0",
            "0f8e2c1a",
            "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b7",
            "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b7x",
            "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b6",
            "0f8e2c1a-9b7d-4e5f-a6b3-c2d1e0f9a8b",
            "0F8E2C1A-9B7D-4E5F-A6B3-C2D1E0F9A8B7",
            "0f8e2c1a-9b7d-4e5f-A6B3-c2d1e0f9a8b7",
            "12345678-1234-1234-1234-123456789012",
            "12345678-1234-1234-1234-12345678901A",
            "12345678-1234-1234-1234-12345678901a",
            "a-very-long-identifier-over-22",
            "a-very-long-identifier-over-21",
            "zz",
            "~",
        ];
        let state = RandomState::new();
        for a in words {
            for b in words {
                agrees_with_str(a, b, &state);
            }
        }
    }

    /// An id drawn from few characters, so that ids share long prefixes: a UUID of either case
    /// or mixed case, one with a character changed, a prefix of one, or a short id.
    fn random_id(rng: &mut Rng) -> String {
        let hex = b"09afAF";
        let mut id: Vec<u8> = (0..UUID_LEN)
            .map(|at| {
                if is_dash(at) {
                    b'-'
                } else {
                    hex[rng.below(hex.len() as u64) as usize]
                }
            })
            .collect();
        match rng.below(6) {
            0 => id.make_ascii_uppercase(),
            1 => {
                let at = rng.below(UUID_LEN as u64) as usize;
                id[at] = b"-0aAg/"[rng.below(6) as usize];
            }
            2 => id.truncate(rng.below(UUID_LEN as u64 + 1) as usize),
            3 => id.push(b"-0a"[rng.below(3) as usize]),
            4 => {}
            _ => id.make_ascii_lowercase(),
        }
        String::from_utf8(id).unwrap_or_default()
    }

    #[test]
    fn orders_random_ids_like_their_bytes() {
        let mut rng = Rng(21);
        let state = RandomState::new();
        for _ in 0..20_000 {
            let (a, b) = (random_id(&mut rng), random_id(&mut rng));
            agrees_with_str(&a, &b, &state);
            agrees_with_str(&a, &a, &state);
        }
    }
}
