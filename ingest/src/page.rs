//! The live page of `GET /events`: one self-contained HTML document (inline style and script, no
//! external resources). The server renders the current figures; a small script then fetches the
//! JSON from the same URL every second. Without JavaScript the page reloads itself instead.

use std::fmt::Write;

use crate::routes::watch::EventCounts;

/// The page for `counts`.
pub fn render(counts: &EventCounts) -> String {
    let mut rows = String::new();
    for p in &counts.partitions {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            p.partition, p.low, p.high
        );
    }
    let error = counts.error.as_deref().map(escape).unwrap_or_default();
    TEMPLATE
        .replace("{{topic}}", &escape(&counts.topic))
        .replace("{{events_received}}", &counts.events_received.to_string())
        .replace("{{accepted}}", &counts.accepted_by_this_replica.to_string())
        .replace("{{rows}}", &rows)
        .replace("{{error}}", &error)
}

/// `text` with the HTML special characters replaced by entities.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

const TEMPLATE: &str = r#"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fleet ingest: {{topic}}</title>
<noscript><meta http-equiv="refresh" content="1"></noscript>
<style>
  body { font-family: system-ui, sans-serif; margin: 2rem; color: #222; background: #fafafa; }
  h1 { font-size: 1.2rem; font-weight: 600; }
  .big { font-size: 3.5rem; font-variant-numeric: tabular-nums; margin: 0.2rem 0; }
  .muted { color: #666; }
  .error { color: #b00020; min-height: 1.2em; }
  table { border-collapse: collapse; margin-top: 1rem; font-variant-numeric: tabular-nums; }
  th, td { border-bottom: 1px solid #ddd; padding: 0.25rem 1rem; text-align: right; }
</style>
</head>
<body>
<h1>Events received on topic <code>{{topic}}</code></h1>
<div class="big" id="received">{{events_received}}</div>
<div class="muted"><span id="rate">&nbsp;</span></div>
<p>Accepted by this ingest replica since it started: <strong id="accepted">{{accepted}}</strong></p>
<p class="error" id="error">{{error}}</p>
<table>
  <thead><tr><th>partition</th><th>low</th><th>high</th></tr></thead>
  <tbody id="partitions">{{rows}}</tbody>
</table>
<p class="muted">Updated <span id="updated">at page load</span>. Counts are the sum of the topic's high watermarks.</p>
<script>
(function () {
  var last = null;
  function text(id, value) { document.getElementById(id).textContent = value; }
  function show(data) {
    text("received", data.events_received);
    text("accepted", data.accepted_by_this_replica);
    text("error", data.error || "");
    var body = document.getElementById("partitions");
    while (body.firstChild) { body.removeChild(body.firstChild); }
    (data.partitions || []).forEach(function (p) {
      var tr = document.createElement("tr");
      [p.partition, p.low, p.high].forEach(function (v) {
        var td = document.createElement("td");
        td.textContent = v;
        tr.appendChild(td);
      });
      body.appendChild(tr);
    });
    var now = Date.now();
    if (last !== null && !data.error && now > last.at) {
      var rate = (data.events_received - last.count) * 1000 / (now - last.at);
      text("rate", rate.toFixed(1) + " events/s");
    }
    if (!data.error) { last = { at: now, count: data.events_received }; }
    text("updated", new Date(now).toLocaleTimeString());
  }
  function poll() {
    fetch(window.location.pathname, { headers: { "Accept": "application/json" }, cache: "no-store" })
      .then(function (r) { return r.json(); })
      .then(show)
      .catch(function (e) { text("error", "ingest unreachable: " + e); })
      .then(function () { setTimeout(poll, 1000); });
  }
  setTimeout(poll, 1000);
})();
</script>
</body>
</html>
"#;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::broker::PartitionWatermarks;

    #[test]
    fn page_is_self_contained_and_escaped() {
        let page = render(&EventCounts {
            events_received: 12,
            accepted_by_this_replica: 5,
            topic: "<telemetry>".into(),
            partitions: vec![PartitionWatermarks {
                partition: 0,
                low: 0,
                high: 12,
            }],
            error: None,
        });
        assert!(page.contains(r#"<div class="big" id="received">12</div>"#));
        assert!(page.contains("<td>0</td><td>0</td><td>12</td>"));
        assert!(page.contains("&lt;telemetry&gt;") && !page.contains("<telemetry>"));
        assert!(!page.contains("{{"), "placeholder left");
        for external in ["http://", "https://", "src=", "<link"] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
