//! The once-per-second tick: reads the input topic's counts (cached, see
//! [`crate::topic_counts`]) and ends a [`super::Dashboard`] tick with them.

use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::Utc;
use tokio::time::MissedTickBehavior;

use crate::app::AppState;

/// Time between two updates.
pub const TICK: Duration = Duration::from_secs(1);

/// Starts ticking `state`'s dashboard every [`TICK`] in a background task.
pub fn spawn(state: AppState) {
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(TICK);
        interval.set_missed_tick_behavior(MissedTickBehavior::Skip);
        loop {
            interval.tick().await;
            let accepted = state.accepted.load(Ordering::Relaxed);
            let received = state
                .topic_counts
                .figures(state.broker.as_ref(), accepted)
                .await;
            state.dashboard.tick(received, Utc::now());
        }
    });
}
