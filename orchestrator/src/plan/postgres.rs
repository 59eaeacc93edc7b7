//! The stack's PostgreSQL server (and the broker storage's, which shares the recipe): its
//! container, data and secrets volumes, and the password handed over as a file.

use std::collections::BTreeMap;

use fleet_common::config::ServerSetting;
use fleet_common::settings::env::{POSTGRES_DB, POSTGRES_PASSWORD_FILE, POSTGRES_USER};
use fleet_common::settings::ports::POSTGRES_PORT;

use super::builder::{Builder, apply_upstream, secret_file, secrets_volume, set_env, volume_name};
use super::secrets::{POSTGRES_UID, SECRETS_DIR};
use super::{PASSWORD_PATH, Readiness, Redacted, Secrets, Service, ServicePlan, readiness};
use crate::docker::ContainerSpec;
use crate::images::ImageSet;

/// Where PostgreSQL keeps its cluster.
const DATA_DIR: &str = "/var/lib/postgresql/data";

/// A PostgreSQL server of the postgres recipe as `service`: its role and database `user` and
/// `database`, whose password it finds at `password_path`, published on `host_port`.
pub(super) fn server(
    b: &Builder<'_>,
    images: &ImageSet,
    service: Service,
    (user, database): (&str, &str),
    (password_path, password): (&str, &str),
    host_port: u16,
) -> ContainerSpec {
    let stack = &b.config.stack.name;
    let mut pg = b.service_spec(service, &images.postgres);
    Builder::read_only(&mut pg);
    // The server's socket and lock file.
    pg.hardening.tmpfs.push(format!(
        "/run/postgresql:uid={POSTGRES_UID},gid={POSTGRES_UID}"
    ));
    b.publish(&mut pg, POSTGRES_PORT, host_port);
    pg.volumes
        .insert(volume_name(stack, service), DATA_DIR.into());
    // The password file is placed before start; a read-only root accepts it only in a volume.
    pg.volumes
        .insert(secrets_volume(stack, service), SECRETS_DIR.into());
    set_env(
        &mut pg,
        vec![
            (POSTGRES_USER, user.to_owned()),
            (POSTGRES_DB, database.to_owned()),
            (POSTGRES_PASSWORD_FILE, password_path.to_owned()),
        ],
    );
    pg.files.push(secret_file(
        password_path,
        POSTGRES_UID,
        password.as_bytes(),
    ));
    pg.cmd = server_args(&b.config.postgres.server_settings);
    pg
}

/// The server's arguments for `settings`: `-c name=value` each, which the recipe's entrypoint
/// (and the official image's) hands to `postgres`.
fn server_args(settings: &BTreeMap<String, ServerSetting>) -> Vec<String> {
    settings
        .iter()
        .flat_map(|(name, value)| ["-c".to_owned(), format!("{name}={value}")])
        .collect()
}

/// The stack's PostgreSQL: the application role's password as a file, the admin's for the
/// schema step only.
pub(super) fn plan(b: &Builder<'_>, images: &ImageSet, secrets: &Secrets) -> ServicePlan {
    let config = b.config;
    let service = Service::Postgres;
    let pg = &config.postgres;
    let mut spec = server(
        b,
        images,
        service,
        (&pg.user, &pg.database),
        (PASSWORD_PATH, &secrets.postgres_password),
        pg.host_port,
    );
    apply_upstream(&mut spec, pg.upstream.as_ref());
    ServicePlan {
        service,
        spec,
        depends_on: vec![],
        readiness: match readiness(config, service) {
            Readiness::PostgresQuery {
                port,
                user,
                database,
                ..
            } => Readiness::PostgresQuery {
                port,
                user,
                database,
                admin_password: Some(Redacted(secrets.postgres_admin_password.clone())),
            },
            other => other,
        },
        timeout: pg.start_timeout,
    }
}

#[cfg(test)]
mod tests {
    use fleet_common::config::ServerSetting;

    use super::super::tests::{config, first, images, secrets};
    use super::super::{Service, infra_plan};

    #[test]
    fn server_settings_reach_both_servers_as_arguments() {
        let plan = infra_plan(&config(), &images(), &secrets("pw"));
        assert!(first(&plan, Service::Postgres).spec.cmd.is_empty());
        let mut c = config();
        c.postgres.server_settings = [
            ("max_wal_size".to_owned(), ServerSetting::Text("8GB".into())),
            ("max_connections".to_owned(), ServerSetting::Integer(200)),
            ("fsync".to_owned(), ServerSetting::Bool(true)),
        ]
        .into();
        let plan = infra_plan(&c, &images(), &secrets("pw"));
        for service in [Service::Postgres, Service::BrokerStorage] {
            assert_eq!(
                first(&plan, service).spec.cmd,
                [
                    "-c",
                    "fsync=on",
                    "-c",
                    "max_connections=200",
                    "-c",
                    "max_wal_size=8GB"
                ],
                "{service:?}"
            );
        }
    }
}
