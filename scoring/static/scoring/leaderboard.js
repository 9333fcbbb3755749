/* The live leaderboard: a snapshot on every (re)connect replaces the board,
 * then deltas newer than the last applied seq re-render it from their `top`.
 * Around it: the pipeline's freshness (freshness.js), the viewer's rank
 * changes (notices.js), and the spectator's dashboard (activity.js,
 * history_chart.js), each fed from the same socket. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("leaderboard-config").textContent);
  const viewer = JSON.parse(document.getElementById("viewer-data").textContent); // null when anonymous
  const board = document.querySelector('[data-role="board"]');
  const empty = document.querySelector('[data-role="board-empty"]');
  const loading = document.querySelector('[data-role="board-loading"]');
  const status = document.querySelector('[data-role="connection-status"]');
  const reconnectButton = document.querySelector('[data-action="reconnect"]');
  const pinned = document.querySelector('[data-role="me"]');
  const meRow = document.querySelector('[data-role="me-row"]');
  const meMissing = document.querySelector('[data-role="me-missing"]');
  const panel = document.getElementById("board-panel");
  const tabs = Array.from(document.querySelectorAll('[role="tab"]'));
  const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)");
  const part = (role) => document.querySelector(`[data-role="${role}"]`);
  const PERIODS = { all: "", week: "this week", day: "today" }; // for notices: "now #2 this week"

  const freshness = window.GameFreshness.attach({
    element: part("freshness"), announcer: part("freshness-alert"), delayedAfterSeconds: config.delayedAfterSeconds,
  });
  const notices = window.GameNotices.create(part("rank-notices"));
  const activity = window.GameActivity.attach({
    url: config.activityUrl, feed: part("activity-feed"), empty: part("activity-empty"),
    chart: part("per-minute-chart"), summary: part("per-minute-summary"),
  });
  const topChart = window.GameHistoryChart.attach({
    url: config.historyUrl, chart: part("history-chart"), caption: part("history-caption"),
  });

  let windowName = config.window;
  let lastSeq = -1;
  let top = [];
  let me; // undefined until a snapshot (or the API) has told us

  const isViewer = (entry) => viewer !== null && String(entry.player_id) === viewer.id;

  function element(tag, className, text) {
    const node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function fillRow(row, entry) {
    row.dataset.playerId = entry.player_id;
    row.dataset.rank = entry.rank;
    const name = element("span", "name", entry.player);
    if (isViewer(entry)) name.append(element("span", "you", " (you)"));
    const total = element("span", "", String(entry.total));
    total.dataset.role = "total";
    const points = element("span", "points");
    points.append(total, element("span", "visually-hidden", " points"));
    row.replaceChildren(element("span", "rank", `#${entry.rank}`), name, points);
  }

  // ---- rendering ------------------------------------------------------

  function render() {
    // FLIP: remember where each row was, move it, then animate from there.
    const before = new Map();
    for (const row of board.children) {
      before.set(row.dataset.playerId, {
        top: row.getBoundingClientRect().top,
        total: row.querySelector('[data-role="total"]').textContent,
      });
    }
    const existing = new Map(Array.from(board.children, (row) => [row.dataset.playerId, row]));
    const rows = top.map((entry) => {
      const row = existing.get(String(entry.player_id)) || document.createElement("li");
      fillRow(row, entry);
      row.classList.toggle("is-me", isViewer(entry));
      if (isViewer(entry)) row.setAttribute("aria-current", "true");
      else row.removeAttribute("aria-current");
      return row;
    });
    board.replaceChildren(...rows);
    board.classList.remove("is-stale");
    board.setAttribute("aria-busy", "false");
    empty.hidden = rows.length > 0;
    if (!reducedMotion.matches) animate(rows, before);
    renderMe();
  }

  function animate(rows, before) {
    for (const row of rows) {
      if (!row.animate) return;
      const old = before.get(row.dataset.playerId);
      if (!old) {
        row.animate([{ opacity: 0 }, { opacity: 1 }], { duration: 300 });
        continue;
      }
      const dy = old.top - row.getBoundingClientRect().top;
      if (dy) row.animate([{ transform: `translateY(${dy}px)` }, { transform: "none" }], { duration: 400, easing: "ease-out" });
      if (old.total !== row.querySelector('[data-role="total"]').textContent) {
        row.classList.remove("bumped");
        void row.offsetWidth; // restart the CSS animation
        row.classList.add("bumped");
      }
    }
  }

  function renderMe() {
    const inTop = me && top.some((entry) => String(entry.player_id) === String(me.player_id));
    pinned.hidden = viewer === null || me === undefined || Boolean(inTop);
    if (pinned.hidden) return;
    meRow.hidden = !me;
    meMissing.hidden = Boolean(me);
    if (me) fillRow(meRow, me);
  }

  // ---- messages -------------------------------------------------------

  function applySnapshot(message) {
    lastSeq = message.seq;
    topChart.load(windowName);
    loading.hidden = true;
    top = message.entries || [];
    me = "me" in message ? message.me : undefined;
    render();
    if (viewer && me === undefined) fetchMe();
  }

  function applyDelta(message) {
    activity.delta(message); // the feed dedupes what the snapshot's board already counted
    if (message.seq <= lastSeq) return;
    lastSeq = message.seq;
    if (message.top) top = message.top;
    const mine = [...(message.changes || []), ...top].find(isViewer);
    if (mine) me = { ...(me || {}), ...mine };
    render();
    topChart.delta(message);
  }

  function onMessage(message) {
    if (message.window && message.window !== windowName) return;
    freshness.heard(message);
    if (message.type === "snapshot") applySnapshot(message);
    else if (message.type === "delta") applyDelta(message);
    else if (message.type === "rank.change") {
      notices.show(window.GameNotices.rankChangeText(message, PERIODS[windowName]));
      // Passed by someone, the viewer moved without a change of their own:
      // the pinned row says where they are now, as the notice does.
      if (me) {
        me = { ...me, rank: message.rank };
        renderMe();
      }
    }
  }

  async function fetchMe() {
    const asked = windowName;
    try {
      const response = await fetch(`${config.meUrl}?window=${encodeURIComponent(asked)}`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!response.ok || asked !== windowName) return;
      me = (await response.json()).me;
      renderMe();
    } catch (error) {
      // The pinned row is a nicety: the board works without it.
    }
  }

  function onState(state, seconds) {
    freshness.connection(state);
    status.dataset.state = state;
    status.textContent = { connecting: "Connecting…", live: "Live" }[state] || `Reconnecting in ${seconds}s…`;
    if (state !== "reconnecting" && document.activeElement === reconnectButton) {
      tabs.find((tab) => tab.getAttribute("aria-selected") === "true").focus();
    }
    reconnectButton.hidden = state !== "reconnecting";
    if (state !== "live") {
      board.classList.add("is-stale");
      board.setAttribute("aria-busy", "true");
    }
  }

  const socket = window.GameSocket.connect({
    path: () => `${config.socketPath}?window=${encodeURIComponent(windowName)}`,
    onMessage,
    onState,
  });
  reconnectButton.addEventListener("click", () => socket.reconnect());

  // ---- tabs (ARIA Authoring Practices: arrows move, selection follows focus) ----

  function select(tab) {
    for (const other of tabs) {
      other.setAttribute("aria-selected", String(other === tab));
      other.tabIndex = other === tab ? 0 : -1;
    }
    panel.setAttribute("aria-labelledby", tab.id);
    if (tab.dataset.window === windowName) return;
    windowName = tab.dataset.window;
    const url = new URL(window.location.href);
    url.searchParams.set("window", windowName);
    window.history.replaceState(null, "", url);
    // Never show one window's board under another window's tab.
    lastSeq = -1;
    top = [];
    me = undefined;
    render();
    empty.hidden = true;
    loading.hidden = false;
    socket.reconnect();
  }

  for (const tab of tabs) tab.addEventListener("click", () => select(tab));
  document.querySelector('[role="tablist"]').addEventListener("keydown", (event) => {
    const index = tabs.indexOf(document.activeElement);
    if (index < 0) return;
    const next = {
      ArrowRight: (index + 1) % tabs.length,
      ArrowLeft: (index - 1 + tabs.length) % tabs.length,
      Home: 0,
      End: tabs.length - 1,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    tabs[next].focus();
    select(tabs[next]);
  });
})();
