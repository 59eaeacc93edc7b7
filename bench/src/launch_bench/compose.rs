//! The compose file equivalent to a fleet plan: the same images, commands, environment,
//! network names, volumes, hardening and limits, secrets handed over as files, and a Docker
//! health check per service standing in for fleet's protocol probe. The topics and the schema,
//! which fleet creates once the broker and PostgreSQL answer, are one-shot services that the
//! dependents wait for. Rendered as JSON, which is YAML, so `docker-compose` reads it (`$` is
//! doubled in scripts: compose interpolates it).

use std::path::Path;

use fleet_common::config::Config;
use fleet_orchestrator::plan::{
    BROKER_STORAGE_PASSWORD_PATH, InfraPlan, PASSWORD_PATH, Readiness, Service, ServicePlan,
};
use serde_json::{Map, Value, json};

/// Name of the one-shot service that creates the topics.
const TOPICS: &str = "setup-topics";
/// Name of the one-shot service that applies the schema.
const SCHEMA: &str = "setup-schema";
/// Tmpfs mount options, as fleet sets them.
const TMPFS_OPTIONS: &str = "rw,noexec,nosuid,size=64m,mode=1777";

/// A health check (`CMD bash -c ...`) polled as often as fleet polls its probes.
fn healthcheck(script: String) -> Value {
    json!({
        "test": ["CMD", "bash", "-c", script],
        "interval": "500ms",
        "timeout": "5s",
        "retries": 600,
    })
}

/// The health check standing in for `readiness`, or None for a service fleet only starts.
fn check_for(readiness: &Readiness, config: &Config) -> Option<Value> {
    let pg = &config.postgres;
    Some(healthcheck(match readiness {
        Readiness::Running => return None,
        Readiness::ZookeeperRuok { port } => {
            format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo ruok >&3 && grep -q imok <&3")
        }
        // A TCP connection: the image has no Kafka client; the topics service then speaks Kafka.
        Readiness::KafkaMetadata { port, .. } => format!("</dev/tcp/127.0.0.1/{port}"),
        Readiness::PostgresQuery { port, .. } => format!(
            "PGPASSWORD=$$(cat {PASSWORD_PATH}) /usr/lib/postgresql/15/bin/psql -qAt -h 127.0.0.1 -p {port} -U {} -d {} -c 'SELECT 1'",
            pg.user, pg.database
        ),
        Readiness::PostgresStorage {
            port,
            user,
            database,
            ..
        } => format!(
            "PGPASSWORD=$$(cat {BROKER_STORAGE_PASSWORD_PATH}) /usr/lib/postgresql/15/bin/psql -qAt -h 127.0.0.1 -p {port} -U {user} -d {database} -c 'SELECT 1'"
        ),
        Readiness::Http { port, path } => format!(
            "exec 3<>/dev/tcp/127.0.0.1/{port} && printf 'GET {path} HTTP/1.0\\r\\n\\r\\n' >&3 && head -n1 <&3 | grep -q ' 200'"
        ),
    }))
}

fn ports(plan: &ServicePlan) -> Vec<String> {
    plan.spec
        .ports
        .iter()
        .map(|p| {
            let host = if p.host == 0 {
                String::new()
            } else {
                p.host.to_string()
            };
            format!("{}:{host}:{}", p.host_ip, p.container)
        })
        .collect()
}

/// One long-running service of the plan.
fn service(plan: &ServicePlan, all: &InfraPlan, config: &Config) -> Value {
    let spec = &plan.spec;
    let h = &spec.hardening;
    let mut s = Map::new();
    s.insert("image".into(), json!(spec.image));
    s.insert("container_name".into(), json!(spec.name));
    if !spec.cmd.is_empty() {
        s.insert("command".into(), json!(spec.cmd));
    }
    s.insert("environment".into(), json!(spec.env));
    s.insert("ports".into(), json!(ports(plan)));
    // Named data volumes; secrets come as files instead of a volume fleet fills.
    let volumes: Vec<String> = spec
        .volumes
        .iter()
        .filter(|(name, _)| !name.ends_with("-secrets"))
        .map(|(name, target)| format!("{name}:{target}"))
        .collect();
    s.insert("volumes".into(), json!(volumes));
    let secrets: Vec<Value> = spec
        .files
        .iter()
        .map(|f| json!({"source": secret_name(&f.path), "target": f.path.rsplit('/').next()}))
        .collect();
    if !secrets.is_empty() {
        s.insert("secrets".into(), json!(secrets));
    }
    s.insert("read_only".into(), json!(h.read_only));
    let tmpfs: Vec<String> = h
        .tmpfs
        .iter()
        .map(|entry| match entry.split_once(':') {
            Some((path, extra)) => format!("{path}:{TMPFS_OPTIONS},{extra}"),
            None => format!("{entry}:{TMPFS_OPTIONS}"),
        })
        .collect();
    if !tmpfs.is_empty() {
        s.insert("tmpfs".into(), json!(tmpfs));
    }
    if h.drop_privileges {
        s.insert("cap_drop".into(), json!(["ALL"]));
        s.insert("security_opt".into(), json!(["no-new-privileges:true"]));
    }
    s.insert("mem_limit".into(), json!(format!("{}m", h.memory_mib)));
    s.insert("pids_limit".into(), json!(h.pids));
    s.insert("init".into(), json!(true));
    s.insert("restart".into(), json!("unless-stopped"));
    s.insert("hostname".into(), json!(spec.name));
    s.insert(
        "networks".into(),
        json!({"default": {"aliases": spec.aliases}}),
    );
    if let Some(check) = check_for(&plan.readiness, config) {
        s.insert("healthcheck".into(), check);
    }
    let mut depends = Map::new();
    for dependency in &plan.depends_on {
        for d in all.services.iter().filter(|p| p.service == *dependency) {
            let condition = if check_for(&d.readiness, config).is_some() {
                "service_healthy"
            } else {
                "service_started"
            };
            depends.insert(d.spec.name.clone(), json!({ "condition": condition }));
        }
    }
    // What fleet sets up once the broker and PostgreSQL answer comes before their clients.
    if matches!(plan.service, Service::Ingest | Service::Consumer) {
        for setup in [TOPICS, SCHEMA] {
            depends.insert(
                setup.into(),
                json!({"condition": "service_completed_successfully"}),
            );
        }
    }
    if !depends.is_empty() {
        s.insert("depends_on".into(), Value::Object(depends));
    }
    Value::Object(s)
}

