//! `forum`: runs CloudForum's mix on lambda objects and checks its invariants.
//! Runs on the embedded default with no setup, or against `forum-server`
//! nodes with `CRUCIAL_SERVER=host:port`.

use clap::Parser;
use forum::load::{self, Load, Mix};
use std::process::ExitCode;
use std::time::Duration;

/// The command line.
#[derive(Debug, Parser)]
#[command(
    version,
    about = "CloudForum (LambdaStore's example) on lambda objects: a load generator and an invariant check"
)]
struct Args {
    /// Concurrent clients.
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Seconds of load.
    #[arg(long, default_value_t = 3.0)]
    seconds: f64,
    /// Accounts created first.
    #[arg(long, default_value_t = 200)]
    accounts: usize,
    /// Communities created first.
    #[arg(long, default_value_t = 10)]
    communities: usize,
    /// Threads created first.
    #[arg(long, default_value_t = 200)]
    threads: usize,
    /// Key skew: 1 uniform; 4 sends a quarter of the picks to the first 0.4 % of objects.
    #[arg(long, default_value_t = 1.0)]
    skew: f64,
    /// The mix, in percent: pages,listings,comments,threads.
    #[arg(long, default_value = "60,25,12,3", value_parser = parse_mix)]
    mix: Mix,
}

fn parse_mix(s: &str) -> Result<Mix, String> {
    let parts: Vec<u32> = s
        .split(',')
        .map(|p| p.trim().parse::<u32>().map_err(|e| format!("`{p}`: {e}")))
        .collect::<Result<_, _>>()?;
    match parts[..] {
        [page, listing, comment, thread] if page + listing + comment + thread == 100 => Ok(Mix {
            page,
            listing,
            comment,
            thread,
        }),
        _ => Err("four percentages that add up to 100: pages,listings,comments,threads".into()),
    }
}

fn main() -> ExitCode {
    forum::link();
    match run(Args::parse()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: Args) -> Result<(), Box<dyn std::error::Error>> {
    let backend = forum::LambdaForum::global()?;
    let load = Load {
        clients: args.clients,
        duration: Duration::from_secs_f64(args.seconds),
        accounts: args.accounts,
        communities: args.communities,
        threads: args.threads,
        mix: args.mix,
        skew: args.skew,
        ..Load::default()
    };
    let started = std::time::Instant::now();
    let keys = load::populate(&backend, &load)?;
    println!(
        "forum: {} accounts, {} communities, {} threads created in {:.2} s",
        keys.accounts.len(),
        keys.communities.len(),
        keys.threads.len(),
        started.elapsed().as_secs_f64()
    );
    let report = load::run(&backend, &load, keys)?;
    println!(
        "{} clients, {:.1} s, mix {}/{}/{}/{} (pages/listings/comments/threads), skew {}",
        load.clients,
        report.elapsed.as_secs_f64(),
        load.mix.page,
        load.mix.listing,
        load.mix.comment,
        load.mix.thread,
        load.skew
    );
    print!("{}", report.table());
    let checked = forum::check(backend.client(), &report.keys)?;
    println!(
        "invariants hold: {} threads, {} comments, each counted by its thread and remembered by its author; {} listed by their communities",
        checked.threads, checked.comments, checked.listed
    );
    let servers = backend.client().servers().join(",");
    println!("server: {servers}");
    Ok(())
}
