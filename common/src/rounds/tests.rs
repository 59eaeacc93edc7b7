//! The dispatch loop against a fake producer whose acknowledgements the test releases.

use std::sync::Mutex;

use super::*;

/// Hands records over into a log and acknowledges them only when the test says so.
#[derive(Clone, Default)]
struct Fake {
    handed: Arc<Mutex<Vec<String>>>,
    /// The length of the round each record was handed over in.
    round_lens: Arc<Mutex<Vec<usize>>>,
    unreleased: Arc<Mutex<Vec<oneshot::Sender<()>>>>,
}

impl Fake {
    fn handed(&self) -> Vec<String> {
        self.handed.lock().unwrap().clone()
    }

    /// Acknowledges every record handed over so far.
    fn release(&self) {
        for gate in self.unreleased.lock().unwrap().drain(..) {
            let _ = gate.send(());
        }
    }

    /// Waits until `n` records were handed over in all.
    async fn until_handed(&self, n: usize) {
        for _ in 0..500 {
            if self.handed.lock().unwrap().len() >= n {
                return;
            }
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        panic!("{n} records were not handed over: {:?}", self.handed());
    }
}

impl Handover for Fake {
    fn hand_over(
        &self,
        record: &Outgoing,
        round_len: usize,
    ) -> Result<BoxFuture<'static, Result<Delivered, SendError>>, SendError> {
        let key = String::from_utf8(record.key.clone()).unwrap();
        if key == "refused" {
            return Err(SendError::Refused("no".into()));
        }
        let mut handed = self.handed.lock().unwrap();
        let offset = handed.len() as i64;
        handed.push(key);
        self.round_lens.lock().unwrap().push(round_len);
        let (gate, released) = oneshot::channel();
        self.unreleased.lock().unwrap().push(gate);
        Ok(async move {
            released.await.map_err(|_| SendError::Canceled)?;
            Ok(Delivered {
                partition: 0,
                offset,
            })
        }
        .boxed())
    }
}

fn record(key: &str, bytes: usize) -> Outgoing {
    Outgoing {
        topic: "t".into(),
        key: key.as_bytes().to_vec(),
        payload: vec![b'x'; bytes],
    }
}

const ROOMY: RoundLimits = RoundLimits {
    records: 100,
    bytes: 1 << 20,
    queued: 100,
    linger: Duration::ZERO,
};

#[tokio::test]
async fn records_sent_while_a_round_is_in_flight_go_together_into_the_next() {
    let fake = Fake::default();
    let rounds = Rounds::start(fake.clone(), ROOMY);
    let a = rounds.send(record("a", 1));
    fake.until_handed(1).await;
    let b = rounds.send(record("b", 1));
    let c = rounds.send(record("c", 1));
    tokio::time::sleep(Duration::from_millis(30)).await;
    assert_eq!(fake.handed(), ["a"], "b and c wait for a's acknowledgement");
    assert_eq!(rounds.unanswered(), 3);

    fake.release();
    assert_eq!(a.await.unwrap().offset, 0);
    fake.until_handed(3).await;
    assert_eq!(
        fake.handed(),
        ["a", "b", "c"],
        "in the order they were sent"
    );
    fake.release();
    assert_eq!(b.await.unwrap().offset, 1);
    assert_eq!(c.await.unwrap().offset, 2);
    assert_eq!(
        *fake.round_lens.lock().unwrap(),
        [1, 2, 2],
        "each record is handed over with the length of its round"
    );
    assert!(rounds.drained(Duration::from_secs(1)).await);
    assert_eq!(rounds.unanswered(), 0);
}

#[tokio::test]
async fn a_round_stops_at_its_record_and_byte_limits() {
    let fake = Fake::default();
    let limits = RoundLimits {
        records: 2,
        bytes: 10,
        ..ROOMY
    };
    let rounds = Rounds::start(fake.clone(), limits);
    let first = rounds.send(record("0", 0));
    fake.until_handed(1).await;
    // Waiting: two records of 1 byte (the record limit cuts after them), then three of 6 bytes
    // (two would make 12, over the byte limit: each goes in a round of its own).
    let waiting: Vec<_> = ["1", "2", "3", "4", "5"]
        .iter()
        .zip([0, 0, 5, 5, 5])
        .map(|(key, bytes)| rounds.send(record(key, bytes)))
        .collect();
    let mut handed_per_round = Vec::new();
    let mut seen = 1;
    fake.release();
    first.await.unwrap();
    while seen < 6 {
        tokio::time::sleep(Duration::from_millis(30)).await;
        let now = fake.handed().len();
        handed_per_round.push(now - seen);
        seen = now;
        fake.release();
    }
    assert_eq!(handed_per_round, [2, 1, 1, 1]);
    for (answer, offset) in waiting.into_iter().zip(1..) {
        assert_eq!(answer.await.unwrap().offset, offset);
    }
}

#[tokio::test]
async fn beyond_the_queue_limit_a_record_is_refused_at_once() {
    let fake = Fake::default();
    let limits = RoundLimits { queued: 2, ..ROOMY };
    let rounds = Rounds::start(fake.clone(), limits);
    let a = rounds.send(record("a", 1));
    let b = rounds.send(record("b", 1));
    let refused = rounds.send(record("c", 1)).await;
    assert_eq!(refused, Err(SendError::Full(2)));
    fake.until_handed(1).await;
    fake.release();
    a.await.unwrap();
    fake.until_handed(2).await;
    fake.release();
    b.await.unwrap();
    assert_eq!(rounds.unanswered(), 0);
}

#[tokio::test]
async fn a_refused_record_is_answered_with_the_reason_and_its_round_goes_on() {
    let fake = Fake::default();
    let rounds = Rounds::start(fake.clone(), ROOMY);
    let blocker = rounds.send(record("first", 1));
    fake.until_handed(1).await;
    let refused = rounds.send(record("refused", 1));
    let after = rounds.send(record("after", 1));
    fake.release();
    blocker.await.unwrap();
    assert_eq!(refused.await, Err(SendError::Refused("no".into())));
    fake.until_handed(2).await;
    fake.release();
    assert_eq!(after.await.unwrap().offset, 1);
    assert!(rounds.drained(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn drained_gives_up_at_its_timeout_while_a_round_is_unacknowledged() {
    let fake = Fake::default();
    let rounds = Rounds::start(fake.clone(), ROOMY);
    let pending = rounds.send(record("a", 1));
    fake.until_handed(1).await;
    assert!(!rounds.drained(Duration::from_millis(20)).await);
    fake.release();
    pending.await.unwrap();
    assert!(rounds.drained(Duration::from_secs(1)).await);
}

#[tokio::test]
async fn a_round_that_starts_idle_lingers_for_the_records_arriving_with_its_first() {
    let fake = Fake::default();
    let limits = RoundLimits {
        linger: Duration::from_millis(50),
        ..ROOMY
    };
    let rounds = Rounds::start(fake.clone(), limits);
    let a = rounds.send(record("a", 1));
    tokio::time::sleep(Duration::from_millis(10)).await;
    let b = rounds.send(record("b", 1));
    assert!(fake.handed().is_empty(), "the round lingers");
    fake.until_handed(2).await;
    assert_eq!(fake.handed(), ["a", "b"], "one round");
    // Records that wait during a flight leave as soon as it is acknowledged.
    let c = rounds.send(record("c", 1));
    tokio::time::sleep(Duration::from_millis(10)).await;
    fake.release();
    a.await.unwrap();
    b.await.unwrap();
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(fake.handed(), ["a", "b", "c"], "no linger after a flight");
    fake.release();
    c.await.unwrap();
}
