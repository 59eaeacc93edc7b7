//! `launch-bench`: how long `fleet launch-infra` takes from built images to every service
//! ready, against `docker-compose up -d` of the equivalent compose file (same images, same
//! health checks in spirit, see `compose`) until every service is healthy, in the same run.
//! Each round launches fresh stacks (own names and ports), times them and tears them down;
//! the median of each and their ratio are printed as Markdown.

mod compose;
mod runs;

use std::path::PathBuf;

use anyhow::Context as _;
use clap::Parser;

/// The command line.
#[derive(Debug, Parser)]
#[command(name = "launch-bench", version, about)]
struct Cli {
    /// fleet's config file (its images and services are benchmarked).
    #[arg(long, default_value = "config.master.toml")]
    config: PathBuf,
    /// Rounds (each: one fleet launch, one compose launch).
    #[arg(long, default_value_t = 3)]
    runs: u32,
    /// The fleet binary (default: `fleet` next to this one).
    #[arg(long)]
    fleet: Option<PathBuf>,
    /// The Compose tool.
    #[arg(long, default_value = "docker-compose")]
    compose: String,
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    fleet_common::logging::init(0);
    let fleet = match cli.fleet {
        Some(f) => f,
        None => std::env::current_exe()?
            .parent()
            .context("the bench binary's folder")?
            .join("fleet"),
    };
    let bench = runs::Bench::new(&cli.config, fleet, cli.compose).await?;
    let mut fleet_secs = Vec::new();
    let mut fleet_net = Vec::new();
    let mut compose_secs = Vec::new();
    for round in 0..cli.runs {
        let f = bench.fleet_round(round).await?;
        eprintln!(
            "round {round}: fleet launch-infra {:.2} s (cargo's up-to-date check {:.2} s)",
            f.total, f.cargo
        );
        let c = bench.compose_round(round).await?;
        eprintln!("round {round}: docker-compose up until healthy {c:.2} s");
        fleet_secs.push(f.total);
        fleet_net.push(f.total - f.cargo);
        compose_secs.push(c);
    }
    let row = |v: &[f64]| {
        v.iter()
            .map(|s| format!("{s:.2}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (f, c) = (median(fleet_secs.clone()), median(compose_secs.clone()));
    let n = median(fleet_net.clone());
    println!("| tool | runs (s) | median (s) |");
    println!("|---|---|---|");
    println!("| `fleet launch-infra` | {} | {f:.2} |", row(&fleet_secs));
    println!(
        "| `fleet launch-infra` minus cargo's up-to-date check | {} | {n:.2} |",
        row(&fleet_net)
    );
    println!(
        "| `{} up -d` + health polling | {} | {c:.2} |",
        bench.compose_tool(),
        row(&compose_secs)
    );
    println!(
        "\nratio fleet / compose (medians): {:.2}; without cargo's check: {:.2}",
        f / c,
        n / c
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::median;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
