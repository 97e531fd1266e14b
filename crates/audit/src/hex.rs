//! Lowercase hexadecimal, the one text form of hashes, keys and signatures
//! in the log. Parsing is strict (exactly the expected length, lowercase
//! only) so that every value has exactly one spelling in a log line.

/// `bytes` as lowercase hex.
pub(crate) fn encode(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for &byte in bytes {
        text.push(char::from(DIGITS[usize::from(byte >> 4)]));
        text.push(char::from(DIGITS[usize::from(byte & 0x0f)]));
    }
    text
}

/// Parses exactly `N` bytes written as `2 * N` lowercase hex digits.
///
/// # Errors
/// A sentence saying what was expected and what was found (length, or the
/// position of the first character that is not a lowercase hex digit).
pub(crate) fn decode<const N: usize>(text: &str) -> Result<[u8; N], String> {
    if text.len() != 2 * N {
        return Err(format!(
            "expected {} lowercase hex digits, got {} characters",
            2 * N,
            text.chars().count()
        ));
    }
    let mut out = [0u8; N];
    let digits = text.as_bytes();
    for (i, byte) in out.iter_mut().enumerate() {
        let high = digit(digits[2 * i]).ok_or_else(|| not_hex(2 * i))?;
        let low = digit(digits[2 * i + 1]).ok_or_else(|| not_hex(2 * i + 1))?;
        *byte = (high << 4) | low;
    }
    Ok(out)
}

fn not_hex(position: usize) -> String {
    format!(
        "character {} is not a lowercase hex digit (0-9 a-f)",
        position + 1
    )
}

fn digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let bytes = [0x00, 0x01, 0xab, 0xff];
        assert_eq!(encode(&bytes), "0001abff");
        assert_eq!(decode::<4>("0001abff"), Ok(bytes));
    }

    #[test]
    fn rejects_uppercase_wrong_length_and_non_hex() {
        assert!(decode::<2>("ABCD").is_err());
        assert!(decode::<2>("abc").is_err());
        assert!(decode::<2>("abcde").is_err());
        assert!(decode::<2>("ab g").is_err());
        // Multi-byte characters never pass as digits, even at the right byte length.
        assert!(decode::<2>("ab\u{e9}").is_err());
    }
}
