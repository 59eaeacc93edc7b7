//! Waiting for a service to be ready: its probe is polled until it passes or the timeout ends;
//! a container that stops meanwhile fails at once. A failure carries the last log lines.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};

use crate::docker::{ContainerInfo, Docker};
use crate::plan::{Readiness, ServicePlan};
use crate::probes::{self, ProbeError};

/// Restarts during a wait that count as a crash loop.
const CRASH_LOOP_RESTARTS: i64 = 2;

/// Lines of a failing container's log shown with the error.
pub const LOG_LINES_ON_FAILURE: usize = 30;

/// A service that did not become ready.
#[derive(Debug, thiserror::Error)]
#[error(
    "service {service} ({container}) is not ready: {probe}: {last_error}\n--- last {LOG_LINES_ON_FAILURE} log lines of {container} ---\n{logs}"
)]
pub struct ReadyError {
    /// The service.
    pub service: String,
    /// Its container.
    pub container: String,
    /// The probe that failed.
    pub probe: String,
    /// The probe's last complaint.
    pub last_error: String,
    /// The container's last log lines.
    pub logs: String,
}

/// The address the host uses to reach a port published on `bind_address`.
pub fn connect_host(bind_address: &str) -> IpAddr {
    match bind_address.parse::<IpAddr>() {
        Ok(ip) if ip.is_unspecified() && ip.is_ipv4() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        Ok(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        Ok(ip) => ip,
        Err(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
    }
}

fn published(info: &ContainerInfo, host: IpAddr, port: u16) -> Result<SocketAddr, ProbeError> {
    info.ports
        .get(&port)
        .map(|p| SocketAddr::new(host, *p))
        .ok_or_else(|| ProbeError::new(format!("container port {port} is not published")))
}

/// Runs a readiness probe once against the container's published ports; with `setup`, also
/// the one-time setup that follows readiness (topics, schema).
pub async fn probe_once(
    readiness: &Readiness,
    info: &ContainerInfo,
    host: IpAddr,
    password: &str,
    setup: bool,
) -> Result<String, ProbeError> {
    match readiness {
        Readiness::Running => Ok("running".into()),
        Readiness::ZookeeperRuok { port } => {
            let mode = probes::zookeeper_ruok(published(info, host, *port)?).await?;
            Ok(format!("imok, mode {mode}"))
        }
        Readiness::KafkaMetadata { port, topics } => {
            let bootstrap = published(info, host, *port)?.to_string();
            let brokers = probes::kafka_metadata(&bootstrap).await?;
            if setup && !topics.is_empty() {
                probes::create_topics(&bootstrap, topics).await?;
            }
            if topics.is_empty() {
                return Ok(format!("{brokers} broker(s)"));
            }
            Ok(format!(
                "{brokers} broker(s), topics {}",
                topics
                    .iter()
                    .map(|t| t.0.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        }
        Readiness::PostgresQuery {
            port,
            user,
            database,
            admin_password,
        } => {
            let addr = published(info, host, *port)?;
            let client = probes::postgres_connect(addr, user, password, database).await?;
            match admin_password {
                Some(admin_password) if setup => {
                    let logins = probes::PostgresLogins {
                        addr,
                        database,
                        app_user: user,
                        app_password: password,
                        admin_password: &admin_password.0,
                    };
                    let done = probes::set_up_postgres(&client, &logins).await?;
                    Ok(format!("query ok, {done}"))
                }
                _ => Ok("query ok".into()),
            }
        }
        Readiness::PostgresStorage {
            port,
            user,
            database,
            password,
        } => {
            probes::postgres_connect(published(info, host, *port)?, user, &password.0, database)
                .await?;
            Ok("query ok".into())
        }
        Readiness::Http { port, path } => {
            let url = format!("http://{}{path}", published(info, host, *port)?);
            probes::http_ok(&url).await?;
            Ok("200".into())
        }
    }
}

/// Polls the probe of `plan` until it passes; returns what it reported.
pub async fn wait_ready(
    docker: &Docker,
    plan: &ServicePlan,
    host: IpAddr,
    password: &str,
) -> Result<String, ReadyError> {
    let started = Instant::now();
    let name = &plan.spec.name;
    let mut last_error;
    let restarts_before = docker.restart_count(name).await.unwrap_or(0);
    loop {
        let info = match docker.find_container(name, &plan.spec.stack).await {
            Ok(Some(info)) => info,
            Ok(None) => {
                last_error = "the container is gone".into();
                break;
            }
            Err(e) => {
                last_error = e.to_string();
                break;
            }
        };
        // A crash loop under the restart policy fails at once instead of waiting it out.
        let restarts = docker.restart_count(name).await.unwrap_or(0) - restarts_before;
        if restarts > CRASH_LOOP_RESTARTS {
            last_error = format!("the container keeps crashing ({restarts} restarts)");
            break;
        }
        if !info.is_running() {
            last_error = format!("the container is {}", info.state);
            if info.state == "exited" || info.state == "dead" {
                break;
            }
        } else {
            match probe_once(&plan.readiness, &info, host, password, true).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) => last_error = e.0,
            }
        }
        if started.elapsed() > plan.timeout {
            last_error = format!("{last_error} (gave up after {:?})", plan.timeout);
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let logs = docker
        .logs_tail(name, LOG_LINES_ON_FAILURE)
        .await
        .unwrap_or_else(|e| format!("(logs unavailable: {e})"));
    Err(ReadyError {
        service: plan.instance().to_owned(),
        container: name.clone(),
        probe: plan.readiness.describe(),
        last_error,
        logs,
    })
}
