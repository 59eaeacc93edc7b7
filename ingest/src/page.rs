//! The live page of `GET /events`: one self-contained HTML document (inline style and script,
//! no external resources, so it works offline), put together from `page/index.html`,
//! `page/style.css` and `page/app.js`. The server renders the current counters; the
//! script then follows `GET /events/stream?sort=&order=&page=&page_size=` (Server-Sent Events:
//! one whole picture per second, see [`crate::routes::stream`]; a dashboard token given as
//! `?access_token=` is passed on to the stream) and draws what each event carries: the
//! counters, the events/s chart, the map (the most recently seen vehicles as dots, the table
//! page's vehicles with their trails), the make and model counts, the sensor histograms and the
//! page of the vehicle table. Sorting or paging the table opens a stream for the new page. So
//! the page stays as light with 30,000 vehicles as with 5. Without JavaScript the page reloads
//! itself instead.
//!
//! Stable hooks for tests: every counter has an id and its raw value in `data-value`
//! (`received`, `stored`, `rate`, `vehicles-total`, `vehicles-online`, `accepted`); the map
//! canvas `#map` carries `data-drawn` (vehicles drawn) and `data-omitted` (kept, not drawn);
//! table rows carry `data-vin`, `data-make` (with `data-vehicles`, `data-events`); the pager
//! `#page-info` carries `data-page` (from 0), `data-pages` and `data-total`; `<body>` carries
//! `data-last-event-id`, `data-draw-ms` (how long the last redraw took) and `data-first-draw-ms`
//! (milliseconds from navigation start to the first drawn update).

use std::sync::LazyLock;

use crate::routes::watch::EventCounts;

/// The page for `counts`.
pub fn render(counts: &EventCounts) -> String {
    let fleet = &counts.fleet;
    let error = [
        counts.counts.error.as_deref(),
        fleet.reader_error.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(escape)
    .collect::<Vec<_>>()
    .join("; ");
    TEMPLATE
        .replace("{{topic}}", &escape(&counts.topic))
        .replace(
            "{{events_received}}",
            &counts.counts.events_received.to_string(),
        )
        .replace(
            "{{accepted}}",
            &counts.counts.accepted_by_this_replica.to_string(),
        )
        .replace("{{stored}}", &fleet.figures.events_stored.to_string())
        .replace(
            "{{vehicles_total}}",
            &fleet.figures.vehicles_total.to_string(),
        )
        .replace(
            "{{vehicles_online}}",
            &fleet.figures.vehicles_online.to_string(),
        )
        .replace("{{origin_lat}}", &fleet.map.origin_lat.to_string())
        .replace("{{origin_lon}}", &fleet.map.origin_lon.to_string())
        .replace("{{radius_m}}", &fleet.map.radius_m.to_string())
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

/// The page with its style and script in place, before the figures are filled in. The style and
/// the script stay inline (no second request, the page works offline); they are kept as real
/// files next to this one so that editors and linters read them as CSS and JavaScript.
static TEMPLATE: LazyLock<String> = LazyLock::new(|| {
    include_str!("page/index.html")
        .replacen("{{style}}", include_str!("page/style.css"), 1)
        .replacen("{{script}}", include_str!("page/app.js"), 1)
});

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dashboard::{Dashboard, MapArea};
    use crate::topic_counts::TopicFigures;

    #[test]
    fn page_is_self_contained_and_escaped() {
        let dashboard = Dashboard::new(
            MapArea {
                radius_m: 750.0,
                ..MapArea::default()
            },
            crate::dashboard::DashboardLimits::default(),
            0,
        );
        let page = render(&EventCounts {
            counts: TopicFigures {
                events_received: 12,
                accepted_by_this_replica: 5,
                partitions: Vec::new(),
                error: Some("<down>".into()),
            },
            topic: "<telemetry>".into(),
            fleet: dashboard.view(10, chrono::Utc::now()),
        });
        assert!(page.contains(r#"data-value="12" id="received">12<"#));
        assert!(page.contains(r#"data-value="5" id="accepted">5<"#));
        assert!(page.contains(r#"data-radius="750""#));
        assert!(page.contains("&lt;telemetry&gt;") && !page.contains("<telemetry>"));
        assert!(page.contains("&lt;down&gt;"));
        assert!(!page.contains("{{"), "placeholder left");
        // The style and the script are inline, whole.
        assert!(page.contains("<style>\n:root {") && page.contains("}\n</style>"));
        assert!(page.contains("<script>\n(function () {") && page.contains("})();\n</script>"));
        for external in ["http://", "https://", "src=", "<link", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
