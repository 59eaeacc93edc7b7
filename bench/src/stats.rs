//! The Docker engines' container statistics of a stack, sampled every few seconds on every
//! engine it runs on (one engine, or each node of a swarm), and their summary: CPU % and memory
//! per container, mean and max, per phase of the run, and per node.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;
use bollard::models::ContainerStatsResponse;
use bollard::query_parameters::{ListContainersOptionsBuilder, StatsOptionsBuilder};
use futures::StreamExt;
use futures::future::join_all;

/// One container in one sampling round.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Which phase of the run it was taken in (e.g. `run`, `drain`).
    pub phase: &'static str,
    /// Number of the sampling round, so that containers of one round can be summed.
    pub round: u64,
    /// The engine (fleet's name of the swarm node, or `engine`) it runs on.
    pub node: String,
    /// Container name without the `<stack>-` prefix (`vehicle-0`, `ingest`, ...); a swarm
    /// task's is its service's, with the slot for the vehicles (`vehicle-3`).
    pub container: String,
    /// CPU, % of one core.
    pub cpu: f64,
    /// Memory in use (without the page cache that can be reclaimed), MiB.
    pub mem_mib: f64,
}

/// A container's CPU use between the engine's two readings, in % of one core (as `docker
/// stats` computes it), or `None` before the engine has two readings.
pub fn cpu_percent(stats: &ContainerStatsResponse) -> Option<f64> {
    let now = stats.cpu_stats.as_ref()?;
    let before = stats.precpu_stats.as_ref()?;
    let used = now.cpu_usage.as_ref()?.total_usage? as f64
        - before.cpu_usage.as_ref()?.total_usage? as f64;
    let system = now.system_cpu_usage? as f64 - before.system_cpu_usage? as f64;
    let cpus = f64::from(now.online_cpus.filter(|n| *n > 0).unwrap_or(1));
    (system > 0.0 && used >= 0.0).then(|| used / system * cpus * 100.0)
}

/// A container's memory in use in MiB: usage less the inactive page cache (cgroup v2's
/// `inactive_file`, v1's `total_inactive_file`), as `docker stats` shows it.
pub fn mem_mib(stats: &ContainerStatsResponse) -> Option<f64> {
    let memory = stats.memory_stats.as_ref()?;
    let usage = memory.usage?;
    let cache = memory
        .stats
        .as_ref()
        .and_then(|s| {
            s.get("inactive_file")
                .or_else(|| s.get("total_inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    Some(usage.saturating_sub(cache) as f64 / (1024.0 * 1024.0))
}

/// The table name of container `name` of `stack`: `<stack>-ingest` is `ingest`; a swarm task
/// `<stack>-vehicle.3.<task id>` is `vehicle-3`, `<stack>-consumer-0.1.<task id>` is
/// `consumer-0`.
pub fn container_name(name: &str, stack: &str) -> String {
    let name = name.trim_start_matches('/');
    let name = name
        .strip_prefix(stack)
        .and_then(|n| n.strip_prefix('-'))
        .unwrap_or(name);
    let mut parts = name.split('.');
    let service = parts.next().unwrap_or(name);
    match (parts.next(), parts.next()) {
        (Some(slot), Some(_task)) if service == "vehicle" => format!("{service}-{slot}"),
        (Some(_slot), Some(_task)) => service.to_owned(),
        _ => name.to_owned(),
    }
}

/// One round on one engine: every running container of the stack, read in parallel.
async fn sample_engine(
    docker: &bollard::Docker,
    node: &str,
    stack: &str,
    phase: &'static str,
    round: u64,
) -> anyhow::Result<Vec<Sample>> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!(
            "{}={stack}",
            fleet_orchestrator::docker::LABEL_STACK
        )],
    )]);
    let containers = docker
        .list_containers(Some(
            ListContainersOptionsBuilder::default()
                .filters(&filters)
                .build(),
        ))
        .await
        .with_context(|| format!("list the containers of stack {stack} on {node}"))?;
    let reads = containers.into_iter().filter_map(|c| {
        let id = c.id?;
        let name = c.names?.into_iter().next()?;
        Some(async move {
            let stats = docker
                .stats(
                    &id,
                    Some(
                        StatsOptionsBuilder::default()
                            .stream(false)
                            .one_shot(false)
                            .build(),
                    ),
                )
                .next()
                .await?
                .ok()?;
            Some(Sample {
                phase,
                round,
                node: node.to_owned(),
                container: container_name(&name, stack),
                cpu: cpu_percent(&stats)?,
                mem_mib: mem_mib(&stats)?,
            })
        })
    });
    Ok(join_all(reads).await.into_iter().flatten().collect())
}

