//! `classchat migrate-db --from URL --to URL`: copies a deployment's history (the tables in
//! [`crate::store::copy::TABLES`]) to another database, typically a single machine's SQLite
//! file to the PostgreSQL database replicas will share. Run it with the server stopped.
//!
//! Idempotent: rows keep their keys and a row already there is skipped, so an interrupted
//! run is finished by running it again. Progress goes to stderr, one line per table.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::time::Instant;

use anyhow::{Context, anyhow, bail};

use crate::basics::redact_url;
use crate::store::Store;
use crate::store::copy::{ColumnInfo, NOT_COPIED, Row, TABLES, Table};

/// Rows read per page (keyset by key, so a year's log never sits in memory at once).
const PAGE_ROWS: i64 = 2_000;

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows read from the source.
    pub read: u64,
    /// Rows written (the others were there already).
    pub inserted: u64,
}

/// Copies every known table from `from` to `to` (created and migrated as needed),
/// writing progress to stderr.
pub async fn run(from: &str, to: &str) -> anyhow::Result<Summary> {
    run_paged(from, to, PAGE_ROWS).await
}

/// [`run`] reading `page_rows` rows at a time (tests use tiny pages to cross many).
pub async fn run_paged(from: &str, to: &str, page_rows: i64) -> anyhow::Result<Summary> {
    let started = Instant::now();
    let (shown_from, shown_to) = (redact_url(from), redact_url(to));
    if from.trim() == to.trim() {
        bail!("--from and --to are the same database ({shown_from})");
    }
    let src = Store::connect_existing(from)
        .await
        .map_err(|e| anyhow!("--from: {e:#}"))?;
    let dst = Store::connect(to)
        .await
        .map_err(|e| anyhow!("--to: {e:#}"))?;
    check_tables(&src, &shown_from).await?;
    check_tables(&dst, &shown_to).await?;
    let live = std::io::stderr().is_terminal();
    let mut summary = Summary::default();
    for table in TABLES {
        let (read, inserted) =
            copy_table(&src, &dst, table, page_rows, &shown_from, &shown_to, live).await?;
        summary.read += read;
        summary.inserted += inserted;
    }
    src.close().await;
    dst.close().await;
    eprintln!(
        "migrate-db: {} rows copied, {} already there, from {shown_from} to {shown_to} in {:.1}s",
        summary.inserted,
        summary.read - summary.inserted,
        started.elapsed().as_secs_f64()
    );
    Ok(summary)
}

async fn copy_table(
    src: &Store,
    dst: &Store,
    table: &Table,
    page_rows: i64,
    shown_from: &str,
    shown_to: &str,
    live: bool,
) -> anyhow::Result<(u64, u64)> {
    let name = table.name;
    let total = src
        .count_rows(table)
        .await
        .with_context(|| format!("counting {name} in {shown_from}"))?;
    let (mut read, mut inserted) = (0u64, 0u64);
    let mut after: Option<Row> = None;
    loop {
        let page = src
            .read_page(table, after.as_ref(), page_rows)
            .await
            .with_context(|| format!("reading {name} from {shown_from}"))?;
        if page.is_empty() {
            break;
        }
        inserted += dst
            .write_rows(table, &page)
            .await
            .with_context(|| format!("writing {name} to {shown_to}"))?;
        read += page.len() as u64;
        if live {
            eprint!("\r  {name}: {read}/{total} rows");
        }
        after = page.into_iter().last();
    }
    dst.finish_copy(table)
        .await
        .with_context(|| format!("moving {name}'s id sequence in {shown_to}"))?;
    eprintln!(
        "{}  {name}: {read}/{total} rows ({inserted} new)",
        if live { "\r" } else { "" }
    );
    Ok((read, inserted))
}

/// Refuses a database with a table or column the copier does not know: copying would
/// leave that history behind without a word.
async fn check_tables(store: &Store, shown: &str) -> anyhow::Result<()> {
    let columns = store
        .table_columns()
        .await
        .with_context(|| format!("listing the tables of {shown}"))?;
    let mut found: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for ColumnInfo {
        table_name,
        column_name,
        ..
    } in columns
    {
        found.entry(table_name).or_default().push(column_name);
    }
    for (table, mut cols) in found {
        if NOT_COPIED.contains(&table.as_str()) {
            continue;
        }
        let Some(known) = TABLES.iter().find(|t| t.name == table) else {
            bail!(
                "{shown} has a table {table:?} that this migrate-db does not copy (it copies {})",
                TABLES.iter().map(|t| t.name).collect::<Vec<_>>().join(", ")
            );
        };
        let mut want: Vec<String> = known.columns.iter().map(|(c, _)| c.to_string()).collect();
        cols.sort();
        want.sort();
        if cols != want {
            bail!(
                "{shown}: table {table:?} has the columns {cols:?}, this migrate-db copies {want:?}"
            );
        }
    }
    Ok(())
}
