//! `ferry mirror`, `ferry export` and `ferry import` for people: flags, a summary on stdout, a non-zero
//! exit with the reason when something failed. Each reads the configuration `ferry serve` reads.

use std::io::IsTerminal;
use std::path::PathBuf;

use anyhow::bail;
use indicatif::HumanBytes;

use crate::Config;
use crate::config::Flags;

/// The air-gap commands.
#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// Fill the store with a project's whole module graph, through the normal, verified fill path.
    ///
    /// Each INPUT is a go.mod file (or a directory holding one; its go.sum beside it is used too), whose
    /// graph the go command resolves through this Ferry (the build list's zips, and every go.mod it reads);
    /// a go.sum file (every version it lists); or MODULE@VERSION (that version; a query such as latest is
    /// resolved; with --all, its whole graph too). Versions already stored are skipped, so a run that was
    /// interrupted resumes. Reads the configuration `ferry serve` reads, and serves on a loopback port of
    /// its own while it runs.
    Mirror {
        #[command(flatten)]
        args: MirrorArgs,
        #[command(flatten)]
        flags: Flags,
    },
    /// Write the store's versions, with the checksum database's records, the tiles that prove them and a
    /// signed tree note, into one bundle (a gzipped tar) for `ferry import` on another network.
    Export {
        #[command(flatten)]
        args: ExportArgs,
        #[command(flatten)]
        flags: Flags,
    },
    /// Check a bundle of `ferry export` against its proofs and the database's public key, then store it.
    ///
    /// Nothing is stored unless every version passes: each zip's and go.mod's hash equal the database's
    /// record, and each record is proven in the tree of a note signed by the database's key (sum.golang.org's
    /// is built in; others come from GOSUMDB in Ferry's configuration or --sumdb-key).
    Import {
        #[command(flatten)]
        args: ImportArgs,
        #[command(flatten)]
        flags: Flags,
    },
}

#[derive(Debug, clap::Args)]
pub struct MirrorArgs {
    /// go.mod or go.sum files, directories with a go.mod, MODULE@VERSION
    #[arg(value_name = "INPUT", required_unless_present = "toolchain")]
    pub inputs: Vec<String>,
    /// Mirror each MODULE@VERSION with its whole module graph (its `all`)
    #[arg(long)]
    pub all: bool,
    /// Add the toolchain of this Go version (e.g. go1.22.3) for each --platform; repeatable
    #[arg(long, value_name = "GOVERSION")]
    pub toolchain: Vec<String>,
    /// A GOOS/GOARCH whose toolchains to add (e.g. linux/amd64); repeatable
    #[arg(long, value_name = "GOOS/GOARCH", default_value = "linux/amd64")]
    pub platform: Vec<String>,
    /// Versions filled at once
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub jobs: usize,
}

#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// The bundle to write
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: PathBuf,
    /// Only these versions [default: every version in the store]
    #[arg(value_name = "MODULE@VERSION")]
    pub versions: Vec<String>,
    /// Only versions first stored at or after this time (RFC 3339, e.g. 2026-01-02T00:00:00Z)
    #[arg(long, value_name = "TIME", conflicts_with = "versions", value_parser = humantime::parse_rfc3339_weak)]
    pub since: Option<std::time::SystemTime>,
    /// The checksum database that proves them [default: GOSUMDB's, else sum.golang.org]
    #[arg(long, value_name = "NAME")]
    pub sumdb: Option<String>,
    /// A checksum database's key, as GOSUMDB is written (NAME+HASH+KEY); repeatable
    #[arg(long, value_name = "KEY")]
    pub sumdb_key: Vec<String>,
    /// Fail on versions whose records are not in the store instead of asking the database for them
    #[arg(long)]
    pub offline: bool,
}

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The bundle to import
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// A checksum database's key, as GOSUMDB is written (NAME+HASH+KEY); repeatable
    #[arg(long, value_name = "KEY")]
    pub sumdb_key: Vec<String>,
    /// Where the bundle's zips wait while they are checked [default: the system's temporary directory]
    #[arg(long, value_name = "DIR")]
    pub staging: Option<PathBuf>,
}

impl Command {
    /// The configuration flags given to the command.
    pub fn flags(&self) -> &Flags {
        match self {
            Command::Mirror { flags, .. }
            | Command::Export { flags, .. }
            | Command::Import { flags, .. } => flags,
        }
    }
}

/// Runs the command with `config` loaded from its flags; `temp_dir` is the system's temporary directory.
pub async fn run(command: Command, config: &Config, temp_dir: PathBuf) -> anyhow::Result<()> {
    match command {
        Command::Mirror { args, .. } => mirror(args, config).await,
        Command::Export { args, .. } => export(args, config).await,
        Command::Import { args, .. } => import(args, config, temp_dir).await,
    }
}

async fn mirror(args: MirrorArgs, config: &Config) -> anyhow::Result<()> {
    let request = super::MirrorRequest {
        inputs: args.inputs,
        all: args.all,
        platforms: if args.toolchain.is_empty() {
            Vec::new()
        } else {
            args.platform
        },
        toolchains: args.toolchain,
        jobs: args.jobs,
        progress: std::io::stderr().is_terminal(),
    };
    let done = super::mirror(config, &request).await?;
    println!(
        "mirrored {} versions into {}: {} filled ({}), {} stored already, {} failed, in {:.1?}",
        done.versions,
        config.storage,
        done.filled,
        HumanBytes(done.bytes),
        done.already,
        done.failed.len(),
        done.elapsed
    );
    for failed in &done.failed {
        println!("failed {failed}");
    }
    if !done.failed.is_empty() {
        bail!(
            "{} versions were not mirrored (listed above); run the mirror again to retry them",
            done.failed.len()
        );
    }
    Ok(())
}

async fn export(args: ExportArgs, config: &Config) -> anyhow::Result<()> {
    let request = super::ExportRequest {
        output: args.output,
        versions: args.versions,
        since: args.since,
        database: args.sumdb,
        keys: args.sumdb_key,
        fetch_missing: !args.offline,
    };
    let done = super::export(config, &request).await?;
    println!(
        "exported {} versions ({} with zips, {}) proven in {} by {} tiles to {}",
        done.versions,
        done.zips,
        HumanBytes(done.bytes),
        done.database,
        done.tiles,
        request.output.display()
    );
    Ok(())
}

async fn import(args: ImportArgs, config: &Config, temp_dir: PathBuf) -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let request = super::ImportRequest {
        file: args.file,
        staging: args.staging.unwrap_or(temp_dir),
        keys: args.sumdb_key,
    };
    let done = super::import(config, &request).await?;
    let seconds = started.elapsed().as_secs_f64();
    println!(
        "imported {} versions verified in {} into {}: {} written, {} stored already; {} in {seconds:.1} s ({}/s)",
        done.versions,
        done.database,
        config.storage,
        done.written,
        done.already,
        HumanBytes(done.bytes),
        HumanBytes((done.bytes as f64 / seconds.max(0.001)) as u64)
    );
    for blocked in &done.blocked {
        println!("blocked in this store, not imported: {blocked}");
    }
    Ok(())
}
