//! A member's side of the registry: one background task keeps a ZooKeeper session, registers
//! the member's ephemeral node, and follows the live configuration and the member lists it was
//! asked to watch. Connecting never blocks the caller, and while ZooKeeper is away every value
//! keeps its last known state; a new session (after an expiry) registers again and sets its
//! watches again.

use std::collections::BTreeMap;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use zookeeper_client::{Client, Error as ZkError, SessionState};

use crate::auth::Credentials;
use crate::error::RegistryError;
use crate::live::LiveConfig;
use crate::member::{Member, MemberInfo};
use crate::{nodes, paths};

/// First pause after a failed attempt; doubled up to [`RETRY_CAP`].
const RETRY_FIRST: Duration = Duration::from_millis(200);
/// Longest pause between attempts.
const RETRY_CAP: Duration = Duration::from_secs(5);
/// How long [`Registry::close`] waits for ZooKeeper to acknowledge the session's end.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);

/// Where the registry is and how long a session outlives a silent member.
#[derive(Debug, Clone)]
pub struct RegistryOptions {
    /// ZooKeeper connect string, e.g. `fleet-zookeeper:2181`.
    pub connect: String,
    /// The stack (`/fleet/<stack>`).
    pub stack: String,
    /// Session timeout: a member that stops answering disappears after about this long.
    pub session_timeout: Duration,
    /// The stack's digest identity; without it the member's nodes are open to anyone.
    pub credentials: Option<Credentials>,
}

/// A member to register.
#[derive(Debug, Clone)]
pub struct Registration {
    /// Its role (`ingest`, `consumer`, `vehicle`).
    pub role: String,
    /// Its id, unique within the role (the container name).
    pub id: String,
    /// What its node holds.
    pub info: MemberInfo,
}

/// The session as the member sees it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionStatus {
    /// Whether a session is connected now.
    pub connected: bool,
    /// Sessions established so far (a new one after each expiry).
    pub sessions: u64,
    /// Whether the member node exists in the current session.
    pub registered: bool,
}

/// A member's handle on the registry. Dropping it ends the background task (the session then
/// ends and the member node goes); [`Registry::close`] does so and waits for ZooKeeper.
#[derive(Debug)]
pub struct Registry {
    config: watch::Receiver<LiveConfig>,
    members: BTreeMap<String, watch::Receiver<Vec<Member>>>,
    status: watch::Receiver<SessionStatus>,
    stop: watch::Sender<bool>,
    task: Option<tokio::task::JoinHandle<()>>,
}

/// What the background task publishes to.
struct Shared {
    options: RegistryOptions,
    registration: Option<Registration>,
    config: watch::Sender<LiveConfig>,
    members: BTreeMap<String, watch::Sender<Vec<Member>>>,
    status: watch::Sender<SessionStatus>,
}

impl Registry {
    /// Starts the background task: registers `registration` (if any), follows the live
    /// configuration starting from `initial`, and follows the members of each of `watch_roles`.
    /// Returns at once; names are checked here.
    pub fn spawn(
        options: RegistryOptions,
        registration: Option<Registration>,
        watch_roles: &[&str],
        initial: LiveConfig,
    ) -> Result<Self, RegistryError> {
        paths::check_segment("stack", &options.stack)?;
        if let Some(r) = &registration {
            paths::check_segment("role", &r.role)?;
            paths::check_segment("member id", &r.id)?;
        }
        for role in watch_roles {
            paths::check_segment("role", role)?;
        }
        let (config_tx, config) = watch::channel(initial);
        let (status_tx, status) = watch::channel(SessionStatus::default());
        let mut members = BTreeMap::new();
        let mut senders = BTreeMap::new();
        for role in watch_roles {
            let (tx, rx) = watch::channel(Vec::new());
            members.insert((*role).to_owned(), rx);
            senders.insert((*role).to_owned(), tx);
        }
        let (stop, stopped) = watch::channel(false);
        let shared = Shared {
            options,
            registration,
            config: config_tx,
            members: senders,
            status: status_tx,
        };
        let task = tokio::spawn(run(shared, stopped));
        Ok(Self {
            config,
            members,
            status,
            stop,
            task: Some(task),
        })
    }

    /// The live configuration, following every change.
    pub fn config(&self) -> watch::Receiver<LiveConfig> {
        self.config.clone()
    }

    /// The live members of `role` (one of the watched roles), following every change.
    pub fn members(&self, role: &str) -> Option<watch::Receiver<Vec<Member>>> {
        self.members.get(role).cloned()
    }

