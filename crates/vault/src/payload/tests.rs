//! The payload decoder against hostile input.

use proptest::prelude::*;

use super::*;

fn table(columns: &[&str], values: Vec<f64>) -> Table {
    match Table::new(columns.iter().map(|c| c.to_string()).collect(), values) {
        Ok(t) => t,
        Err(e) => panic!("test table: {e}"),
    }
}

/// A payload header: magic, version, the given names, then `n_rows`.
fn header(version: u16, n_columns: u32, names: &[&[u8]], n_rows: u64) -> Vec<u8> {
    let mut out = MAGIC.to_vec();
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&n_columns.to_le_bytes());
    for name in names {
        out.extend_from_slice(&(name.len() as u32).to_le_bytes());
        out.extend_from_slice(name);
    }
    out.extend_from_slice(&n_rows.to_le_bytes());
    out
}

fn reason(bytes: &[u8]) -> String {
    match decode(bytes) {
        Err(Malformed(reason)) => reason,
        Ok(t) => panic!("decoded a hostile payload into {t:?}"),
    }
}

fn same(a: &Table, b: &Table) -> bool {
    a.columns() == b.columns()
        && a.values().len() == b.values().len()
        && a.values()
            .iter()
            .zip(b.values())
            .all(|(x, y)| x.to_bits() == y.to_bits())
}

#[test]
fn round_trip() -> Result<(), VaultError> {
    let t = table(&["a", "β"], vec![1.5, f64::NAN, -0.0, 1e300]);
    let bytes = encode(&t)?;
    let back = decode(&bytes).map_err(|m| VaultError::InvalidTable { reason: m.0 })?;
    assert!(same(&t, &back));
    Ok(())
}

#[test]
fn zero_rows_round_trip() -> Result<(), VaultError> {
    let t = table(&["only"], vec![]);
    let back = decode(&encode(&t)?).map_err(|m| VaultError::InvalidTable { reason: m.0 })?;
    assert_eq!(back.n_rows(), 0);
    assert_eq!(back.columns(), t.columns());
    Ok(())
}

#[test]
fn huge_claimed_column_count() {
    let bytes = header(1, u32::MAX, &[], 0);
    assert!(reason(&bytes).contains("columns"));
    let bytes = header(1, 1_000_000, &[b"a"], 0);
    assert!(reason(&bytes).contains("cannot hold"));
}

#[test]
fn zero_columns() {
    assert!(reason(&header(1, 0, &[], 0)).contains("0 columns"));
}

#[test]
fn huge_claimed_row_count() {
    for n_rows in [u64::MAX, u64::MAX / 8, 1 << 40, 2] {
        let mut bytes = header(1, 1, &[b"a"], n_rows);
        bytes.extend_from_slice(&1.0f64.to_le_bytes());
        assert!(reason(&bytes).contains("rows"), "{n_rows}");
    }
}

#[test]
fn rows_times_columns_overflow() {
    let mut bytes = header(1, 2, &[b"a", b"b"], u64::MAX / 2 + 1);
    bytes.extend_from_slice(&[0u8; 16]);
    assert!(reason(&bytes).contains("rows"));
}

#[test]
fn huge_claimed_name_length() {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&u32::MAX.to_le_bytes());
    bytes.extend_from_slice(&[b'x'; 16]);
    assert!(reason(&bytes).contains("name of"));
    // A length within the bound but beyond the bytes present.
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(&1u16.to_le_bytes());
    bytes.extend_from_slice(&1u32.to_le_bytes());
    bytes.extend_from_slice(&60_000u32.to_le_bytes());
    bytes.extend_from_slice(&[b'x'; 16]);
    assert!(reason(&bytes).contains("ends inside"));
}

#[test]
fn bad_magic_version_utf8_duplicates_trailing() {
    assert!(reason(b"").contains("ends inside the magic"));
    assert!(reason(b"NOTMAGIC\x01\x00").contains("magic"));
    assert!(reason(&header(2, 1, &[b"a"], 0)).contains("version 2"));
    assert!(reason(&header(1, 1, &[b"\xff"], 0)).contains("not UTF-8"));
    assert!(reason(&header(1, 2, &[b"a", b"a"], 0)).contains("twice"));
    let mut bytes = header(1, 1, &[b"a"], 1);
    bytes.extend_from_slice(&2.0f64.to_le_bytes());
    bytes.push(0);
    assert!(reason(&bytes).contains("bytes of values follow"));
}

#[test]
fn infinite_value_rejected() {
    let mut bytes = header(1, 1, &[b"a"], 1);
    bytes.extend_from_slice(&f64::INFINITY.to_le_bytes());
    assert!(reason(&bytes).contains("infinite"));
}

#[test]
fn encode_refuses_what_decode_would_reject() {
    let long = "n".repeat(MAX_NAME_BYTES + 1);
    let t = table(&[long.as_str()], vec![1.0]);
    assert!(matches!(encode(&t), Err(VaultError::InvalidTable { .. })));
}

fn arb_table() -> impl Strategy<Value = Table> {
    (1usize..6, 0usize..8).prop_flat_map(|(cols, rows)| {
        (prop::collection::vec(any::<f64>(), cols * rows), Just(cols)).prop_map(|(values, cols)| {
            let values = values
                .into_iter()
                .map(|v| if v.is_infinite() { f64::NAN } else { v })
                .collect();
            let names = (0..cols).map(|i| format!("col{i}")).collect();
            match Table::new(names, values) {
                Ok(t) => t,
                Err(e) => panic!("strategy table: {e}"),
            }
        })
    })
}

proptest! {
    #[test]
    fn decode_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..256)) {
        let _ = decode(&bytes);
    }

    #[test]
    fn decode_never_panics_after_a_valid_prefix(
        tail in prop::collection::vec(any::<u8>(), 0..128),
        n_columns in any::<u32>(),
    ) {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&1u16.to_le_bytes());
        bytes.extend_from_slice(&n_columns.to_le_bytes());
        bytes.extend_from_slice(&tail);
        let _ = decode(&bytes);
    }

    #[test]
    fn encode_decode_round_trip(t in arb_table()) {
        let bytes = encode(&t).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let back = decode(&bytes).map_err(|m| TestCaseError::fail(m.0))?;
        prop_assert!(same(&t, &back));
    }

    #[test]
    fn mutated_payload_never_panics(
        t in arb_table(),
        at in any::<prop::sample::Index>(),
        flip in 1u8..,
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = encode(&t).map_err(|e| TestCaseError::fail(e.to_string()))?;
        // A strict prefix of a payload is never a whole payload.
        let n = cut.index(bytes.len());
        prop_assert!(decode(&bytes[..n]).is_err());
        let i = at.index(bytes.len());
        bytes[i] ^= flip;
        let _ = decode(&bytes);
    }
}
