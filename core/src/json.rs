//! A small JSON validator for presence data: says whether some bytes are exactly one JSON
//! value (RFC 8259), surrounded by optional whitespace. It walks the bytes once without
//! recursion, nests at most [`MAX_DEPTH`] arrays and objects deep, and never panics.

/// The deepest nesting of arrays and objects accepted.
pub const MAX_DEPTH: usize = 64;

/// What the validator expects next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    /// A value (at the top, after `[`, `,` in an array, or `:`).
    Value,
    /// A value or `]` (just after `[`).
    ValueOrClose,
    /// A key or `}` (just after `{`).
    KeyOrClose,
    /// A key (after `,` in an object).
    Key,
    /// `:` after a key.
    Colon,
    /// `,` or the close of the innermost container, or the end at the top.
    After,
}

/// True when `bytes` hold exactly one JSON value, with optional whitespace around it.
pub fn is_one_value(bytes: &[u8]) -> bool {
    let mut open = [false; MAX_DEPTH];
    let mut depth = 0usize;
    let mut expect = Expect::Value;
    let mut at = 0usize;
    loop {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = bytes.get(at) {
            at += 1;
        }
        let Some(&byte) = bytes.get(at) else {
            return expect == Expect::After && depth == 0;
        };
        expect = match (expect, byte) {
            (Expect::After, b',') if depth > 0 => {
                at += 1;
                if open[depth - 1] {
                    Expect::Key
                } else {
                    Expect::Value
                }
            }
            (Expect::After | Expect::ValueOrClose, b']') if depth > 0 && !open[depth - 1] => {
                at += 1;
                depth -= 1;
                Expect::After
            }
            (Expect::After | Expect::KeyOrClose, b'}') if depth > 0 && open[depth - 1] => {
                at += 1;
                depth -= 1;
                Expect::After
            }
            (Expect::Colon, b':') => {
                at += 1;
                Expect::Value
            }
            (Expect::Key | Expect::KeyOrClose, b'"') => match string_end(bytes, at) {
                Some(end) => {
                    at = end;
                    Expect::Colon
                }
                None => return false,
            },
            (Expect::Value | Expect::ValueOrClose, b'[' | b'{') => {
                if depth == MAX_DEPTH {
                    return false;
                }
                open[depth] = byte == b'{';
                depth += 1;
                at += 1;
                if byte == b'{' {
                    Expect::KeyOrClose
                } else {
                    Expect::ValueOrClose
                }
            }
            (Expect::Value | Expect::ValueOrClose, _) => match scalar_end(bytes, at) {
                Some(end) => {
                    at = end;
                    Expect::After
                }
                None => return false,
            },
            _ => return false,
        };
    }
}

/// The end of the string, number or literal that starts at `at`.
fn scalar_end(bytes: &[u8], at: usize) -> Option<usize> {
    let rest = bytes.get(at..)?;
    match rest.first()? {
        b'"' => string_end(bytes, at),
        b't' if rest.starts_with(b"true") => Some(at + 4),
        b'f' if rest.starts_with(b"false") => Some(at + 5),
        b'n' if rest.starts_with(b"null") => Some(at + 4),
        b'-' | b'0'..=b'9' => number_end(bytes, at),
        _ => None,
    }
}

/// The end of the string whose opening quote is at `at`: escapes checked, no control bytes,
/// valid UTF-8.
fn string_end(bytes: &[u8], at: usize) -> Option<usize> {
    let mut i = at + 1;
    loop {
        match *bytes.get(i)? {
            b'"' => {
                std::str::from_utf8(bytes.get(at + 1..i)?).ok()?;
                return Some(i + 1);
            }
            b'\\' => match *bytes.get(i + 1)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => i += 2,
                b'u' => {
                    let hex = bytes.get(i + 2..i + 6)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return None;
                    }
                    i += 6;
                }
                _ => return None,
            },
            0x00..=0x1f => return None,
            _ => i += 1,
        }
    }
}

