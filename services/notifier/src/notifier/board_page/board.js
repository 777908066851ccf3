// The OMS operations board: renders notifier's /board/stream snapshots and pages
// through /board/api/...; no framework, no build step. Text from the server is always
// set as textContent (never parsed as HTML).
"use strict";

(function () {
  const PAGE = 10;
  const $ = (id) => document.getElementById(id);

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === null || value === undefined || value === false) continue;
      if (key === "text") node.textContent = String(value);
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : String(value));
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function replace(node, children) {
    node.replaceChildren(...children.filter((c) => c !== null && c !== undefined));
  }

  const shortId = (id) => String(id).slice(0, 8);
  const when = (iso) => (iso ? new Date(iso).toLocaleString() : "");

  function orderLink(id, label) {
    return el("a", { href: "/board/orders/" + encodeURIComponent(id), class: "order-link" }, label || shortId(id));
  }

  // ---- operator identity (sent as X-Operator on operator actions) ----------------
  const operatorInput = $("operator");
  operatorInput.value = localStorage.getItem("oms.operator") || "";
  operatorInput.addEventListener("change", () => {
    localStorage.setItem("oms.operator", operatorInput.value.trim());
  });

  // ---- bearer token (AUTH_MODE=jwt): kept for this tab only, sent on every call -------
  const tokenInput = $("token");
  tokenInput.value = sessionStorage.getItem("oms.token") || "";
  tokenInput.addEventListener("change", () => {
    sessionStorage.setItem("oms.token", tokenInput.value.trim());
    window.location.reload();
  });
  const token = () => tokenInput.value.trim();

  // fetch with the token when there is one (the operator's identity in jwt mode).
  function api(url, options) {
    const headers = Object.assign({}, (options && options.headers) || {});
    if (token()) headers.Authorization = `Bearer ${token()}`;
    return fetch(url, Object.assign({}, options || {}, { headers }));
  }

  function operator() {
    let name = operatorInput.value.trim();
    if (!name) {
      name = (window.prompt("Your name (recorded with the action):") || "").trim();
      operatorInput.value = name;
      localStorage.setItem("oms.operator", name);
    }
    return name;
  }

  // ---- counts and throughput -------------------------------------------------------
  function renderCounts(counts) {
    $("total-orders").textContent = String(counts.total);
    const channels = Object.keys(counts.by_channel);
    const table = $("counts");
    replace(table.tHead, [
      el("tr", {}, el("th", { text: "state" }), ...channels.map((c) => el("th", { text: c })), el("th", { text: "all" })),
    ]);
    const rows = Object.entries(counts.cells).map(([state, cells]) =>
      el(
        "tr",
        { "data-state": state },
        el("th", { text: state }),
        ...channels.map((c) => el("td", { "data-state": state, "data-channel": c, text: cells[c] || "" })),
        el("td", { class: "sum", "data-state-total": state, text: counts.by_state[state] })
      )
    );
    rows.push(
      el(
        "tr",
        { class: "sum" },
        el("th", { text: "all" }),
        ...channels.map((c) => el("td", { "data-channel-total": c, text: counts.by_channel[c] })),
        el("td", { text: counts.total })
      )
    );
    replace(table.tBodies[0], rows);
  }

  function renderSparkline(throughput) {
    const values = throughput.per_minute;
    const svg = $("sparkline");
    const max = Math.max(1, ...values);
    const step = 300 / Math.max(1, values.length - 1);
    const points = values.map((v, i) => `${(i * step).toFixed(1)},${(38 - (v / max) * 36).toFixed(1)}`).join(" ");
    const ns = "http://www.w3.org/2000/svg";
    const line = document.createElementNS(ns, "polyline");
    line.setAttribute("points", points);
    line.setAttribute("class", "spark");
    svg.replaceChildren(line);
    svg.dataset.values = values.join(",");
    const last = values[values.length - 1] || 0;
    $("throughput-label").textContent = `${last} orders this minute, ${values.reduce((a, b) => a + b, 0)} in ${throughput.minutes} min`;
  }

  // ---- SLA countdowns --------------------------------------------------------------
  function countdownText(deadline) {
    const left = Math.floor((new Date(deadline).getTime() - Date.now()) / 1000);
    const abs = Math.abs(left);
    const h = Math.floor(abs / 3600), m = Math.floor((abs % 3600) / 60), s = abs % 60;
    const text = (h ? `${h}h ` : "") + `${m}m ${String(s).padStart(2, "0")}s`;
    return { left, text: left >= 0 ? `${text} left` : `overdue ${text}` };
  }

  function tickCountdowns() {
    for (const node of document.querySelectorAll(".countdown[data-deadline]")) {
      const { left, text } = countdownText(node.dataset.deadline);
      node.textContent = text;
      node.classList.toggle("overdue", left < 0);
    }
  }

  function renderSla(page) {
    $("sla-total").textContent = String(page.total);
    replace(
      $("sla-list"),
      page.items.map((item) =>
        el(
          "li",
          { class: "sla " + (item.sla_status || ""), "data-order-id": item.order_id },
          orderLink(item.order_id, item.channel_order_id || shortId(item.order_id)),
          el("span", { class: "muted", text: ` ${item.channel || ""} · ${item.sla_stage || ""} · ${item.state || ""} ` }),
          el("span", { class: "countdown", "data-deadline": item.sla_deadline, "data-testid": "countdown" })
        )
      )
    );
    tickCountdowns();
  }

  // order-svc's running clocks: fetched through notifier, at most every few seconds.
  let clocksFetchedAt = 0;
  async function refreshClocks() {
    if (Date.now() - clocksFetchedAt < 5000) return;
    clocksFetchedAt = Date.now();
    let answer;
    try {
      const response = await api(`/board/api/sla/open?limit=${PAGE}`);
      answer = response.ok ? await response.json() : { available: false, reason: `error ${response.status}` };
    } catch (e) {
      answer = { available: false, reason: "notifier unreachable" };
    }
    if (!answer.available) {
      $("clocks-note").textContent = `(unavailable: ${answer.reason})`;
      replace($("clock-list"), []);
      return;
    }
    $("clocks-note").textContent = `(${answer.data.total} open)`;
    replace(
      $("clock-list"),
      answer.data.items.map((item) =>
        el(
          "li",
          { class: "sla clock" + (item.breached ? " breached" : item.at_risk ? " at_risk" : ""), "data-order-id": item.order_id },
          orderLink(item.order_id, item.channel_order_id || shortId(item.order_id)),
          el("span", { class: "muted", text: ` ${item.channel || ""} · ${item.stage} · ${item.state || ""} ` }),
          el("span", { class: "countdown", "data-deadline": item.deadline, "data-testid": "countdown" })
        )
      )
    );
    tickCountdowns();
  }

  // ---- exception queue -------------------------------------------------------------
  function renderCauses(byCause) {
    const chips = Object.entries(byCause).map(([cause, n]) =>
      el(
        "button",
        {
          class: "chip" + (lists.exceptions.cause === cause ? " active" : ""),
          "data-cause": cause,
          onclick: () => {
            lists.exceptions.cause = lists.exceptions.cause === cause ? null : cause;
            lists.exceptions.offset = 0;
            refreshLists();
          },
        },
        `${cause} `,
        el("b", { text: n })
      )
    );
    replace($("causes"), chips);
  }

  function renderExceptions(page) {
    $("exceptions-total").textContent = String(page.total);
    replace(
      $("exception-list"),
      page.items.map((item) =>
        el(
          "li",
          { class: "exception", "data-order-id": item.order_id, "data-cause": item.cause },
          el("span", { class: "tag", text: item.cause }),
          " ",
          orderLink(item.order_id, item.channel_order_id || shortId(item.order_id)),
          el("span", { class: "muted", text: ` ${item.channel || ""} · ${item.state || ""} · since ${when(item.raised_at)}` }),
          item.detail ? el("div", { class: "detail", text: item.detail }) : null
        )
      )
    );
  }

  // ---- alerts ----------------------------------------------------------------------
  async function acknowledge(alert, button) {
    const name = token() ? "you (token)" : operator();
    const error = $("ack-error");
    if (!name) {
      error.textContent = "Enter your name to acknowledge alerts.";
      error.hidden = false;
      return;
    }
    button.disabled = true;
    try {
      const response = await api(`/alerts/${encodeURIComponent(alert.id)}/ack`, {
        method: "POST",
        headers: { "X-Operator": name },
      });
      if (!response.ok) {
        let detail = response.statusText;
        try { detail = (await response.json()).detail || detail; } catch (e) { /* not JSON */ }
        throw new Error(`${response.status} ${detail}`);
      }
      let by = name;
      try { by = (await response.json()).acknowledged_by || name; } catch (e) { /* not JSON */ }
      error.hidden = true;
      const row = button.closest("li");
      row.classList.add("acknowledged");
      row.dataset.state = "acknowledged";
      button.replaceWith(el("span", { class: "acked", "data-testid": "acked", text: `acknowledged by ${by}` }));
    } catch (e) {
      error.textContent = `Could not acknowledge: ${e.message}`;
      error.hidden = false;
      button.disabled = false;
    }
  }

  function renderAlerts(alerts, lowStock, paused) {
    $("alerts-total").textContent = String(alerts.total);
    replace(
      $("alert-list"),
      alerts.items.map((alert) => {
        const ack = el("button", { class: "ack", "data-testid": "ack", text: "Acknowledge" });
        ack.addEventListener("click", () => acknowledge(alert, ack));
        return el(
          "li",
          { class: "alert " + alert.severity, "data-alert-id": alert.id, "data-alert-type": alert.alert_type, "data-subject": alert.subject, "data-state": alert.state },
          el("span", { class: "tag", text: alert.alert_type }),
          " ",
          el("span", { class: "message", text: alert.message }),
          el("span", { class: "muted", text: ` · ${when(alert.raised_at)} ` }),
          ack
        );
      })
    );
    replace(
      $("low-stock-list"),
      lowStock.map((s) =>
        el("li", { class: "low-stock", "data-sku": s.sku, text: `${s.sku}: ${s.available} available, safety stock ${s.safety_stock}` })
      )
    );
    replace(
      $("paused-list"),
      paused.map((p) =>
        el("li", { class: "paused", "data-sku": p.sku, "data-channel": p.channel, text: `${p.sku} paused on ${p.channel} (${p.reason})` })
      )
    );
  }

  function renderCredit(page) {
    $("credit-total").textContent = String(page.total);
    replace(
      $("credit-list"),
      page.items.map((item) =>
        el(
          "li",
          { class: "credit", "data-order-id": item.order_id },
          orderLink(item.order_id, item.channel_order_id || shortId(item.order_id)),
          el("span", { class: "muted", text: ` ${item.channel || ""} · ${item.credit_reason || ""} · ${when(item.credit_degraded_at)}` })
        )
      )
    );
  }

  // ---- paging: page 1 comes with the snapshot, other pages from /board/api ---------
  const lists = {
    sla: { offset: 0, url: () => `/board/api/sla?limit=${PAGE}&offset=${lists.sla.offset}`, render: renderSla },
    exceptions: {
      offset: 0,
      cause: null,
      url: () =>
        `/board/api/exceptions?limit=${PAGE}&offset=${lists.exceptions.offset}` +
        (lists.exceptions.cause ? `&cause=${encodeURIComponent(lists.exceptions.cause)}` : ""),
      render: renderExceptions,
    },
    credit: { offset: 0, url: () => `/board/api/credit-degraded?limit=${PAGE}&offset=${lists.credit.offset}`, render: renderCredit },
  };
  let latest = null;

  function renderPager(name, total) {
    const list = lists[name];
    const nav = document.querySelector(`.pager[data-list="${name}"]`);
    const prev = el("button", { text: "‹ newer", disabled: list.offset === 0 });
    const next = el("button", { text: "older ›", disabled: list.offset + PAGE >= total });
    prev.addEventListener("click", () => { list.offset = Math.max(0, list.offset - PAGE); refreshLists(); });
    next.addEventListener("click", () => { list.offset += PAGE; refreshLists(); });
    const last = Math.min(total, list.offset + PAGE);
    replace(nav, [prev, el("span", { text: total ? ` ${list.offset + 1}–${last} of ${total} ` : " none " }), next]);
  }

  async function refreshLists() {
    if (!latest) return;
    const fromSnapshot = {
      sla: latest.sla,
      exceptions: latest.exceptions,
      credit: latest.credit_degraded,
    };
    for (const [name, list] of Object.entries(lists)) {
      let page = fromSnapshot[name];
      if (list.offset > 0 || list.cause) {
        try {
          const response = await api(list.url());
          if (response.ok) page = await response.json();
        } catch (e) { /* keep the snapshot's page */ }
      }
      list.render(page);
      renderPager(name, page.total);
    }
    renderCauses(latest.exceptions.by_cause);
  }

  function render(snapshot) {
    latest = snapshot;
    renderCounts(snapshot.counts);
    renderSparkline(snapshot.throughput);
    renderAlerts(snapshot.alerts, snapshot.low_stock, snapshot.paused_channels);
    refreshLists();
    refreshClocks();
    document.body.dataset.version = String((Number(document.body.dataset.version) || 0) + 1);
  }

  function connect() {
    const live = $("live");
    if (token()) {
      // EventSource cannot send a header: with a token the board polls the snapshot.
      const poll = async () => {
        try {
          const response = await api("/board/api/snapshot");
          if (!response.ok) throw new Error(String(response.status));
          live.textContent = "live (polling)";
          live.className = "live on";
          render(await response.json());
        } catch (e) {
          live.textContent = `not allowed or unreachable (${e.message})`;
          live.className = "live off";
        }
      };
      poll();
      setInterval(poll, 2000);
      return;
    }
    const source = new EventSource("/board/stream");
    source.addEventListener("open", () => { live.textContent = "live"; live.className = "live on"; });
    source.addEventListener("error", () => { live.textContent = "reconnecting…"; live.className = "live off"; });
    source.addEventListener("snapshot", (event) => render(JSON.parse(event.data)));
  }

  // ---- the order page ----------------------------------------------------------------
  function peer(answer, show) {
    if (!answer.available) return el("p", { class: "muted unavailable", text: `unavailable: ${answer.reason}` });
    return show(answer.data);
  }

  function describe(entry) {
    const p = entry.payload;
    switch (entry.event_type) {
      case "OrderStatusChanged": return `${p.from_state || "—"} → ${p.to_state}` + (p.reason ? ` (${p.reason})` : "");
      case "OrderExceptionRaised": return `exception ${p.cause}` + (p.detail ? `: ${p.detail}` : "");
      case "OrderExceptionResolved": return `exception ${p.cause} resolved: ${p.action} by ${p.actor}`;
      case "SlaAtRisk": case "SlaBreached": return `${p.stage} deadline ${when(p.deadline)}`;
      case "CreditCheckDegraded": return `credit check ${p.reason}`;
      case "AlertRaised": return p.message;
      default: return "";
    }
  }

  async function showOrder(orderId) {
    $("board-view").hidden = true;
    $("order-view").hidden = false;
    $("live").hidden = true;
    $("order-title").textContent = orderId;
    const response = await api(`/board/api/orders/${encodeURIComponent(orderId)}`);
    if (!response.ok) {
      const error = $("order-error");
      error.textContent = response.status === 404 ? "No service knows this order." : `Error ${response.status}`;
      error.hidden = false;
      return;
    }
    const page = await response.json();
    const board = page.board || {};
    const order = page.order.available ? page.order.data : {};
    if (board.channel_order_id || order.channel_order_id) $("order-title").textContent = `${board.channel_order_id || order.channel_order_id} (${orderId})`;
    const facts = [
      ["state", board.state || order.state],
      ["channel", board.channel || order.channel],
      ["total", board.total ? `${board.total} ${board.currency || ""}` : order.total],
      ["priority", board.priority || order.priority],
      ["SLA", board.sla_deadline ? `${board.sla_stage} ${board.sla_status} (deadline ${when(board.sla_deadline)})` : null],
      ["credit", board.credit_degraded ? `degraded (${board.credit_reason})` : null],
    ].filter(([, v]) => v);
    replace($("order-summary"), facts.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", { "data-fact": k, text: v })]));
    replace(
      $("order-timeline"),
      page.timeline.map((entry) =>
        el("li", { "data-event-type": entry.event_type }, el("time", { text: when(entry.occurred_at) }), " ", el("b", { text: entry.event_type }), " ", describe(entry))
      )
    );
    const routing = page.routing;
    replace($("order-routing"), [
      routing
        ? el("ul", {}, ...routing.shipments.map((s) => el("li", { text: `${s.warehouse}: lines ${s.line_nos.join(", ")} (score ${s.score}${s.distance_km != null ? `, ${s.distance_km} km` : ""}${s.shipping_cost != null ? `, cost ${s.shipping_cost}` : ""})` })))
        : el("p", { class: "muted", text: "not routed yet" }),
    ]);
    replace($("order-exceptions"), page.exceptions.map((x) => el("li", { text: `${x.cause}: ${x.resolved_at ? "resolved (" + x.resolution + ")" : "open"}` + (x.detail ? ` — ${x.detail}` : "") })));
    replace($("order-customer"), [
      peer(page.customer, (c) =>
        el("dl", { class: "summary" },
          el("dt", { text: "name" }), el("dd", { text: c.name || "—" }),
          el("dt", { text: "orders" }), el("dd", { text: `${c.orders ?? "?"} (value ${c.orders_value ?? "?"}, cancelled ${c.cancelled ?? 0})` }),
          el("dt", { text: "tags" }), el("dd", { text: (c.tags || []).join(", ") || "—" }),
          el("dt", { text: "complaints" }), el("dd", { text: c.complaints })
        )
      ),
    ]);
    replace($("order-picklist"), [
      peer(page.picklist, (p) =>
        el("div", {},
          ...(p.parcels || []).map((parcel) =>
            el("div", { class: "parcel" },
              el("b", { text: parcel.warehouse || "no warehouse yet" }),
              el("ul", {}, ...parcel.lines.map((l) => el("li", { text: `line ${l.line_no}: ${l.sku} × ${l.qty}` })))
            )
          ),
          el("dl", { class: "summary" },
            el("dt", { text: "notes" }), el("dd", { "data-testid": "picklist-notes", text: p.notes || "—" }),
            el("dt", { text: "requirements" }), el("dd", { text: (p.delivery_requirements || []).join(", ") || "—" }),
            el("dt", { text: "tags" }), el("dd", { text: (p.tags || []).join(", ") || "—" })
          )
        )
      ),
    ]);
  }

  // ---- start -------------------------------------------------------------------------
  setInterval(tickCountdowns, 1000);
  const match = window.location.pathname.match(/^\/board\/orders\/([0-9a-fA-F-]{36})$/);
  if (match) showOrder(match[1]);
  else connect();
})();
