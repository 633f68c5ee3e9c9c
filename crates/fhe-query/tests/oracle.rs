//! The seller is not a decryption oracle (audit C-1). Whoever claims an order holds the server
//! key and every ciphertext of the dataset, so it can submit as its "result" any well-shaped
//! ciphertexts: a victim row's blocks copied from a chunk over a trivial count, or blocks
//! crafted to decrypt to the secret key. Each attack is performed here on real ciphertexts; the
//! seller's check ([`open_result`]) releases nothing of it, and blocks that are not ciphertexts
//! of the dataset's parameters are refused before anything is decrypted.

use std::sync::OnceLock;

use datacloud_fhe_query::{
    CheckError, EncryptedDataset, EncryptedResult, EvaluationKey, KeyError, Passphrase, SellerKey,
    decrypt, encrypt, evaluate, load_rows, open_result, save_rows,
};
use datacloud_query::{LayoutOptions, Plan, PlanKind, Table, plan, reference, sql, synth};
use tfhe::integer::{IntegerCiphertext as _, RadixCiphertext};

struct Fixture {
    key: SellerKey,
    eval: EvaluationKey,
    table: Table,
    dataset: EncryptedDataset,
    /// `SELECT COUNT(*), AVG(amount) FROM transactions`, scanned row by row.
    plan: Plan,
    honest: EncryptedResult,
}

fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let key = SellerKey::generate();
        let eval = EvaluationKey::from_bytes(&key.server_key_bytes().unwrap()).unwrap();
        let table = synth::generate(24, 17);
        let options = LayoutOptions {
            chunk_rows: 16,
            cube: false,
            derived: false,
            totals: false,
        };
        let dataset = encrypt(&table, &key, &options, &|_| {});
        let query = sql::parse(
            "SELECT COUNT(*), AVG(amount) FROM transactions",
            &table.schema,
        )
        .unwrap();
        let plan = plan(&query, &dataset.header).unwrap();
        assert!(matches!(
            plan.kind,
            PlanKind::IndicatorScan | PlanKind::RowScan
        ));
        let honest = evaluate(&plan, &dataset, &eval, &|_| {}).unwrap();
        Fixture {
            key,
            eval,
            table,
            dataset,
            plan,
            honest,
        }
    })
}

/// What the seller does with a worker's bytes: read them (conformance and shape), then open
/// them against its own rows.
fn seller_opens(bytes: &[u8]) -> Result<datacloud_query::Aggregates, String> {
    let f = fixture();
    let result = EncryptedResult::from_bytes(bytes, &f.plan).map_err(|e| e.to_string())?;
    open_result(&result, &f.plan, &f.dataset.header, &f.key, &f.table).map_err(|e| e.to_string())
}

fn amount_column(table: &Table) -> usize {
    table
        .schema
        .columns
        .iter()
        .position(|c| c.name == "amount")
        .unwrap()
}

#[test]
fn an_honest_result_is_opened_and_is_the_plaintext_computation() {
    let f = fixture();
    let opened = seller_opens(&f.honest.to_bytes().unwrap()).unwrap();
    assert_eq!(
        opened,
        reference(&f.table, &f.plan.bound, &f.dataset.header)
    );
    assert_eq!(opened.groups[0].0, 24);
}

#[test]
fn a_row_copied_into_a_sum_over_a_trivial_count_is_not_released() {
    let f = fixture();
    let sk = f.eval.integer_key();
    let b = &f.plan.bound;
    // The victim: row 5's amount, copied from the published chunk, padded with trivial zero
    // blocks to the sum's width; the count, a trivial encryption of 1000.
    let amount = amount_column(&f.table);
    let victim = f.dataset.chunks[0].values[amount][5].decompress();
    let padding = b.sum_blocks as usize - victim.blocks().len();
    let sum = sk.extend_radix_with_trivial_zero_blocks_msb(&victim, padding);
    // The largest count the plan's width holds: more than the dataset's rows.
    let claimed = (1u64 << (2 * b.count_blocks)) - 1;
    let count: RadixCiphertext = sk.create_trivial_radix(claimed, b.count_blocks as usize);
    let mut forged = f.honest.clone();
    forged.groups[0].sum = Some(sum);
    forged.groups[0].count = count;
    // Decrypted and released as it stands, AVG·claimed would be the victim's amount.
    let leaked = decrypt(&forged, &f.key);
    let datacloud_query::schema::ColumnKind::Integer { min, .. } =
        f.table.schema.columns[amount].kind
    else {
        unreachable!("amount is an integer column")
    };
    assert_eq!(leaked.groups[0].0, u128::from(claimed));
    assert_eq!(
        leaked.groups[0].1,
        Some(u128::from(f.table.columns[amount][5].abs_diff(min))),
        "the attack works against a seller that does not check"
    );
    // The seller's check releases nothing of it.
    let refused = seller_opens(&forged.to_bytes().unwrap()).unwrap_err();
    assert!(
        refused.contains("exceeds the dataset's 24 rows"),
        "{refused}"
    );
    // With a plausible count (the true one), the copied sum is still refused.
    let mut forged = f.honest.clone();
    forged.groups[0].sum = Some(sk.extend_radix_with_trivial_zero_blocks_msb(&victim, padding));
    let refused = seller_opens(&forged.to_bytes().unwrap()).unwrap_err();
    assert!(
        refused.contains("group 0's sum differs from the seller's own computation"),
        "{refused}"
    );
}

