//! Which partitions this replica reads, decided without Kafka's group coordinator.
//!
//! The live consumer replicas of the stack (the registry's ephemeral nodes under
//! `/fleet/<stack>/members/consumer`, of the same topic and group) split the topic's partitions
//! round robin in the order of their ids: partition `p` belongs to the `p mod n`-th of the `n`
//! live replicas. A replica that crashes or freezes leaves the registry when its session expires,
//! and the others take its partitions over, resuming from the offsets in PostgreSQL. While the
//! registry is not reachable (or before this replica's own node is listed) the replica falls back
//! to its fixed share by replica index: `p mod replicas == index`.
//!
//! Two replicas may briefly both read a partition while their views of the registry differ; that
//! costs work, not correctness: rows are inserted `ON CONFLICT (event_id) DO NOTHING`, aggregates
//! count only inserted rows, and stored offsets only move forward.

use std::time::Duration;

use fleet_registry::Member;
use tokio::sync::watch;

/// Who this replica is and how it falls back without the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Its member id in the registry (the container name in a stack).
    pub member_id: String,
    /// Its index among the configured replicas (0-based), for the fallback share.
    pub replica_index: u32,
    /// The configured number of replicas, for the fallback share.
    pub replicas: u32,
    /// What a replica of the same pool registers as `runs` (topic and group): members that run
    /// something else are not counted.
    pub runs: Vec<String>,
}

/// How the current share was decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// From the live replicas in the registry (how many).
    Registry(usize),
    /// From the replica index (the registry is away or does not list this replica yet).
    Index,
}

/// The partitions of a topic with `partitions` partitions that `me` reads, given the `live`
/// members of the consumer role (if the registry is followed).
pub fn share(partitions: i32, me: &Identity, live: Option<&[Member]>) -> (Vec<i32>, Basis) {
    let pool: Option<Vec<&str>> = live.and_then(|members| {
        let mut ids: Vec<&str> = members
            .iter()
            .filter(|m| m.info.runs == me.runs)
            .map(|m| m.id.as_str())
            .collect();
        ids.sort_unstable();
        ids.dedup();
        ids.contains(&me.member_id.as_str()).then_some(ids)
    });
    match pool {
        Some(ids) => {
            let n = ids.len() as i32;
            let mine = (0..partitions)
                .filter(|p| ids[(p % n) as usize] == me.member_id)
                .collect();
            (mine, Basis::Registry(ids.len()))
        }
        None => {
            let replicas = me.replicas.max(1) as i32;
            let index = (me.replica_index as i32) % replicas;
            let mine = (0..partitions).filter(|p| p % replicas == index).collect();
            (mine, Basis::Index)
        }
    }
}

/// Follows the partition count and the live members and publishes this replica's share each
/// time it changes. The share stays empty until the partition count is known.
pub fn follow(
    me: Identity,
    mut partitions: watch::Receiver<Option<i32>>,
    members: Option<watch::Receiver<Vec<Member>>>,
    settle: Duration,
) -> watch::Receiver<Vec<i32>> {
    let (tx, rx) = watch::channel(Vec::new());
    tokio::spawn(async move {
        let mut members = members;
        let mut last_basis: Option<Basis> = None;
        loop {
            let count = *partitions.borrow_and_update();
            if let Some(count) = count {
                let live = members.as_mut().map(|m| m.borrow_and_update().clone());
                let (mine, basis) = share(count, &me, live.as_deref());
                if last_basis != Some(basis) {
                    tracing::info!(?basis, partitions = count, "partition share basis");
                    last_basis = Some(basis);
                }
                tx.send_if_modified(|current| {
                    if *current == mine {
                        return false;
                    }
                    tracing::info!(from = ?current, to = ?mine, ?basis, "partition share changed");
                    *current = mine;
                    true
                });
            }
            let members_changed = async {
                match members.as_mut() {
                    Some(m) => m.changed().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                r = partitions.changed() => if r.is_err() { return },
                r = members_changed => if r.is_err() { members = None },
                _ = tx.closed() => return,
            }
            // Registry updates come in bursts (a node per replica): let them settle.
            tokio::time::sleep(settle).await;
        }
    });
    rx
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleet_registry::MemberInfo;

    fn me(id: &str, index: u32, replicas: u32) -> Identity {
        Identity {
            member_id: id.into(),
            replica_index: index,
            replicas,
            runs: vec!["telemetry".into(), "group g".into()],
        }
    }

    fn member(id: &str, runs: &[&str]) -> Member {
        Member {
            id: id.into(),
            info: MemberInfo {
                address: format!("http://{id}:8081"),
                runs: runs.iter().map(|s| (*s).to_owned()).collect(),
            },
            session: 1,
        }
    }

    fn live(ids: &[&str]) -> Vec<Member> {
        ids.iter()
            .map(|id| member(id, &["telemetry", "group g"]))
            .collect()
    }

    #[test]
    fn live_replicas_split_every_partition_exactly_once() {
        let members = live(&["c-2", "c-0", "c-1"]);
        let mut all = Vec::new();
        for id in ["c-0", "c-1", "c-2"] {
            let (mine, basis) = share(8, &me(id, 0, 3), Some(&members));
            assert_eq!(basis, Basis::Registry(3));
            all.extend(mine);
        }
        all.sort_unstable();
        assert_eq!(all, (0..8).collect::<Vec<_>>());
        assert_eq!(share(8, &me("c-1", 0, 3), Some(&members)).0, [1, 4, 7]);
    }

    #[test]
    fn a_lost_replica_s_partitions_go_to_the_others() {
        let (mine, basis) = share(4, &me("c-0", 0, 2), Some(&live(&["c-0"])));
        assert_eq!(basis, Basis::Registry(1));
        assert_eq!(mine, [0, 1, 2, 3]);
    }

    #[test]
    fn without_the_registry_the_index_decides() {
        assert_eq!(share(5, &me("c-1", 1, 2), None), (vec![1, 3], Basis::Index));
        assert_eq!(
            share(5, &me("c-0", 0, 1), None),
            (vec![0, 1, 2, 3, 4], Basis::Index)
        );
    }

    #[test]
    fn until_listed_itself_the_index_decides() {
        let (mine, basis) = share(4, &me("c-1", 1, 2), Some(&live(&["c-0"])));
        assert_eq!((mine, basis), (vec![1, 3], Basis::Index));
    }

    #[test]
    fn members_of_another_topic_or_group_do_not_count() {
        let mut members = live(&["c-0", "c-1"]);
        members.push(member("other", &["telemetry", "group h"]));
        let (mine, basis) = share(4, &me("c-0", 0, 2), Some(&members));
        assert_eq!((mine, basis), (vec![0, 2], Basis::Registry(2)));
    }

    #[tokio::test]
    async fn follow_publishes_each_new_share() {
        let (count_tx, count_rx) = watch::channel(None);
        let (members_tx, members_rx) = watch::channel(live(&["c-0", "c-1"]));
        let mut share_rx = follow(
            me("c-0", 0, 2),
            count_rx,
            Some(members_rx),
            Duration::from_millis(1),
        );
        assert!(
            share_rx.borrow().is_empty(),
            "no share before the count is known"
        );
        count_tx.send(Some(4)).unwrap();
        share_rx.changed().await.unwrap();
        assert_eq!(*share_rx.borrow_and_update(), [0, 2]);
        members_tx.send(live(&["c-0"])).unwrap();
        share_rx.changed().await.unwrap();
        assert_eq!(*share_rx.borrow_and_update(), [0, 1, 2, 3]);
    }
}