/// The engines the stack of `ctx` runs on, by name: each node of a swarm target, or fleet's
/// engine (`engine`).
pub async fn stack_engines(
    ctx: &fleet_orchestrator::commands::Ctx,
) -> anyhow::Result<Vec<(String, bollard::Docker)>> {
    if ctx.swarm().is_some() {
        let cluster = fleet_orchestrator::commands::on_swarm::cluster(ctx, false).await?;
        return Ok(cluster
            .nodes
            .into_iter()
            .map(|n| (n.config.name, n.docker))
            .collect());
    }
    Ok(vec![(
        "engine".to_owned(),
        ctx.docker().await?.bollard().clone(),
    )])
}

/// A background sampler: every `every`, all running containers of the stack on every engine.
pub struct Sampler {
    phase: Arc<Mutex<&'static str>>,
    samples: Arc<Mutex<Vec<Sample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Sampler {
    /// Starts sampling `stack` on `engines` (name, engine) in phase `phase`.
    pub fn start(
        engines: Vec<(String, bollard::Docker)>,
        stack: String,
        every: Duration,
        phase: &'static str,
    ) -> Self {
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
                    let rounds = engines
                        .iter()
                        .map(|(node, docker)| sample_engine(docker, node, &stack, now, round));
                    for found in join_all(rounds).await {
                        match found {
                            Ok(found) => samples.lock().expect("samples lock").extend(found),
                            Err(e) => eprintln!("sampling container statistics: {e:#}"),
                        }
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
/// "each vehicle container"), plus the sum over all vehicle containers per round; with more
/// than one engine, also the sum over each node's containers and over its vehicles per round.
pub fn table(samples: &[Sample], phase: &str) -> Vec<(String, Summary)> {
    let mine: Vec<&Sample> = samples.iter().filter(|s| s.phase == phase).collect();
    let rows = container_rows(&mine);
    let nodes: std::collections::BTreeSet<&str> = mine.iter().map(|s| s.node.as_str()).collect();
    if nodes.len() < 2 {
        return rows;
    }
    let mut per_node = Vec::new();
    for node in nodes {
        let on: Vec<&Sample> = mine.iter().copied().filter(|s| s.node == node).collect();
        let vehicles = on.iter().filter(|s| is_vehicle(s)).count();
        per_node.push((
            format!("node {node}: all stack containers (sum)"),
            sum_per_round(on.iter().copied()),
        ));
        if vehicles > 0 {
            per_node.push((
                format!("node {node}: vehicle containers (sum)"),
                sum_per_round(on.iter().copied().filter(|s| is_vehicle(s))),
            ));
        }
    }
    rows.into_iter().chain(per_node).collect()
}

fn is_vehicle(s: &Sample) -> bool {
    s.container.starts_with("vehicle-")
}

/// The summary of the per-round sums of `samples`' CPU and memory.
fn sum_per_round<'a>(samples: impl Iterator<Item = &'a Sample>) -> Summary {
    let mut per_round: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
    for s in samples {
        let e = per_round.entry(s.round).or_default();
        e.0 += s.cpu;
        e.1 += s.mem_mib;
    }
    summarize(per_round.into_values())
}

fn container_rows(mine: &[&Sample]) -> Vec<(String, Summary)> {
    let mut rows = Vec::new();
    let vehicles: Vec<&Sample> = mine.iter().copied().filter(|s| is_vehicle(s)).collect();
    if !vehicles.is_empty() {
        let containers: std::collections::BTreeSet<&str> =
            vehicles.iter().map(|s| s.container.as_str()).collect();
        rows.push((
            format!("each vehicle container ({})", containers.len()),
            summarize(vehicles.iter().map(|s| (s.cpu, s.mem_mib))),
        ));
        rows.push((
            "all vehicle containers (sum)".to_owned(),
            sum_per_round(vehicles.iter().copied()),
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

    fn stats(json: serde_json::Value) -> ContainerStatsResponse {
        serde_json::from_value(json).expect("a stats answer")
    }

    #[test]
    fn cpu_and_memory_are_computed_as_docker_stats_does() {
        // 0.5 s of CPU over 2 s of the whole 2-CPU system's time: 50 % of one core.
        let s = stats(serde_json::json!({
            "cpu_stats": {"cpu_usage": {"total_usage": 1_500_000_000u64},
                          "system_cpu_usage": 12_000_000_000u64, "online_cpus": 2},
            "precpu_stats": {"cpu_usage": {"total_usage": 1_000_000_000u64},
                             "system_cpu_usage": 10_000_000_000u64},
            "memory_stats": {"usage": 50u64 * 1024 * 1024,
                             "stats": {"inactive_file": 10u64 * 1024 * 1024}}
        }));
        assert_eq!(cpu_percent(&s), Some(50.0));
        assert_eq!(mem_mib(&s), Some(40.0));
        let v1 = stats(serde_json::json!({
            "memory_stats": {"usage": 8u64 * 1024 * 1024,
                             "stats": {"total_inactive_file": 2u64 * 1024 * 1024}}
        }));
        assert_eq!(mem_mib(&v1), Some(6.0));
        assert_eq!(cpu_percent(&v1), None, "no second reading yet");
    }

    #[test]
    fn container_names_lose_the_stack_and_the_task_id() {
        assert_eq!(container_name("/h3-ingest", "h3"), "ingest");
        assert_eq!(container_name("/h3-vehicle-2", "h3"), "vehicle-2");
        assert_eq!(container_name("/h3-vehicle.3.k2j4h5", "h3"), "vehicle-3");
        assert_eq!(container_name("/h3-consumer-0.1.x8y9z", "h3"), "consumer-0");
        assert_eq!(
            container_name("/h3-broker-storage.1.q", "h3"),
            "broker-storage"
        );
    }

    #[test]
    fn vehicle_containers_are_folded_and_summed_per_call() {
        let s = |round, container: &str, cpu, mem| Sample {
            phase: "run",
            round,
            node: "engine".into(),
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

    #[test]
    fn with_several_nodes_each_node_is_summed_per_round() {
        let s = |round, node: &str, container: &str, cpu| Sample {
            phase: "run",
            round,
            node: node.into(),
            container: container.into(),
            cpu,
            mem_mib: 10.0,
        };
        let samples = vec![
            s(0, "n1", "ingest", 30.0),
            s(0, "n2", "vehicle-1", 5.0),
            s(0, "n2", "vehicle-2", 7.0),
            s(1, "n2", "vehicle-1", 1.0),
            s(1, "n3", "vehicle-3", 4.0),
        ];
        let rows = table(&samples, "run");
        let row = |name: &str| rows.iter().find(|(n, _)| n == name).map(|(_, s)| *s);
        assert_eq!(
            row("node n1: all stack containers (sum)").unwrap().cpu_max,
            30.0
        );
        assert_eq!(row("node n1: vehicle containers (sum)"), None);
        let n2 = row("node n2: vehicle containers (sum)").unwrap();
        assert_eq!((n2.n, n2.cpu_mean, n2.cpu_max), (2, 6.5, 12.0));
        assert_eq!(
            row("node n3: vehicle containers (sum)").unwrap().cpu_max,
            4.0
        );
        assert_eq!(row("all vehicle containers (sum)").unwrap().cpu_max, 12.0);
        let one_node: Vec<Sample> = samples.into_iter().filter(|s| s.node == "n2").collect();
        assert!(
            table(&one_node, "run")
                .iter()
                .all(|(n, _)| !n.starts_with("node "))
        );
    }
}
