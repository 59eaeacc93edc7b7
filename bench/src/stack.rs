//! The running stack as the benchmark sees it from the host: the consumer's containers (stopped
//! and started with the `docker` CLI), PostgreSQL, and the topic's end offsets.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, bail};
use rdkafka::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use tokio_postgres::Client;

/// Runs the docker CLI with `args` and returns what it printed; `what` names the call in the
/// error when it fails.
async fn docker_cli(args: &[String], what: &str) -> anyhow::Result<String> {
    let output = tokio::process::Command::new("docker")
        .args(args)
        .output()
        .await
        .context("running the docker CLI")?;
    if !output.status.success() {
        bail!("{what}: {}", String::from_utf8_lossy(&output.stderr).trim());
    }
    Ok(String::from_utf8_lossy(&output.stdout).into_owned())
}

/// Runs `docker <verb> <container>...` (`docker stop` and `docker start` take several).
pub async fn docker(verb: &str, containers: &[String]) -> anyhow::Result<()> {
    let args: Vec<String> = std::iter::once(verb.to_owned())
        .chain(containers.iter().cloned())
        .collect();
    docker_cli(&args, &format!("docker {}", args.join(" "))).await?;
    Ok(())
}

/// The containers of `service` in `stack` (every replica), found by fleet's ownership labels.
pub async fn service_containers(stack: &str, service: &str) -> anyhow::Result<Vec<String>> {
    let args = [
        "ps".to_owned(),
        "--all".to_owned(),
        "--format".to_owned(),
        "{{.Names}}".to_owned(),
        "--filter".to_owned(),
        format!("label={}={stack}", fleet_orchestrator::docker::LABEL_STACK),
        "--filter".to_owned(),
        format!(
            "label={}={service}",
            fleet_orchestrator::docker::LABEL_SERVICE
        ),
    ];
    let printed = docker_cli(
        &args,
        &format!("docker ps for the {service} of stack {stack}"),
    )
    .await?;
    let mut names: Vec<String> = printed.lines().map(str::to_owned).collect();
    names.sort();
    if names.is_empty() {
        bail!("stack {stack} has no {service} container: launch it with `fleet launch-infra`");
    }
    Ok(names)
}

/// Connects to PostgreSQL with the password read from `password_file`.
pub async fn connect(
    mut config: tokio_postgres::Config,
    password_file: &Path,
) -> anyhow::Result<Client> {
    let password = std::fs::read_to_string(password_file)
        .with_context(|| format!("reading the password from {}", password_file.display()))?;
    config.password(password.trim_end_matches(['\n', '\r']));
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .context("connecting to PostgreSQL")?;
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            eprintln!("sink-bench: PostgreSQL connection ended: {e}");
        }
    });
    Ok(client)
}

/// The next offsets `group` stored in `consumer_offsets` for `topic`.
pub async fn stored_offsets(
    client: &Client,
    group: &str,
    topic: &str,
) -> anyhow::Result<BTreeMap<i32, i64>> {
    Ok(client
        .query(
            "SELECT kafka_partition, next_offset FROM consumer_offsets \
             WHERE consumer_group = $1 AND topic = $2",
            &[&group, &topic],
        )
        .await
        .context("reading consumer_offsets")?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Rows in `diag`.
pub async fn diag_rows(client: &Client) -> anyhow::Result<i64> {
    Ok(client
        .query_one("SELECT count(*) FROM diag", &[])
        .await
        .context("counting diag")?
        .get(0))
}

/// The high watermark of every partition of `topic` that holds records.
pub async fn end_offsets(bootstrap: &str, topic: &str) -> anyhow::Result<BTreeMap<i32, i64>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .context("creating a metadata client")?;
    let topic = topic.to_owned();
    tokio::task::spawn_blocking(move || {
        let timeout = Duration::from_secs(10);
        let metadata = consumer
            .fetch_metadata(Some(&topic), timeout)
            .with_context(|| format!("metadata of {topic}"))?;
        let mut ends = BTreeMap::new();
        for partition in metadata.topics().iter().flat_map(|t| t.partitions()) {
            let (_, high) = consumer
                .fetch_watermarks(&topic, partition.id(), timeout)
                .with_context(|| format!("watermarks of {topic}/{}", partition.id()))?;
            if high > 0 {
                ends.insert(partition.id(), high);
            }
        }
        Ok(ends)
    })
    .await
    .context("watermark task")?
}