    /// The session's state.
    pub fn status(&self) -> watch::Receiver<SessionStatus> {
        self.status.clone()
    }

    /// Ends the session, which removes the member node at once, waiting a little for it.
    pub async fn close(mut self) {
        let _ = self.stop.send(true);
        if let Some(task) = self.task.take()
            && tokio::time::timeout(CLOSE_TIMEOUT * 2, task).await.is_err()
        {
            tracing::warn!("the registry did not close in time");
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Feeds `target` from `source` through `f`, sending only when the result changes; ends when
/// either side is gone.
pub fn forward<T, U>(
    mut source: watch::Receiver<T>,
    target: watch::Sender<U>,
    f: impl Fn(&T) -> U + Send + 'static,
) where
    T: Send + Sync + 'static,
    U: PartialEq + Send + Sync + 'static,
{
    tokio::spawn(async move {
        loop {
            replace(&target, f(&source.borrow_and_update()));
            tokio::select! {
                changed = source.changed() => if changed.is_err() { return },
                () = target.closed() => return,
            }
        }
    });
}

/// Exponential pauses between attempts.
struct Retry(Duration);

impl Retry {
    fn new() -> Self {
        Self(RETRY_FIRST)
    }

    fn next(&mut self) -> Duration {
        let delay = self.0;
        self.0 = (self.0 * 2).min(RETRY_CAP);
        delay
    }
}

async fn run(shared: Shared, mut stopped: watch::Receiver<bool>) {
    let connect = shared.options.connect.clone();
    let mut retry = Retry::new();
    loop {
        let attempt = crate::auth::connector(
            shared.options.session_timeout,
            shared.options.credentials.as_ref(),
        )
        .connect(&connect);
        let client = tokio::select! {
            attempt = attempt => attempt,
            _ = stopped.wait_for(|s| *s) => return,
        };
        let client = match client {
            Ok(client) => client,
            Err(e) => {
                let delay = retry.next();
                tracing::warn!(zookeeper = %connect, error = %e, retry_in = ?delay,
                    "registry: no ZooKeeper session; running on the last known configuration");
                tokio::select! {
                    () = tokio::time::sleep(delay) => continue,
                    _ = stopped.wait_for(|s| *s) => return,
                }
            }
        };
        retry = Retry::new();
        shared.status.send_modify(|s| {
            s.connected = true;
            s.sessions += 1;
            s.registered = false;
        });
        tracing::info!(zookeeper = %connect, session = %client.session_id(),
            timeout = ?client.session_timeout(), "registry: session established");
        let ended = serve_session(&shared, client, &mut stopped).await;
        shared.status.send_modify(|s| {
            s.connected = false;
            s.registered = false;
        });
        match ended {
            SessionEnd::Stopped => return,
            SessionEnd::Lost(state) => {
                tracing::warn!(%state, "registry: session ended; starting a new one")
            }
        }
    }
}

enum SessionEnd {
    Stopped,
    Lost(SessionState),
}

/// Serves one session until it ends or the registry is stopped.
async fn serve_session(
    shared: &Shared,
    client: Client,
    stopped: &mut watch::Receiver<bool>,
) -> SessionEnd {
    let mut state = client.state_watcher();
    let mut tasks = JoinSet::new();
    let stack = shared.options.stack.clone();
    if let Some(r) = shared.registration.clone() {
        tasks.spawn(keep_registered(
            client.clone(),
            paths::member_path(&stack, &r.role, &r.id),
            r.info,
            shared.options.credentials.clone(),
            shared.status.clone(),
        ));
    }
    tasks.spawn(follow_config(
        client.clone(),
        paths::config_path(&stack),
        shared.config.clone(),
    ));
    for (role, tx) in &shared.members {
        tasks.spawn(follow_members(
            client.clone(),
            paths::role_path(&stack, role),
            tx.clone(),
        ));
    }
    let end = loop {
        tokio::select! {
            s = state.changed() => match s {
                SessionState::Disconnected => {
                    tracing::warn!("registry: disconnected from ZooKeeper; keeping the last known state");
                    shared.status.send_modify(|s| s.connected = false);
                }
                SessionState::SyncConnected | SessionState::ConnectedReadOnly => {
                    tracing::info!("registry: reconnected to ZooKeeper");
                    shared.status.send_modify(|s| s.connected = true);
                }
                terminal => break SessionEnd::Lost(terminal),
            },
            _ = stopped.wait_for(|s| *s) => break SessionEnd::Stopped,
        }
    };
    tasks.shutdown().await;
    if matches!(end, SessionEnd::Stopped) {
        // The last client closes the session, which deletes the member node.
        drop(client);
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
            while !matches!(state.changed().await, SessionState::Closed) {}
        })
        .await;
    }
    end
}

/// Whether an error means this session is over (the outer loop starts a new one).
fn session_over(e: &RegistryError) -> bool {
    matches!(
        e,
        RegistryError::Zookeeper {
            source: ZkError::SessionExpired | ZkError::ClientClosed | ZkError::AuthFailed,
            ..
        }
    )
}

/// Runs `round` again and again for the session's life: after a failure it pauses (longer each
/// time); it returns once the session is over.
async fn each_round<F, Fut>(what: &'static str, mut round: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<(), RegistryError>>,
{
    let mut retry = Retry::new();
    loop {
        match round().await {
            Ok(()) => retry = Retry::new(),
            Err(e) if session_over(&e) => return,
            Err(e) => {
                let delay = retry.next();
                tracing::warn!(error = %e, retry_in = ?delay, "registry: {what} failed");
                tokio::time::sleep(delay).await;
            }
        }
    }
}

/// Waits until `path` exists (at once when it does).
async fn wait_created(client: &Client, path: &str) -> Result<(), RegistryError> {
    let (stat, watcher) = client
        .check_and_watch_stat(path)
        .await
        .map_err(RegistryError::zk("watch node", path))?;
    if stat.is_none() {
        watcher.changed().await;
    }
    Ok(())
}

/// Keeps the member node: creates it, and creates it again should it be deleted.
async fn keep_registered(
    client: Client,
    path: String,
    info: MemberInfo,
    credentials: Option<Credentials>,
    status: watch::Sender<SessionStatus>,
) {
    each_round("registering", || {
        let (client, path, info, status) =
            (client.clone(), path.clone(), info.clone(), status.clone());
        let credentials = credentials.clone();
        async move {
            nodes::register(&client, &path, &info, credentials.as_ref()).await?;
            status.send_modify(|s| s.registered = true);
            tracing::info!(node = %path, "registry: member registered");
            let (_, watcher) = client
                .check_and_watch_stat(&path)
                .await
                .map_err(RegistryError::zk("watch member node", &path))?;
            let event = watcher.changed().await;
            status.send_modify(|s| s.registered = false);
            tracing::info!(node = %path, event = ?event.event_type, "registry: member node changed");
            Ok(())
        }
    })
    .await;
}

/// Follows the config node, publishing each accepted version; a missing or refused document
/// keeps the last known configuration.
async fn follow_config(client: Client, path: String, config: watch::Sender<LiveConfig>) {
    each_round("following the live configuration", || {
        let (client, path, config) = (client.clone(), path.clone(), config.clone());
        async move {
            let (data, stat, watcher) = match client.get_and_watch_data(&path).await {
                Ok(found) => found,
                Err(ZkError::NoNode) => return wait_created(&client, &path).await,
                Err(e) => return Err(RegistryError::zk("read config node", &path)(e)),
            };
            match nodes::parse_config(&path, &data) {
                Ok(live) => {
                    if replace(&config, live) {
                        tracing::info!(
                            version = stat.version,
                            "registry: live configuration applied"
                        );
                    }
                }
                Err(e) => tracing::warn!(error = %e,
                    "registry: live configuration refused; keeping the last one"),
            }
            watcher.changed().await;
            Ok(())
        }
    })
    .await;
}

/// Follows the members under `role_path`, publishing the list after each change.
async fn follow_members(client: Client, role_path: String, members: watch::Sender<Vec<Member>>) {
    each_round("following members", || {
        let (client, role_path, members) = (client.clone(), role_path.clone(), members.clone());
        async move {
            let (children, watcher) = match client.list_and_watch_children(&role_path).await {
                Ok(found) => found,
                Err(ZkError::NoNode) => return wait_created(&client, &role_path).await,
                Err(e) => return Err(RegistryError::zk("list members", &role_path)(e)),
            };
            let list = nodes::read_members(&client, &role_path, children).await?;
            let count = list.len();
            if replace(&members, list) {
                tracing::info!(role = %role_path, members = count, "registry: members changed");
            }
            watcher.changed().await;
            Ok(())
        }
    })
    .await;
}

/// Publishes `next` when it differs from the current value; whether it did.
fn replace<T: PartialEq>(sender: &watch::Sender<T>, next: T) -> bool {
    sender.send_if_modified(|current| {
        let modified = *current != next;
        if modified {
            *current = next;
        }
        modified
    })
}
