//! The packed entry format of kv_set_batch and kv_scan:
//! `[u32 key_len][key][u32 value_len][value]`, repeated, little-endian.

use crate::error::{Code, Error, Result};

/// Appends one entry to a packed buffer. Keys and values over 4 GiB cannot
/// be expressed (and the host caps values at 16 MiB anyway).
pub fn push(out: &mut Vec<u8>, key: &[u8], value: &[u8]) -> Result<()> {
    let kl = u32::try_from(key.len()).map_err(|_| Error::new(Code::TooLarge, "key over 4 GiB"))?;
    let vl =
        u32::try_from(value.len()).map_err(|_| Error::new(Code::TooLarge, "value over 4 GiB"))?;
    out.extend_from_slice(&kl.to_le_bytes());
    out.extend_from_slice(key);
    out.extend_from_slice(&vl.to_le_bytes());
    out.extend_from_slice(value);
    Ok(())
}

/// Splits a packed buffer into its entries; a truncated or overlong entry is
/// an Invalid error rather than a silently shorter list.
pub fn parse(mut data: &[u8]) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
    fn field<'a>(data: &mut &'a [u8]) -> Result<&'a [u8]> {
        if data.len() < 4 {
            return Err(Error::new(
                Code::Invalid,
                "packed entries: truncated length",
            ));
        }
        let len = u32::from_le_bytes([data[0], data[1], data[2], data[3]]) as usize;
        if data.len() - 4 < len {
            return Err(Error::new(
                Code::Invalid,
                "packed entries: length past the end",
            ));
        }
        let bytes = &data[4..4 + len];
        *data = &data[4 + len..];
        Ok(bytes)
    }
    let mut out = Vec::new();
    while !data.is_empty() {
        let key = field(&mut data)?;
        let value = field(&mut data)?;
        out.push((key.to_vec(), value.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_keeps_order_and_empty_values() {
        let mut buf = Vec::new();
        push(&mut buf, b"a", b"").unwrap();
        push(&mut buf, b"key_2", b"value two").unwrap();
        assert_eq!(buf.len(), 4 + 1 + 4 + 4 + 5 + 4 + 9);
        let entries = parse(&buf).unwrap();
        assert_eq!(
            entries,
            vec![
                (b"a".to_vec(), Vec::new()),
                (b"key_2".to_vec(), b"value two".to_vec())
            ]
        );
    }

    #[test]
    fn truncated_buffers_are_errors() {
        let mut buf = Vec::new();
        push(&mut buf, b"key", b"value").unwrap();
        for cut in 1..buf.len() {
            let err = parse(&buf[..cut]).unwrap_err();
            assert_eq!(err.code, Code::Invalid, "cut at {}", cut);
        }
        assert!(parse(&[]).unwrap().is_empty());
    }

    #[test]
    fn codes_round_trip() {
        for raw in 1..=10 {
            assert_eq!(Code::from_raw(raw).raw(), raw);
        }
        assert_eq!(Code::from_raw(10), Code::Conflict);
        assert_eq!(Code::from_raw(404), Code::Other(404));
    }
}
