//! The live page of `GET /events`: one self-contained HTML document (inline style and script,
//! no external resources, so it works offline). The server renders the current counters; the
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

const TEMPLATE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>fleet: live dashboard</title>
<noscript><meta http-equiv="refresh" content="2"></noscript>
<style>
  :root { --fg: #1d2430; --muted: #667085; --line: #e4e7ec; --card: #fff; --accent: #2563eb; }
  * { box-sizing: border-box; }
  body { font-family: system-ui, sans-serif; margin: 0; color: var(--fg); background: #f4f6f9; }
  header { display: flex; align-items: baseline; gap: 1rem; padding: 0.8rem 1.5rem; background: #111827; color: #f9fafb; }
  header h1 { font-size: 1.15rem; margin: 0; font-weight: 600; }
  header .muted { color: #9ca3af; }
  #status { margin-left: auto; font-size: 0.9rem; }
  #status.live::before { content: "\25CF "; color: #22c55e; }
  #status.down::before { content: "\25CF "; color: #ef4444; }
  main { padding: 1rem 1.5rem; display: grid; gap: 1rem; grid-template-columns: repeat(12, 1fr); }
  .card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 0.8rem 1rem; min-width: 0; }
  .card h2 { font-size: 0.8rem; font-weight: 600; text-transform: uppercase; letter-spacing: 0.04em; color: var(--muted); margin: 0 0 0.5rem; }
  .counter { grid-column: span 2; }
  .counter .big { font-size: 2rem; font-weight: 600; font-variant-numeric: tabular-nums; }
  .counter .sub { color: var(--muted); font-size: 0.85rem; }
  .chart { grid-column: span 7; }
  .map { grid-column: span 5; grid-row: span 2; }
  .counts { grid-column: span 7; display: grid; grid-template-columns: 1fr 1.4fr; gap: 1rem; }
  .hists { grid-column: span 12; }
  .hists .row { display: grid; grid-template-columns: repeat(3, 1fr); gap: 1rem; }
  .table { grid-column: span 12; }
  canvas { width: 100%; display: block; }
  table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; font-size: 0.9rem; }
  th, td { border-bottom: 1px solid var(--line); padding: 0.3rem 0.6rem; text-align: right; white-space: nowrap; }
  th:first-child, td:first-child, .text { text-align: left; }
  #vehicles th { cursor: pointer; user-select: none; }
  #vehicles th.sorted::after { content: " \25BE"; }
  #vehicles th.sorted.asc::after { content: " \25B4"; }
  .swatch { display: inline-block; width: 0.7em; height: 0.7em; border-radius: 50%; margin-right: 0.4em; }
  .pager { display: flex; gap: 0.6rem; align-items: center; margin-top: 0.5rem; color: var(--muted); }
  button { font: inherit; padding: 0.15rem 0.7rem; border: 1px solid var(--line); background: #fff; border-radius: 4px; cursor: pointer; }
  .error { color: #b00020; }
  footer { padding: 0 1.5rem 1rem; color: var(--muted); font-size: 0.85rem; }
  @media (max-width: 1100px) { .counter { grid-column: span 4; } .chart, .map, .counts, .hists { grid-column: span 12; } }
</style>
</head>
<body data-last-event-id="" data-draw-ms="" data-first-draw-ms="">
<header>
  <h1>fleet: live dashboard</h1>
  <span class="muted">input topic <code>{{topic}}</code>, figures from the consumer's output topics</span>
  <span id="status" class="down">connecting</span>
</header>
<main>
  <div class="card counter"><h2>Events received</h2><div class="big" data-value="{{events_received}}" id="received">{{events_received}}</div><div class="sub">records in the input topic</div></div>
  <div class="card counter"><h2>Events stored</h2><div class="big" data-value="{{stored}}" id="stored">{{stored}}</div><div class="sub">rows in PostgreSQL</div></div>
  <div class="card counter"><h2>Events / s</h2><div class="big" data-value="0" id="rate">0</div><div class="sub">last complete second</div></div>
  <div class="card counter"><h2>Vehicles online</h2><div class="big" data-value="{{vehicles_online}}" id="vehicles-online">{{vehicles_online}}</div><div class="sub">reported in the last 10 s</div></div>
  <div class="card counter"><h2>Vehicles</h2><div class="big" data-value="{{vehicles_total}}" id="vehicles-total">{{vehicles_total}}</div><div class="sub">ever seen</div></div>
  <div class="card counter"><h2>This replica</h2><div class="big" data-value="{{accepted}}" id="accepted">{{accepted}}</div><div class="sub">accepted since start</div></div>
  <div class="card chart"><h2>Events per second (event time, last 2 minutes)</h2><canvas id="rate-chart" width="800" height="300"></canvas></div>
  <div class="card map"><h2>Map: <span id="map-caption">radius {{radius_m}} m around {{origin_lat}}, {{origin_lon}}</span></h2>
    <canvas id="map" width="640" height="640" data-drawn="0" data-omitted="0" data-radius="{{radius_m}}"></canvas>
    <div id="legend" class="sub"></div></div>
  <div class="card counts">
    <div><h2>Per make</h2><table id="makes"><thead><tr><th>make</th><th>vehicles</th><th>events</th></tr></thead><tbody></tbody></table></div>
    <div><h2>Per model</h2><table id="models"><thead><tr><th>make</th><th class="text">model</th><th>vehicles</th><th>events</th></tr></thead><tbody></tbody></table></div>
  </div>
  <div class="card hists"><h2>Sensor histograms (newest minute window)</h2><div class="row" id="histograms">
    <div><div class="text" id="hist-title-temperature_c">temperature_c</div><canvas id="hist-temperature_c" width="420" height="160" data-total="0"></canvas></div>
    <div><div class="text" id="hist-title-humidity_pct">humidity_pct</div><canvas id="hist-humidity_pct" width="420" height="160" data-total="0"></canvas></div>
    <div><div class="text" id="hist-title-pressure_hpa">pressure_hpa</div><canvas id="hist-pressure_hpa" width="420" height="160" data-total="0"></canvas></div>
  </div></div>
  <div class="card table"><h2>Vehicles (trails on the map)</h2>
    <table id="vehicles"><thead><tr>
      <th data-key="vin">VIN</th><th data-key="make" class="text">make</th><th data-key="model" class="text">model</th>
      <th data-key="first_seen">first seen</th><th data-key="last_seen">last seen</th>
      <th data-key="events" class="sorted">events</th><th data-key="last_speed">speed (km/h)</th>
    </tr></thead><tbody></tbody></table>
    <div class="pager"><button id="prev" type="button">&larr;</button><span id="page-info" data-page="0" data-pages="1" data-total="0">no vehicles yet</span><button id="next" type="button">&rarr;</button></div>
  </div>
</main>
<footer><span class="error" id="error">{{error}}</span> Updated <span id="updated">at page load</span>, update <span id="last-id">none</span>.</footer>
<script>
(function () {
  "use strict";
  var PAGE = 25;
  var last = null, pending = false, source = null;
  var query = { sort: "events", order: "desc", page: 0 };
  var colors = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#65a30d"];
  var makeColor = new Map();
  function $(id) { return document.getElementById(id); }
  function colorOf(make) {
    if (!makeColor.has(make)) { makeColor.set(make, colors[makeColor.size % colors.length]); }
    return makeColor.get(make);
  }
  function counter(id, value) {
    var el = $(id);
    el.dataset.value = String(value);
    el.textContent = Number(value).toLocaleString("en-US");
  }
  function cell(tr, text, cls) {
    var td = document.createElement("td");
    td.textContent = text;
    if (cls) { td.className = cls; }
    tr.appendChild(td);
    return td;
  }
  function time(t) { var d = new Date(t); return isNaN(d) ? "" : d.toLocaleTimeString(); }
  function fit(canvas) {
    if (!canvas.dataset.aspect) { canvas.dataset.aspect = String(canvas.height / canvas.width); }
    var ratio = window.devicePixelRatio || 1, w = canvas.clientWidth || canvas.width;
    var h = w * Number(canvas.dataset.aspect), cw = Math.round(w * ratio), ch = Math.round(h * ratio);
    canvas.style.height = h + "px";
    if (canvas.width !== cw || canvas.height !== ch) { canvas.width = cw; canvas.height = ch; }
    var ctx = canvas.getContext("2d");
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    return { ctx: ctx, w: w, h: h };
  }

  function apply(u) {
    last = u;
    document.body.dataset.lastEventId = String(u.id);
    if (!pending) { pending = true; window.requestAnimationFrame(draw); }
  }

  function draw() {
    pending = false;
    var u = last, started = performance.now();
    if (!u) { return; }
    counter("received", u.events_received);
    counter("stored", u.events_stored);
    counter("vehicles-online", u.vehicles_online);
    counter("vehicles-total", u.vehicles_total);
    counter("accepted", u.accepted_by_this_replica);
    var secs = u.per_second || [];
    counter("rate", secs.length > 1 ? secs[secs.length - 2].events : 0);
    $("error").textContent = [u.error, u.reader_error].filter(Boolean).join("; ");
    $("updated").textContent = new Date(u.at).toLocaleTimeString();
    $("last-id").textContent = String(u.id);
    drawRate(secs);
    drawMap(u);
    drawCounts(u);
    (u.histograms || []).forEach(drawHistogram);
    drawTable(u.table);
    var done = performance.now();
    document.body.dataset.drawMs = (done - started).toFixed(1);
    if (!document.body.dataset.firstDrawMs) { document.body.dataset.firstDrawMs = done.toFixed(0); }
  }

  function drawRate(secs) {
    var c = fit($("rate-chart")), ctx = c.ctx, pad = 34;
    ctx.clearRect(0, 0, c.w, c.h);
    if (!secs.length) { return; }
    var end = Date.parse(secs[secs.length - 1].window_start), span = 120, byT = new Map(), max = 1;
    var nice = function (v) {
      var p = Math.pow(10, Math.floor(Math.log10(v)));
      return [1, 2, 2.5, 5, 10].map(function (m) { return m * p; }).filter(function (m) { return m >= v; })[0];
    };
    secs.forEach(function (s) {
      var k = Math.round((Date.parse(s.window_start) - end) / 1000);
      if (k > -span) { byT.set(k, s.events); max = Math.max(max, s.events); }
    });
    max = nice(max);
    var x = function (k) { return pad + (c.w - pad - 8) * (k + span - 1) / (span - 1); };
    var y = function (v) { return c.h - 20 - (c.h - 30) * v / max; };
    ctx.strokeStyle = "#e4e7ec"; ctx.fillStyle = "#667085"; ctx.font = "11px system-ui, sans-serif";
    for (var g = 0; g <= 4; g++) {
      var v = max * g / 4;
      ctx.beginPath(); ctx.moveTo(pad, y(v)); ctx.lineTo(c.w - 8, y(v)); ctx.stroke();
      ctx.fillText(String(Math.round(v)), 2, y(v) + 4);
    }
    ctx.fillText("-2 min", pad, c.h - 4); ctx.fillText("newest", c.w - 50, c.h - 4);
    ctx.beginPath();
    for (var k = -span + 1; k <= 0; k++) {
      var px = x(k), py = y(byT.get(k) || 0);
      if (k === -span + 1) { ctx.moveTo(px, py); } else { ctx.lineTo(px, py); }
    }
    ctx.strokeStyle = "#2563eb"; ctx.lineWidth = 2; ctx.stroke(); ctx.lineWidth = 1;
    ctx.lineTo(x(0), y(0)); ctx.lineTo(x(-span + 1), y(0)); ctx.closePath();
    ctx.fillStyle = "rgba(37, 99, 235, 0.12)"; ctx.fill();
  }

  function drawMap(u) {
    var canvas = $("map"), c = fit(canvas), ctx = c.ctx, r = u.map.radius_m;
    var size = Math.min(c.w, c.h), cx = c.w / 2, cy = c.h / 2, scale = (size / 2 - 12) / r;
    ctx.clearRect(0, 0, c.w, c.h);
    ctx.fillStyle = "#f8fafc"; ctx.beginPath(); ctx.arc(cx, cy, r * scale, 0, 2 * Math.PI); ctx.fill();
    ctx.strokeStyle = "#cbd5e1"; ctx.fillStyle = "#94a3b8"; ctx.font = "11px system-ui, sans-serif";
    for (var ring = 1; ring <= 4; ring++) {
      ctx.beginPath(); ctx.arc(cx, cy, r * scale * ring / 4, 0, 2 * Math.PI); ctx.stroke();
      ctx.fillText(Math.round(r * ring / 4) + " m", cx + 3, cy - r * scale * ring / 4 + 12);
    }
    ctx.beginPath(); ctx.moveTo(cx - 6, cy); ctx.lineTo(cx + 6, cy); ctx.moveTo(cx, cy - 6); ctx.lineTo(cx, cy + 6); ctx.stroke();
    ctx.fillText("N", cx - 3, 10);
    var groups = u.positions || [], drawn = 0;
    groups.forEach(function (g) { drawn += g.xy.length / 2; });
    var dot = drawn > 2000 ? 1.5 : 3.5;
    groups.forEach(function (g) {
      var xy = g.xy;
      ctx.globalAlpha = drawn > 2000 ? 0.6 : 1; ctx.fillStyle = colorOf(g.make); ctx.beginPath();
      for (var i = 0; i + 1 < xy.length; i += 2) {
        var x = cx + xy[i] * scale, y = cy - xy[i + 1] * scale;
        ctx.moveTo(x + dot, y); ctx.arc(x, y, dot, 0, 2 * Math.PI);
      }
      ctx.fill();
    });
    ctx.globalAlpha = 1; ctx.lineWidth = 2;
    (u.table.rows || []).forEach(function (v) {
      var t = v.trail || [];
      if (!t.length) { return; }
      ctx.strokeStyle = colorOf(v.make); ctx.beginPath();
      t.forEach(function (p, i) {
        var x = cx + p[0] * scale, y = cy - p[1] * scale;
        if (i === 0) { ctx.moveTo(x, y); } else { ctx.lineTo(x, y); }
      });
      ctx.stroke();
      var end = t[t.length - 1];
      ctx.fillStyle = colorOf(v.make); ctx.beginPath(); ctx.arc(cx + end[0] * scale, cy - end[1] * scale, 4, 0, 2 * Math.PI); ctx.fill();
    });
    ctx.lineWidth = 1;
    canvas.dataset.drawn = String(drawn);
    canvas.dataset.omitted = String(u.positions_omitted || 0);
    var legend = $("legend");
    legend.textContent = "";
    groups.forEach(function (g) {
      var s = document.createElement("span"), sw = document.createElement("span");
      sw.className = "swatch"; sw.style.background = colorOf(g.make);
      s.appendChild(sw); s.appendChild(document.createTextNode(g.make + " (" + (g.xy.length / 2) + ")  "));
      legend.appendChild(s);
    });
    if (u.positions_omitted) {
      legend.appendChild(document.createTextNode("the " + drawn + " most recently seen of " + (drawn + u.positions_omitted) + " vehicles drawn"));
    }
  }

  function drawCounts(u) {
    var makes = $("makes").tBodies[0], models = $("models").tBodies[0];
    makes.textContent = ""; models.textContent = "";
    (u.makes || []).forEach(function (m) {
      var tr = document.createElement("tr");
      tr.dataset.make = m.make; tr.dataset.vehicles = String(m.vehicles); tr.dataset.events = String(m.events);
      var td = cell(tr, "");
      var sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = colorOf(m.make);
      td.appendChild(sw); td.appendChild(document.createTextNode(m.make));
      cell(tr, m.vehicles.toLocaleString("en-US")); cell(tr, m.events.toLocaleString("en-US"));
      makes.appendChild(tr);
    });
    (u.models || []).forEach(function (m) {
      var tr = document.createElement("tr");
      tr.dataset.make = m.make; tr.dataset.model = m.model;
      tr.dataset.vehicles = String(m.vehicles); tr.dataset.events = String(m.events);
      cell(tr, m.make); cell(tr, m.model, "text");
      cell(tr, m.vehicles.toLocaleString("en-US")); cell(tr, m.events.toLocaleString("en-US"));
      models.appendChild(tr);
    });
  }

  function drawHistogram(h) {
    var canvas = $("hist-" + h.sensor);
    if (!canvas) { return; }
    var c = fit(canvas), ctx = c.ctx, bins = h.bins || [], max = 1, total = 0;
    bins.forEach(function (b) { max = Math.max(max, b.count); total += b.count; });
    canvas.dataset.total = String(total);
    $("hist-title-" + h.sensor).textContent = h.sensor + ": " + total + " readings, minute of " + time(h.window_start);
    ctx.clearRect(0, 0, c.w, c.h);
    if (!bins.length) { return; }
    var bw = (c.w - 10) / bins.length;
    ctx.font = "10px system-ui, sans-serif";
    bins.forEach(function (b, i) {
      var bh = (c.h - 30) * b.count / max;
      ctx.fillStyle = "#0891b2";
      ctx.fillRect(5 + i * bw + 1, c.h - 16 - bh, Math.max(1, bw - 2), bh);
    });
    ctx.fillStyle = "#667085";
    var label = function (b) { return b.lower === null ? "below" : String(b.lower); };
    ctx.fillText(label(bins[0]), 5, c.h - 4);
    var lastLabel = label(bins[bins.length - 1]);
    ctx.fillText(lastLabel, c.w - 5 - ctx.measureText(lastLabel).width, c.h - 4);
    ctx.fillText("max " + max, 5, 10);
  }

  function drawTable(t) {
    var body = $("vehicles").tBodies[0];
    body.textContent = "";
    t.rows.forEach(function (v) {
      var tr = document.createElement("tr");
      tr.dataset.vin = v.vin;
      cell(tr, v.vin); cell(tr, v.make, "text"); cell(tr, v.model, "text");
      cell(tr, time(v.first_seen)); cell(tr, time(v.last_seen));
      cell(tr, v.events.toLocaleString("en-US")); cell(tr, (v.last_speed * 3.6).toFixed(1));
      body.appendChild(tr);
    });
    var info = $("page-info"), first = t.page * t.page_size;
    info.dataset.page = String(t.page); info.dataset.pages = String(t.pages); info.dataset.total = String(t.total);
    info.textContent = t.total
      ? "vehicles " + (first + 1) + "\u2013" + (first + t.rows.length) + " of " + t.total.toLocaleString("en-US") + " (page " + (t.page + 1) + " of " + t.pages + ")"
      : "no vehicles yet";
    $("prev").disabled = t.page === 0;
    $("next").disabled = t.page + 1 >= t.pages;
    query.page = t.page;
    Array.prototype.forEach.call($("vehicles").tHead.rows[0].cells, function (th) {
      th.classList.toggle("sorted", th.dataset.key === t.sort);
      th.classList.toggle("asc", th.dataset.key === t.sort && t.order === "asc");
    });
  }

  var token = new URLSearchParams(window.location.search).get("access_token");
  var streamPath = window.location.pathname.replace(/\/$/, "") + "/stream";
  function connect() {
    if (source) { source.close(); }
    var params = new URLSearchParams({ sort: query.sort, order: query.order, page: String(query.page), page_size: String(PAGE) });
    if (token) { params.set("access_token", token); }
    source = new EventSource(streamPath + "?" + params.toString());
    source.addEventListener("view", function (e) { apply(JSON.parse(e.data)); });
    source.onopen = function () { $("status").className = "live"; $("status").textContent = "live"; };
    source.onerror = function () { $("status").className = "down"; $("status").textContent = "reconnecting"; };
  }
  Array.prototype.forEach.call($("vehicles").tHead.rows[0].cells, function (th) {
    th.addEventListener("click", function () {
      if (query.sort === th.dataset.key) { query.order = query.order === "asc" ? "desc" : "asc"; } else { query.sort = th.dataset.key; query.order = th.dataset.key === "events" || th.dataset.key === "last_seen" ? "desc" : "asc"; }
      query.page = 0; connect();
    });
  });
  $("prev").addEventListener("click", function () { query.page = Math.max(0, query.page - 1); connect(); });
  $("next").addEventListener("click", function () { query.page += 1; connect(); });
  connect();
})();
</script>
</body>
</html>
"##;

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
        for external in ["http://", "https://", "src=", "<link", "@import", "url("] {
            assert!(!page.contains(external), "{external}");
        }
    }
}
