//! `docker stats` of a stack's containers, sampled every few seconds, and their summary: CPU %
//! and memory per container, mean and max, per phase of the run.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context as _, bail};
use tokio::process::Command;

/// One container in one `docker stats --no-stream` answer.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Which phase of the run it was taken in (e.g. `run`, `drain`).
    pub phase: &'static str,
    /// Number of the `docker stats` call, so that containers of one call can be summed.
    pub round: u64,
    /// Container name without the `<stack>-` prefix (`vehicle-0`, `ingest`, ...).
    pub container: String,
    /// CPU, % of one core.
    pub cpu: f64,
    /// Memory in use, MiB.
    pub mem_mib: f64,
}

/// `12.5%` as 12.5.
pub fn parse_cpu(text: &str) -> Option<f64> {
    text.trim().strip_suffix('%')?.trim().parse().ok()
}

/// The used part of `40.5MiB / 256MiB` in MiB (binary and decimal units, bytes).
pub fn parse_mem_mib(text: &str) -> Option<f64> {
    let used = text.split('/').next()?.trim();
    let split = used
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(used.len());
    let (number, unit) = used.split_at(split);
    let value: f64 = number.trim().parse().ok()?;
    let bytes = match unit.trim() {
        "B" | "" => 1.0,
        "KiB" => 1024.0,
        "MiB" => 1024.0 * 1024.0,
        "GiB" => 1024.0 * 1024.0 * 1024.0,
        "kB" | "KB" => 1e3,
        "MB" => 1e6,
        "GB" => 1e9,
        _ => return None,
    };
    Some(value * bytes / (1024.0 * 1024.0))
}

/// The samples of one line of `docker stats --format '{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}'`.
fn parse_line(line: &str, stack: &str, phase: &'static str, round: u64) -> Option<Sample> {
    let mut fields = line.split('\t');
    let name = fields.next()?.trim();
    let cpu = parse_cpu(fields.next()?)?;
    let mem_mib = parse_mem_mib(fields.next()?)?;
    let container = name
        .strip_prefix(stack)
        .and_then(|n| n.strip_prefix('-'))
        .unwrap_or(name)
        .to_owned();
    Some(Sample {
        phase,
        round,
        container,
        cpu,
        mem_mib,
    })
}

