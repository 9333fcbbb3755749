/* The spectator's activity: a feed of the latest applied completions, with
 * repeats coalesced ("Ann +50 ×3" for a player's same points within
 * COALESCE_MS), and completions per minute as a small bar chart (uPlot).
 *
 * GameActivity.attach({url, feed, empty, chart, summary}) returns
 * {delta(message)}. It loads GET /api/activity/ once, then takes each
 * delta's `activity` (newest first) and `applied` count. Items carry no id,
 * so player, task, time and points name one: an item both loaded and pushed
 * is shown once. The per-minute counts are read again every minute, which
 * also corrects a batch counted twice or missed around the first load.
 */
(function () {
  "use strict";

  const COALESCE_MS = 60000;
  const SHOWN = 12;
  const MINUTES = 30;
  const RELOAD_MS = 60000;
  const when = new Intl.DateTimeFormat(undefined, { hour: "2-digit", minute: "2-digit", second: "2-digit" });

  function attach({ url, feed, empty, chart, summary }) {
    let groups = []; // newest first: {player_id, player, points, tasks: Set, count, at}
    const seen = new Set();
    let buckets = []; // oldest first: {minute (ms), count}
    let plot = null;
    let loaded = false;
    let early = []; // pushed before the first load answered: shown after what it lists

    const keyOf = (a) => `${a.player_id}|${a.task}|${a.at}|${a.points}`;

    /** Add one completion newer than those shown. */
    function add(item) {
      const key = keyOf(item);
      if (seen.has(key)) return;
      seen.add(key);
      const at = Date.parse(item.at);
      const head = groups[0];
      if (head && head.player_id === String(item.player_id) && head.points === item.points &&
          Math.abs(at - head.at) <= COALESCE_MS) {
        head.count += 1;
        head.tasks.add(item.task_title || item.task);
        head.at = Math.max(head.at, at);
        return;
      }
      groups.unshift({
        player_id: String(item.player_id), player: item.player, points: item.points, count: 1,
        tasks: new Set([item.task_title || item.task]), at,
      });
      if (groups.length > SHOWN) groups = groups.slice(0, SHOWN);
      if (seen.size > 500) seen.clear(); // bounded; by then the old items are long out of the feed
    }

    function span(className, text) {
      const node = document.createElement("span");
      node.className = className;
      node.textContent = text;
      return node;
    }

    function renderFeed() {
      feed.replaceChildren(...groups.map((g) => {
        const li = document.createElement("li");
        li.dataset.role = "activity";
        li.dataset.playerId = g.player_id;
        li.dataset.count = String(g.count);
        const time = document.createElement("time");
        time.dateTime = new Date(g.at).toISOString();
        time.textContent = when.format(new Date(g.at));
        const sign = g.points < 0 ? "−" : "+";
        const parts = [span("who", g.player), " ", span("pts", `${sign}${Math.abs(g.points)}`)];
        if (g.count > 1) parts.push(" ", span("times", `×${g.count}`));
        if (g.tasks.size === 1) parts.push(" ", span("what", `· ${[...g.tasks][0]}`));
        li.append(...parts, " ", time);
        return li;
      }));
      empty.hidden = groups.length > 0;
    }

    // ---- per minute ---------------------------------------------------

    function count(applied, asOf) {
      const minute = Math.floor(Date.parse(asOf) / 60000) * 60000;
      if (!applied || Number.isNaN(minute) || !buckets.length) return;
      let last = buckets[buckets.length - 1];
      while (last.minute < minute) {
        last = { minute: last.minute + 60000, count: 0 };
        buckets.push(last);
      }
      buckets = buckets.slice(-MINUTES);
      const bucket = buckets.find((b) => b.minute === minute);
      if (bucket) bucket.count += applied;
    }

    function renderMinutes() {
      const total = buckets.reduce((n, b) => n + b.count, 0);
      const now = buckets.length ? buckets[buckets.length - 1].count : 0;
      summary.textContent = `Completions per minute: ${total} in the last ${buckets.length || MINUTES} minutes, ` +
        `${now} this minute.`;
      summary.dataset.total = String(total);
      if (!window.uPlot || !buckets.length) return;
      const data = [buckets.map((b) => b.minute / 1000), buckets.map((b) => b.count)];
      if (plot) {
        plot.setData(data);
        return;
      }
      plot = new window.uPlot({
        width: Math.max(260, chart.clientWidth || 300),
        height: 120,
        legend: { show: false },
        cursor: { show: false },
        scales: { x: { time: true }, y: { range: (u, min, max) => [0, Math.max(1, max)] } },
        axes: [{}, { size: 40 }],
        series: [{}, { label: "Completions", fill: "#0a4fa3", stroke: "#0a4fa3",
          paths: window.uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } }],
      }, data, chart);
      window.addEventListener("resize", () => plot.setSize({ width: Math.max(260, chart.clientWidth), height: 120 }));
    }

    async function load({ withFeed }) {
      try {
        const response = await fetch(`${url}?minutes=${MINUTES}`, { headers: { Accept: "application/json" } });
        if (!response.ok) return;
        const body = await response.json();
        buckets = body.per_minute.map((b) => ({ minute: Date.parse(b.minute), count: b.count }));
        if (withFeed) body.recent.slice().reverse().forEach(add);
        renderMinutes();
      } catch (error) {
        // The board works without its dashboard; the next reload tries again.
      } finally {
        if (withFeed) {
          loaded = true;
          early.forEach(add);
          early = [];
          renderFeed();
        }
      }
    }

    function delta(message) {
      const items = message.activity || [];
      if (items.length && !loaded) {
        early.push(...items.slice().reverse());
      } else if (items.length) {
        items.slice().reverse().forEach(add);
        renderFeed();
      }
      if (message.pipeline && message.pipeline.as_of) {
        count(message.applied, message.pipeline.as_of);
        renderMinutes();
      }
    }

    renderFeed();
    load({ withFeed: true });
    setInterval(() => load({ withFeed: false }), RELOAD_MS);
    return { delta };
  }

  window.GameActivity = { attach };
})();