/// The end of the number that starts at `at`: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
fn number_end(bytes: &[u8], at: usize) -> Option<usize> {
    let digit = |i: usize| bytes.get(i).is_some_and(u8::is_ascii_digit);
    let digits = |mut i: usize| {
        while digit(i) {
            i += 1;
        }
        i
    };
    let mut i = at;
    if bytes.get(i) == Some(&b'-') {
        i += 1;
    }
    match bytes.get(i)? {
        b'0' => i += 1,
        b'1'..=b'9' => i = digits(i),
        _ => return None,
    }
    if bytes.get(i) == Some(&b'.') {
        if !digit(i + 1) {
            return None;
        }
        i = digits(i + 1);
    }
    if let Some(b'e' | b'E') = bytes.get(i) {
        i += 1;
        if let Some(b'+' | b'-') = bytes.get(i) {
            i += 1;
        }
        if !digit(i) {
            return None;
        }
        i = digits(i);
    }
    Some(i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::Rng;

    #[test]
    fn valid_values() {
        for valid in [
            &b"{}"[..],
            b"[]",
            b"0",
            b"-0",
            b"12.5e-3",
            b"1E+9",
            b"true",
            b"false",
            b"null",
            b"\"\"",
            b" \"caf\xc3\xa9 \\u00e9\\n\\\"\" ",
            br#"{"name":"Ada","tags":["a",1,null,{"x":[true,false]}],"n":-1.5}"#,
            b"\n[ 1 , 2 ]\t",
            br#"{"a":{}}"#,
        ] {
            assert!(is_one_value(valid), "{}", String::from_utf8_lossy(valid));
        }
    }

    #[test]
    fn invalid_values() {
        for invalid in [
            &b""[..],
            b" ",
            b"{",
            b"}",
            b"[1,]",
            b"[,1]",
            b"{\"a\"}",
            b"{\"a\":}",
            b"{\"a\":1,}",
            b"{1:2}",
            b"{\"a\" 1}",
            b"1 2",
            b"{}{}",
            b"01",
            b"1.",
            b".5",
            b"-",
            b"1e",
            b"+1",
            b"tru",
            b"nul",
            b"True",
            b"'a'",
            b"\"a",
            b"\"\\x\"",
            b"\"\\u12g4\"",
            b"\"\\u12\"",
            b"\"a\nb\"",
            b"\"\xff\"",
            b"[1]]",
            b"NaN",
            b"[1}",
            b"{\"a\":1]",
            b"abc",
        ] {
            assert!(
                !is_one_value(invalid),
                "{}",
                String::from_utf8_lossy(invalid)
            );
        }
    }

    #[test]
    fn nesting_is_bounded() {
        let nested = |depth: usize| {
            let mut value = "[".repeat(depth);
            value.push_str(&"]".repeat(depth));
            value
        };
        assert!(is_one_value(nested(MAX_DEPTH).as_bytes()));
        assert!(!is_one_value(nested(MAX_DEPTH + 1).as_bytes()));
        assert!(!is_one_value("[".repeat(1_000_000).as_bytes()));
        assert!(!is_one_value("{\"a\":".repeat(100_000).as_bytes()));
    }

    /// Random bytes, and valid values cut or with one byte changed: nothing panics, and a
    /// value keeps its answer with whitespace around it.
    #[test]
    fn fuzz_never_panics() {
        let mut rng = Rng(22);
        let alphabet = b"{}[]:,\"\\ u0123456789-+.eEtruefalsn\x00\x1f\xc3\xa9\xff\t";
        let base = br#"{"name":"Ada \u00e9","tags":[1,-2.5e3,true,null,{"x":[]}]}"#;
        for round in 0..200_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = rng.below(24) as usize;
                (0..len)
                    .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                    .collect()
            } else {
                let mut bytes = base.to_vec();
                match rng.below(3) {
                    0 => bytes.truncate(rng.below(base.len() as u64) as usize),
                    1 => {
                        let at = rng.below(base.len() as u64) as usize;
                        bytes[at] = alphabet[rng.below(alphabet.len() as u64) as usize];
                    }
                    _ => {
                        let at = rng.below(base.len() as u64 + 1) as usize;
                        bytes.insert(at, alphabet[rng.below(alphabet.len() as u64) as usize]);
                    }
                }
                bytes
            };
            let valid = is_one_value(&bytes);
            let mut padded = b" \n".to_vec();
            padded.extend_from_slice(&bytes);
            padded.push(b'\t');
            assert_eq!(is_one_value(&padded), valid, "{bytes:?}");
        }
        assert!(is_one_value(base));
    }
}
