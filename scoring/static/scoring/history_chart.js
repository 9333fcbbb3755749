/* The top players' totals over time (CTFd's scoreboard graph): one stepped
 * line per player, cumulative points, drawn with uPlot.
 *
 * GameHistoryChart.attach({url, chart, caption}) returns {load(window),
 * delta(message)}. load() reads GET /api/leaderboard/history/ (the ledgers
 * of the top 10); a delta extends the lines from its `top` at its
 * `pipeline.as_of`, and a player new to the top makes it read the history
 * again (at most every RELOAD_AFTER_MS), since their line is not here yet.
 */
(function () {
  "use strict";

  const SHOWN = 10;
  const RELOAD_AFTER_MS = 5000;
  // A board left open all day gains a point a delta: past this many on one
  // line, read the (capped) history again rather than grow without bound.
  const MAX_POINTS = 400;
  const HEIGHT = 260;
  // Ten lines told apart by colour, each at least 4.5:1 on white.
  const COLOURS = ["#0a4fa3", "#a05a00", "#0a6b2a", "#a00000", "#6a3d9a",
    "#00707a", "#7a5c00", "#b0256b", "#4a4a4a", "#3d5a80"];

  function attach({ url, chart, caption }) {
    let windowName = null;
    let series = []; // best first: {player_id, player, base, truncated, points: [[seconds, total]]}
    let since = null;
    let plot = null;
    let plotted = ""; // the players the plot was built for
    let reloadTimer = null;
    let asked = 0; // the latest load's number: an older answer is dropped
    const colours = new Map(); // player id -> colour: a line keeps its colour when ranks change

    function colourOf(playerId) {
      if (!colours.has(playerId)) {
        const used = new Set(series.map((s) => colours.get(s.player_id)).filter(Boolean));
        colours.set(playerId, COLOURS.find((c) => !used.has(c)) || COLOURS[colours.size % COLOURS.length]);
      }
      return colours.get(playerId);
    }

    async function load(name) {
      windowName = name;
      clearTimeout(reloadTimer);
      reloadTimer = null;
      const mine = ++asked;
      try {
        const response = await fetch(`${url}?window=${encodeURIComponent(name)}`,
          { headers: { Accept: "application/json" } });
        if (!response.ok || mine !== asked) return;
        const body = await response.json();
        if (mine !== asked) return;
        since = body.since ? Date.parse(body.since) / 1000 : null;
        series = body.series.map((s) => ({
          player_id: String(s.player_id), player: s.player, base: s.base, truncated: s.truncated,
          points: s.points.map((p) => [Date.parse(p.at) / 1000, p.total]),
        }));
        draw();
      } catch (error) {
        if (mine === asked) caption.textContent = "The chart of the top players could not be loaded.";
      }
    }

    function reloadSoon() {
      if (reloadTimer || windowName === null) return;
      reloadTimer = setTimeout(() => load(windowName), RELOAD_AFTER_MS);
    }

    function delta(message) {
      const at = message.pipeline && message.pipeline.as_of ? Date.parse(message.pipeline.as_of) / 1000 : Date.now() / 1000;
      const top = (message.top || []).slice(0, SHOWN);
      const byId = new Map(series.map((s) => [s.player_id, s]));
      let changed = false;
      for (const entry of top) {
        const line = byId.get(String(entry.player_id));
        if (!line) {
          reloadSoon();
          continue;
        }
        const last = line.points[line.points.length - 1];
        if (!last || last[1] !== entry.total) {
          line.points.push([Math.max(at, last ? last[0] : at), entry.total]);
          changed = true;
        }
      }
      const order = new Map(top.map((e, i) => [String(e.player_id), i]));
      if (top.length && series.some((s) => !order.has(s.player_id))) reloadSoon(); // someone left the top
      series.sort((a, b) => (order.get(a.player_id) ?? SHOWN) - (order.get(b.player_id) ?? SHOWN));
      if (series.some((s) => s.points.length > MAX_POINTS)) reloadSoon();
      if (changed) draw();
    }

    /** uPlot's aligned data: one x array (every moment a line steps), and
     * each line's total at each x, carried forward. */
    function aligned() {
      const xs = new Set(series.flatMap((s) => s.points.map((p) => p[0])));
      if (since !== null && xs.size) xs.add(since);
      const x = [...xs].sort((a, b) => a - b);
      const ys = series.map((s) => {
        let i = 0;
        let value = s.truncated ? null : s.base; // before what was read, a capped line is unknown
        return x.map((t) => {
          while (i < s.points.length && s.points[i][0] <= t) value = s.points[i++][1];
          return value;
        });
      });
      return [x, ...ys];
    }

    function describe() {
      if (!series.length) return "No scores in this period yet: the chart of the top players starts with the first.";
      const leader = series[0];
      const total = leader.points.length ? leader.points[leader.points.length - 1][1] : leader.base;
      const others = series.length > 1 ? `, ahead of ${series.slice(1, 3).map((s) => s.player).join(" and ")}` : "";
      return `Top ${series.length} totals over time: ${leader.player} leads with ${total} points${others}.`;
    }

    function draw() {
      caption.textContent = describe();
      caption.dataset.players = String(series.length);
      const data = aligned();
      const players = series.map((s) => s.player_id).join(",");
      if (!window.uPlot || data[0].length === 0) {
        if (plot) plot.destroy();
        plot = null;
        plotted = "";
        chart.replaceChildren();
        return;
      }
      if (plot && plotted === players) {
        plot.setData(data);
        return;
      }
      if (plot) plot.destroy();
      plotted = players;
      plot = new window.uPlot({
        width: Math.max(280, chart.clientWidth || 600),
        height: HEIGHT,
        scales: { x: { time: true } },
        axes: [{}, { label: "Points", size: 60 }],
        series: [{}, ...series.map((s) => ({
          label: s.player, stroke: colourOf(s.player_id), width: 2,
          paths: window.uPlot.paths.stepped({ align: 1 }), points: { show: false },
        }))],
      }, data, chart);
    }

    window.addEventListener("resize", () => {
      if (plot) plot.setSize({ width: Math.max(280, chart.clientWidth), height: HEIGHT });
    });
    return { load, delta };
  }

  window.GameHistoryChart = { attach };
})();