#[test]
fn key_probing_blocks_are_not_released() {
    let f = fixture();
    // Block i: mask Δ·e_i, body 0. It decrypts to −s_i·Δ: a bit of the LWE secret per block.
    // The metadata is a computation's (conformant), so only the seller's comparison stops it.
    let delta = 1u64 << 59; // 2^63 / (message · carry): the padding bit kept
    let mut forged = f.honest.clone();
    let sum = forged.groups[0].sum.as_mut().unwrap();
    for (i, block) in sum.blocks_mut().iter_mut().enumerate() {
        let data: &mut [u64] = block.ct.as_mut();
        data.fill(0);
        data[i] = delta;
    }
    let bytes = forged.to_bytes().unwrap();
    let read = EncryptedResult::from_bytes(&bytes, &f.plan);
    assert!(
        read.is_ok(),
        "well-formed blocks pass the conformance check"
    );
    let refused = seller_opens(&bytes).unwrap_err();
    assert!(refused.contains("not the order's computation"), "{refused}");
}

#[test]
fn blocks_of_another_message_space_or_dimension_are_refused_before_decryption() {
    let f = fixture();
    // A block claiming a 2^16 message space: decryption would return phase bits, noise included.
    let mut wide = f.honest.clone();
    wide.groups[0].count.blocks_mut()[0].message_modulus = tfhe::shortint::MessageModulus(1 << 16);
    // A block one LWE dimension short.
    let mut short = f.honest.clone();
    let block = &mut short.groups[0].count.blocks_mut()[0];
    let mut data: Vec<u64> = block.ct.as_ref().to_vec();
    data.remove(0);
    block.ct = tfhe::core_crypto::prelude::LweCiphertext::from_container(
        data,
        block.ct.ciphertext_modulus(),
    );
    // A degree beyond the block's message and carry space.
    let mut degree = f.honest.clone();
    degree.groups[0].count.blocks_mut()[0].degree = tfhe::shortint::ciphertext::Degree::new(64);
    for (name, forged) in [("wide", wide), ("short", short), ("degree", degree)] {
        let err = EncryptedResult::from_bytes(&forged.to_bytes().unwrap(), &f.plan)
            .err()
            .unwrap_or_else(|| panic!("{name}: accepted"));
        assert!(
            err.to_string()
                .contains("not a ciphertext of the dataset's parameters"),
            "{name}: {err}"
        );
    }
}

#[test]
fn the_sellers_rows_are_a_private_sealed_file_of_its_dataset_only() {
    let f = fixture();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bank.rows");
    let passphrase = Passphrase::new("correct horse");
    save_rows(&f.table, &path, Some(&passphrase)).unwrap();
    let header = &f.dataset.header;
    assert_eq!(
        load_rows(&path, Some(&passphrase), header).unwrap(),
        f.table
    );
    // Sealed: no plaintext cell on disk, nothing without the passphrase or with another one.
    assert!(matches!(
        load_rows(&path, None, header),
        Err(CheckError::Key(KeyError::PassphraseRequired(_)))
    ));
    assert!(load_rows(&path, Some(&Passphrase::new("wrong")), header).is_err());
    // Never overwritten; another dataset's rows are refused against this header.
    assert!(save_rows(&f.table, &path, None).is_err());
    let other = dir.path().join("other.rows");
    save_rows(&synth::generate(30, 1), &other, None).unwrap();
    let err = load_rows(&other, None, header).unwrap_err();
    assert!(matches!(err, CheckError::Rows(_)), "{err}");
    // Readable by others: refused.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&other, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert!(matches!(
            load_rows(&other, None, header),
            Err(CheckError::Key(KeyError::Permissions(..)))
        ));
    }
    // A damaged table (a category index outside its values) is refused, not indexed.
    let mut bad = f.table.clone();
    let category = bad
        .schema
        .columns
        .iter()
        .position(|c| matches!(c.kind, datacloud_query::schema::ColumnKind::Category { .. }))
        .unwrap();
    bad.columns[category][0] = 99;
    let damaged = dir.path().join("damaged.rows");
    save_rows(&bad, &damaged, None).unwrap();
    assert!(matches!(
        load_rows(&damaged, None, header),
        Err(CheckError::Rows(_))
    ));
}
