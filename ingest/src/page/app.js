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
