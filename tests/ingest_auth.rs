//! ingest's bearer tokens and per-vehicle rate limit, configured through `config.master.toml`
//! keys and wired by `fleet` into a real stack: no or bad token gives 401 with
//! `WWW-Authenticate`, a token used for another vehicle gives 403, and a vehicle over its rate
//! gets 429 with `Retry-After`.

mod support;

use fleet_common::{EventTime, TelemetryEvent, Vin};
use support::TestStack;
use uuid::Uuid;

const TOKEN: &str = "token-for-vehicle-one-0123";

fn event(vin: &Vin) -> TelemetryEvent {
    TelemetryEvent::example(
        Uuid::new_v4(),
        vin.clone(),
        0,
        EventTime(chrono::Utc::now()),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn tokens_and_rate_limit_hold_on_a_real_stack() {
    let vin = Vin::from_serial("YV1", 1);
    let other = Vin::from_serial("YV1", 2);
    let tokens = std::env::temp_dir().join(format!("fleet-tokens-{}", std::process::id()));
    std::fs::write(&tokens, format!("# vehicle tokens\n{vin} {TOKEN}\n")).unwrap();
    let stack = TestStack::new(
        "ingest-auth",
        &[
            ("FLEET_INGEST__TOKENS_FILE", tokens.to_str().unwrap()),
            ("FLEET_INGEST__RATE_LIMIT_PER_VIN", "2"),
        ],
    );
    stack.fleet_ok(&["launch-infra"]).await;
    let http = reqwest::Client::new();
    let post = |body: TelemetryEvent, token: Option<&str>| {
        let mut request = http.post(stack.events_url()).json(&body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send()
    };

    let none = post(event(&vin), None).await.unwrap();
    assert_eq!(none.status(), 401);
    assert_eq!(
        none.headers()["www-authenticate"],
        r#"Bearer realm="fleet-ingest""#
    );
    let bad = post(event(&vin), Some("not-the-right-token-at-all"))
        .await
        .unwrap();
    assert_eq!(bad.status(), 401);
    let foreign = post(event(&other), Some(TOKEN)).await.unwrap();
    assert_eq!(foreign.status(), 403, "a token used for another VIN");

    // Two events per second are allowed; a burst beyond gets 429 with Retry-After.
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..5 {
        let response = post(event(&vin), Some(TOKEN)).await.unwrap();
        if response.status() == 429 {
            retry_after = response.headers().get("retry-after").cloned();
        }
        statuses.push(response.status().as_u16());
    }
    assert_eq!(statuses[0], 200, "{statuses:?}");
    assert!(statuses.contains(&429), "{statuses:?}");
    assert!(retry_after.is_some(), "429 carries Retry-After");
    std::fs::remove_file(&tokens).ok();
}
