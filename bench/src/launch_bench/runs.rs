//! One round of each side: a fresh stack name and free host ports, the launch timed, then a
//! teardown that leaves nothing behind.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use fleet_common::config::Config;
use fleet_orchestrator::commands::Ctx;
use fleet_orchestrator::images::ImageSet;
use fleet_orchestrator::output::ProgressMode;
use fleet_orchestrator::plan;
use tokio::process::Command;

/// Longest a compose stack may take to become healthy.
const COMPOSE_TIMEOUT: Duration = Duration::from_secs(300);

/// What every round shares: the config text, the built images, the tools.
pub struct Bench {
    config_file: PathBuf,
    config_text: String,
    images: ImageSet,
    fleet: PathBuf,
    compose: String,
    work: PathBuf,
}

fn free_port() -> anyhow::Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

/// `FLEET_*` overrides giving a stack its own name, state folder and host ports.
fn stack_env(name: &str, state: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut env = vec![
        ("FLEET_STACK__NAME".to_owned(), name.to_owned()),
        (
            "FLEET_STACK__STATE_DIR".to_owned(),
            state.display().to_string(),
        ),
    ];
    for key in ["ZOOKEEPER", "BROKER", "POSTGRES", "INGEST"] {
        env.push((format!("FLEET_{key}__HOST_PORT"), free_port()?.to_string()));
    }
    Ok(env)
}

/// Runs `command`; its stdout and stderr, or an error with both.
async fn run_full(command: &mut Command, what: &str) -> anyhow::Result<(String, String)> {
    let out = command
        .output()
        .await
        .with_context(|| format!("run {what}"))?;
    if !out.status.success() {
        bail!(
            "{what} failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok((
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    ))
}

/// Runs `command`; its stdout, or an error with its output.
async fn run(command: &mut Command, what: &str) -> anyhow::Result<String> {
    Ok(run_full(command, what).await?.0)
}

/// Seconds of the `cargo build` steps in fleet's `--progress json` lines: the up-to-date check
/// of our binaries, which waits for cargo's lock while others build in the same workspace.
fn cargo_seconds(progress: &str) -> f64 {
    progress
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| {
            v["event"] == "ok"
                && v["step"]
                    .as_str()
                    .is_some_and(|s| s.starts_with("cargo build"))
        })
        .filter_map(|v| v["seconds"].as_f64())
        .sum()
}

/// One timed `fleet launch-infra`.
pub struct FleetTiming {
    /// Until it returned.
    pub total: f64,
    /// Of which cargo's up-to-date check of our binaries.
    pub cargo: f64,
}

impl Bench {
    /// Builds (or reuses) the images once, so that no round includes a build.
    pub async fn new(config_file: &Path, fleet: PathBuf, compose: String) -> anyhow::Result<Self> {
        let config_file = std::fs::canonicalize(config_file)
            .with_context(|| format!("find {}", config_file.display()))?;
        let config_text = std::fs::read_to_string(&config_file)?;
        let ctx = Ctx::load(&config_file, ProgressMode::Plain)?;
        let docker = ctx.docker().await?;
        let images = fleet_orchestrator::images::ensure_images(
            &docker,
            &ctx.config,
            &ctx.paths,
            &ctx.progress,
        )
        .await
        .context("build the images")?;
        let work = std::env::temp_dir().join(format!("launch-bench-{}", std::process::id()));
        std::fs::create_dir_all(&work)?;
        Ok(Self {
            config_file,
            config_text,
            images,
            fleet,
            compose,
            work,
        })
    }

    /// The Compose tool's name.
    pub fn compose_tool(&self) -> &str {
        &self.compose
    }

    fn config(&self, env: &[(String, String)]) -> anyhow::Result<Config> {
        Ok(fleet_common::config::load_from_str(
            &self.config_text,
            &self.config_file.display().to_string(),
            env.to_vec(),
        )?)
    }

    /// Times `fleet launch-infra` on a fresh stack, then tears it down.
    pub async fn fleet_round(&self, round: u32) -> anyhow::Result<FleetTiming> {
        let name = format!("lbf{round}-{}", std::process::id());
        let env = stack_env(&name, &self.work.join("state"))?;
        let fleet = |args: &[&str]| {
            let mut c = Command::new(&self.fleet);
            c.args(["--progress", "json", "--config"])
                .arg(&self.config_file)
                .args(args)
                .envs(env.iter().cloned());
            c
        };
        let started = Instant::now();
        let launched = run_full(&mut fleet(&["launch-infra"]), "fleet launch-infra").await;
        let total = started.elapsed().as_secs_f64();
        let torn = run(&mut fleet(&["teardown"]), "fleet teardown").await;
        let (_, progress) = launched?;
        torn?;
        Ok(FleetTiming {
            total,
            cargo: cargo_seconds(&progress),
        })
    }

    /// Times `docker-compose up -d` of the equivalent compose file until every long-running
    /// service is healthy, then takes it down with its volumes.
    pub async fn compose_round(&self, round: u32) -> anyhow::Result<f64> {
        let name = format!("lbc{round}-{}", std::process::id());
        let dir = self.work.join(&name);
        std::fs::create_dir_all(&dir)?;
        let env = stack_env(&name, &dir)?;
        let config = self.config(&env)?;
        let secrets = plan::Secrets {
            postgres_password: format!("bench-{}", uuid::Uuid::new_v4().simple()),
            postgres_admin_password: format!("bench-{}", uuid::Uuid::new_v4().simple()),
            broker_storage_password: format!("bench-{}", uuid::Uuid::new_v4().simple()),
            ingest_tokens: None,
        };
        let infra = plan::infra_plan(&config, &self.images, &secrets);
        let file = crate::compose::write(&dir, &infra, &config)?;
        let compose = |args: &[&str]| {
            let mut c = Command::new(&self.compose);
            c.arg("-p").arg(&name).arg("-f").arg(&file).args(args);
            c
        };
        let started = Instant::now();
        let result = async {
            run(&mut compose(&["up", "-d"]), "docker-compose up -d").await?;
            let names: Vec<&str> = infra
                .services
                .iter()
                .filter(|s| !matches!(s.readiness, plan::Readiness::Running))
                .map(|s| s.spec.name.as_str())
                .collect();
            wait_healthy(&names).await
        }
        .await;
        let secs = started.elapsed().as_secs_f64();
        let down = run(
            &mut compose(&["down", "--volumes", "--remove-orphans"]),
            "docker-compose down",
        )
        .await;
        result?;
        down?;
        let _ = std::fs::remove_dir_all(&dir);
        Ok(secs)
    }
}

impl Drop for Bench {
    /// Removes the rounds' state folders and compose files (the password files among them).
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.work);
    }
}

/// Polls `docker inspect` until every container of `names` reports `healthy`.
async fn wait_healthy(names: &[&str]) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let out = run(
            Command::new("docker")
                .args(["inspect", "--format", "{{.Name}} {{.State.Health.Status}}"])
                .args(names),
            "docker inspect",
        )
        .await?;
        let unhealthy: Vec<&str> = out.lines().filter(|l| !l.ends_with(" healthy")).collect();
        if unhealthy.is_empty() {
            return Ok(());
        }
        if started.elapsed() > COMPOSE_TIMEOUT {
            bail!("not healthy after {COMPOSE_TIMEOUT:?}: {unhealthy:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
