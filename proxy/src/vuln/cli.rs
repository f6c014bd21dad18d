//! `ferry vuln import FILE.zip` and `ferry vuln sync`: the vulnerability database's copy filled from the
//! command line, with the configuration `ferry serve` reads (the same store; a running Ferry picks the new
//! copy up at its next poll).

use std::path::PathBuf;

use anyhow::{Context, bail};

use super::{Synced, VulnDb};
use crate::Config;
use crate::config::Flags;

/// The vulnerability database commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Publish a vulnerability database bulk copy (vulndb.zip) as the copy served under /vuln/.
    ///
    /// The zip must hold a complete database: `index/db.json`, `index/modules.json`, `index/vulns.json` and
    /// `ID/<id>.json` for every advisory they list; otherwise nothing is stored and what is missing is named.
    Import {
        /// The vulndb.zip to import
        #[arg(value_name = "FILE")]
        file: PathBuf,
        #[command(flatten)]
        flags: Flags,
    },
    /// Sync the copy from vuln.url once (reads db.json; when its modified changed, the indexes and the
    /// entries that changed).
    Sync {
        #[command(flatten)]
        flags: Flags,
    },
}

impl Command {
    /// The configuration flags given to the command.
    pub fn flags(&self) -> &Flags {
        match self {
            Command::Import { flags, .. } | Command::Sync { flags } => flags,
        }
    }
}

/// Runs the command with `config` loaded from its flags.
pub async fn run(command: Command, config: &Config) -> anyhow::Result<()> {
    if !config.vuln.enabled {
        bail!("the vulnerability database is off (vuln.enabled = false); nothing was done");
    }
    let store = config
        .storage
        .open()
        .with_context(|| format!("opening the storage {}", config.storage))?;
    let client = ferry_fetcher::https_client(ferry_fetcher::CONNECT_TIMEOUT);
    let db = VulnDb::new(config.vuln.clone(), Some(store.records()), Some(client));
    match command {
        Command::Import { file, .. } => {
            let path = file.clone();
            let database = tokio::task::spawn_blocking(move || super::read_zip(&path))
                .await
                .context("reading the zip")??;
            let (modified, entries) = (database.modified.clone(), database.entries.len());
            db.publish(database)
                .await
                .map_err(|e| anyhow::anyhow!(e.detail()))?;
            println!(
                "imported the vulnerability database of {modified} ({entries} advisories) from {} into {}",
                file.display(),
                config.storage
            );
        }
        Command::Sync { .. } => match db.sync().await {
            Ok(Synced::Unchanged { modified }) => {
                println!("the vulnerability database is current (modified {modified})");
            }
            Ok(Synced::Published {
                modified,
                entries,
                read,
            }) => println!(
                "synced the vulnerability database of {modified}: {entries} advisories, {read} read now, into {}",
                config.storage
            ),
            Err(e) => bail!("the sync failed: {}; the last copy is kept", e.detail()),
        },
    }
    Ok(())
}