/// Runs `docker stats --no-stream` once over the stack's running containers.
async fn sample_once(stack: &str, phase: &'static str, round: u64) -> anyhow::Result<Vec<Sample>> {
    let names = Command::new("docker")
        .args(["ps", "--format", "{{.Names}}", "--filter"])
        .arg(format!("label=io.fleet.stack={stack}"))
        .output()
        .await
        .context("run docker ps")?;
    let names: Vec<String> = String::from_utf8_lossy(&names.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let out = Command::new("docker")
        .args([
            "stats",
            "--no-stream",
            "--format",
            "{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}",
        ])
        .args(&names)
        .output()
        .await
        .context("run docker stats")?;
    if !out.status.success() {
        bail!(
            "docker stats: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| parse_line(l, stack, phase, round))
        .collect())
}

/// A background sampler: every `every`, all running containers of the stack.
pub struct Sampler {
    phase: Arc<Mutex<&'static str>>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `stack` in phase `phase`.
    pub fn start(stack: String, every: Duration, phase: &'static str) -> Self {
        let phase = Arc::new(Mutex::new(phase));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn({
            let (phase, samples) = (phase.clone(), samples.clone());
            async move {
                let mut ticker = tokio::time::interval(every);
                ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
                for round in 0.. {
                    ticker.tick().await;
                    let now = *phase.lock().expect("phase lock");
                    match sample_once(&stack, now, round).await {
                        Ok(found) => samples.lock().expect("samples lock").extend(found),
                        Err(e) => eprintln!("scale-bench: sampling docker stats: {e:#}"),
                    }
                }
            }
        });
        Self {
            phase,
            samples,
            task,
        }
    }

    /// Samples from now on belong to `phase`.
    pub fn enter(&self, phase: &'static str) {
        *self.phase.lock().expect("phase lock") = phase;
    }

    /// Stops sampling; every sample taken.
    pub fn stop(self) -> Vec<Sample> {
        self.task.abort();
        std::mem::take(&mut *self.samples.lock().expect("samples lock"))
    }
}

/// Mean and max of CPU and memory over a set of samples.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Summary {
    /// Samples.
    pub n: usize,
    /// Mean CPU, % of one core.
    pub cpu_mean: f64,
    /// Highest CPU.
    pub cpu_max: f64,
    /// Highest memory, MiB.
    pub mem_max: f64,
}

fn summarize(points: impl IntoIterator<Item = (f64, f64)>) -> Summary {
    let mut s = Summary::default();
    let mut sum = 0.0;
    for (cpu, mem) in points {
        s.n += 1;
        sum += cpu;
        s.cpu_max = s.cpu_max.max(cpu);
        s.mem_max = s.mem_max.max(mem);
    }
    if s.n > 0 {
        s.cpu_mean = sum / s.n as f64;
    }
    s
}

/// Rows of the summary table of `phase`: one per container kind (`vehicle-*` folded into
/// "each vehicle container"), plus the sum over all vehicle containers per `docker stats` call.
pub fn table(samples: &[Sample], phase: &str) -> Vec<(String, Summary)> {
    let mine: Vec<&Sample> = samples.iter().filter(|s| s.phase == phase).collect();
    let is_vehicle = |s: &&Sample| s.container.starts_with("vehicle-");
    let mut rows = Vec::new();
    let vehicles: Vec<&Sample> = mine.iter().copied().filter(is_vehicle).collect();
    if !vehicles.is_empty() {
        let containers: std::collections::BTreeSet<&str> =
            vehicles.iter().map(|s| s.container.as_str()).collect();
        rows.push((
            format!("each vehicle container ({})", containers.len()),
            summarize(vehicles.iter().map(|s| (s.cpu, s.mem_mib))),
        ));
        let mut per_round: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for s in &vehicles {
            let e = per_round.entry(s.round).or_default();
            e.0 += s.cpu;
            e.1 += s.mem_mib;
        }
        rows.push((
            "all vehicle containers (sum)".to_owned(),
            summarize(per_round.into_values()),
        ));
    }
    let mut others: BTreeMap<&str, Vec<(f64, f64)>> = BTreeMap::new();
    for s in mine.iter().filter(|s| !is_vehicle(s)) {
        others
            .entry(s.container.as_str())
            .or_default()
            .push((s.cpu, s.mem_mib));
    }
    rows.extend(
        others
            .into_iter()
            .map(|(name, points)| (name.to_owned(), summarize(points))),
    );
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_stats_fields_parse() {
        assert_eq!(parse_cpu("12.34%"), Some(12.34));
        assert_eq!(parse_cpu("0.00%"), Some(0.0));
        assert_eq!(parse_cpu("--"), None);
        assert_eq!(parse_mem_mib("40.5MiB / 256MiB"), Some(40.5));
        assert_eq!(parse_mem_mib("1.5GiB / 4GiB"), Some(1536.0));
        assert_eq!(parse_mem_mib("512KiB / 1GiB"), Some(0.5));
        assert_eq!(parse_mem_mib("0B / 0B"), Some(0.0));
        assert_eq!(parse_mem_mib("2MB / 1GB"), Some(2e6 / 1048576.0));
        assert_eq!(parse_mem_mib("x / y"), None);
        let s = parse_line("h3-vehicle-2\t3.10%\t44MiB / 256MiB", "h3", "run", 7).unwrap();
        assert_eq!(
            s,
            Sample {
                phase: "run",
                round: 7,
                container: "vehicle-2".into(),
                cpu: 3.1,
                mem_mib: 44.0
            }
        );
    }

    #[test]
    fn vehicle_containers_are_folded_and_summed_per_call() {
        let s = |round, container: &str, cpu, mem| Sample {
            phase: "run",
            round,
            container: container.into(),
            cpu,
            mem_mib: mem,
        };
        let samples = vec![
            s(0, "vehicle-0", 2.0, 40.0),
            s(0, "vehicle-1", 4.0, 50.0),
            s(1, "vehicle-0", 6.0, 45.0),
            s(1, "vehicle-1", 8.0, 60.0),
            s(0, "ingest", 10.0, 30.0),
            s(1, "ingest", 30.0, 35.0),
            Sample {
                phase: "drain",
                ..s(2, "ingest", 99.0, 99.0)
            },
        ];
        let rows = table(&samples, "run");
        assert_eq!(rows[0].0, "each vehicle container (2)");
        assert_eq!((rows[0].1.cpu_mean, rows[0].1.cpu_max), (5.0, 8.0));
        assert_eq!(rows[1].0, "all vehicle containers (sum)");
        assert_eq!(
            rows[1].1,
            Summary {
                n: 2,
                cpu_mean: 10.0,
                cpu_max: 14.0,
                mem_max: 105.0
            }
        );
        assert_eq!(rows[2].0, "ingest");
        assert_eq!((rows[2].1.cpu_mean, rows[2].1.mem_max), (20.0, 35.0));
        assert_eq!(rows.len(), 3);
        assert_eq!(table(&samples, "drain")[0].1.cpu_max, 99.0);
    }
}