/// The compose name of the secret placed at `path`.
fn secret_name(path: &str) -> String {
    path.rsplit('/').next().unwrap_or(path).to_owned()
}

/// The one-shot services: the topics (with the broker image's `nisshi topic create`) and the
/// schema (with the PostgreSQL image's `psql`).
fn setup_services(plan: &InfraPlan, config: &Config) -> Vec<(String, Value)> {
    let find = |svc: Service| {
        plan.services
            .iter()
            .find(|p| p.service == svc)
            .expect("the plan has the service")
    };
    let host = find(Service::BrokerHost);
    let broker = find(Service::Broker);
    let Readiness::KafkaMetadata { port, topics } = &host.readiness else {
        unreachable!("the broker's host listener is probed with Kafka metadata")
    };
    let creates: Vec<String> = topics
        .iter()
        .map(|(name, partitions)| {
            format!(
                "/usr/local/bin/nisshi topic create {name} --partitions {partitions} --broker tcp://{}:{port}",
                broker.spec.name
            )
        })
        .collect();
    let pg = find(Service::Postgres);
    let c = &config.postgres;
    let schema = format!(
        "PGPASSWORD=$$(cat {PASSWORD_PATH}) /usr/lib/postgresql/15/bin/psql -q -v ON_ERROR_STOP=1 -h {} -U {} -d {} -f /run/secrets/schema.sql",
        pg.spec.name, c.user, c.database
    );
    vec![
        (
            TOPICS.to_owned(),
            json!({
                "image": broker.spec.image,
                "entrypoint": ["bash", "-c", creates.join(" && ")],
                "depends_on": {host.spec.name.clone(): {"condition": "service_healthy"}},
            }),
        ),
        (
            SCHEMA.to_owned(),
            json!({
                "image": pg.spec.image,
                "entrypoint": ["bash", "-c", schema],
                "secrets": [
                    {"source": secret_name(PASSWORD_PATH), "target": secret_name(PASSWORD_PATH)},
                    {"source": "schema.sql", "target": "schema.sql"},
                ],
                "depends_on": {pg.spec.name.clone(): {"condition": "service_healthy"}},
            }),
        ),
    ]
}

/// Writes the compose file and the secret files into `dir`; returns the compose file's path.
pub fn write(dir: &Path, plan: &InfraPlan, config: &Config) -> anyhow::Result<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt as _;
    let mut services = Map::new();
    let mut secrets = Map::new();
    for p in &plan.services {
        services.insert(p.spec.name.clone(), service(p, plan, config));
        for f in &p.spec.files {
            let name = secret_name(&f.path);
            let file = dir.join(&name);
            std::fs::write(&file, &f.content)?;
            // Bind-mounted as is: readable by the container's user (the folder is private).
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444))?;
            secrets.insert(name.clone(), json!({"file": file}));
        }
    }
    let schema = dir.join("schema.sql");
    std::fs::write(&schema, fleet_common::schema::SCHEMA_SQL)?;
    std::fs::set_permissions(&schema, std::fs::Permissions::from_mode(0o444))?;
    secrets.insert("schema.sql".into(), json!({"file": schema}));
    for (name, s) in setup_services(plan, config) {
        services.insert(name, s);
    }
    let volumes: Map<String, Value> = plan
        .volumes
        .iter()
        .filter(|(name, _)| !name.ends_with("-secrets"))
        .map(|(name, _)| (name.clone(), json!({"name": name})))
        .collect();
    // No `version`: the Compose Specification, which has `service_completed_successfully`.
    let file = json!({
        "services": services,
        "volumes": volumes,
        "secrets": secrets,
    });
    let path = dir.join("docker-compose.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&file)?)?;
    Ok(path)
}
