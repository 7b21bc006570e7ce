//! A compact immutable string for ids: 24 bytes, holding up to [`INLINE_MAX`] bytes in place and
//! longer strings in one heap allocation. The ids of a presence are mostly short (user ids,
//! socket ids), so the index keeps them without an allocation of their own.

use std::cmp::Ordering;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::ops::Deref;

/// The longest string kept in place, in bytes.
pub const INLINE_MAX: usize = 22;

/// How the bytes are kept. A string of at most [`INLINE_MAX`] bytes is always `Inline`, a
/// longer one always `Heap`, so that equal strings have equal representations.
#[derive(Clone)]
enum Repr {
    /// The first `len` bytes of `bytes`, the rest zero.
    Inline { len: u8, bytes: [u8; INLINE_MAX] },
    /// A string longer than [`INLINE_MAX`] bytes.
    Heap(Box<str>),
}

/// An immutable string of 24 bytes that dereferences to `str`. Comparison, ordering and
/// hashing are those of the `str` it holds.
#[derive(Clone)]
pub struct SmallStr(Repr);

impl SmallStr {
    /// The string.
    pub fn as_str(&self) -> &str {
        match &self.0 {
            Repr::Inline { len, bytes } => {
                let bytes = bytes.get(..usize::from(*len)).unwrap_or_default();
                // `Inline` is only built by `From<&str>`, from all the bytes of a `str`: the
                // check never fails.
                std::str::from_utf8(bytes).unwrap_or_default()
            }
            Repr::Heap(s) => s,
        }
    }

    /// The string's bytes, without checking them again as UTF-8.
    pub fn as_bytes(&self) -> &[u8] {
        match &self.0 {
            Repr::Inline { len, bytes } => bytes.get(..usize::from(*len)).unwrap_or_default(),
            Repr::Heap(s) => s.as_bytes(),
        }
    }
}

impl From<&str> for SmallStr {
    fn from(s: &str) -> Self {
        if s.len() <= INLINE_MAX {
            let mut bytes = [0; INLINE_MAX];
            bytes[..s.len()].copy_from_slice(s.as_bytes());
            SmallStr(Repr::Inline {
                len: s.len() as u8,
                bytes,
            })
        } else {
            SmallStr(Repr::Heap(Box::from(s)))
        }
    }
}

impl Deref for SmallStr {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl PartialEq for SmallStr {
    fn eq(&self, other: &Self) -> bool {
        self.as_bytes() == other.as_bytes()
    }
}

impl Eq for SmallStr {}

impl PartialOrd for SmallStr {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for SmallStr {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}

impl Hash for SmallStr {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.as_str().hash(state);
    }
}

impl fmt::Debug for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for SmallStr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self.as_str(), f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

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
            long.as_str(),
        ] {
            let small = SmallStr::from(s);
            assert_eq!(&*small, s);
            assert_eq!(small.as_bytes(), s.as_bytes());
            assert_eq!(small.to_string(), s);
            assert_eq!(format!("{small:?}"), format!("{s:?}"));
            assert_eq!(small.clone(), small);
        }
    }

    #[test]
    fn inline_up_to_22_bytes() {
        assert!(matches!(
            SmallStr::from("exactly-22-bytes-long!").0,
            Repr::Inline { len: 22, .. }
        ));
        assert!(matches!(
            SmallStr::from("exactly-23-bytes-long!!").0,
            Repr::Heap(_)
        ));
    }

    #[test]
    fn compares_and_hashes_like_str() {
        let words = [
            "",
            "a",
            "ab",
            "b",
            "B",
            "a-very-long-identifier-over-22",
            "a-very-long-identifier-over-21",
            "zz",
            "~",
        ];
        let state = RandomState::new();
        for a in words {
            for b in words {
                let (x, y) = (SmallStr::from(a), SmallStr::from(b));
                assert_eq!(x.cmp(&y), a.cmp(b), "{a} {b}");
                assert_eq!(x.partial_cmp(&y), a.partial_cmp(b));
                assert_eq!(x == y, a == b);
            }
            assert_eq!(state.hash_one(SmallStr::from(a)), state.hash_one(a));
        }
    }
}
