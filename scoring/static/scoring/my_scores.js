/* "My scores": the player's ledger, newest first, with a running total, and
 * a chart of their total and rank over time (uPlot, vendored from npm).
 *
 * The ledger comes from GET /api/players/me/ledger/ (its entries sum to
 * `total`; each carries the `balance` after it). The player's socket pushes
 * "adjustment" (a rules change re-scored their past) and "submission"
 * outcomes: an adjustment shows as a notice, and either reloads the newest
 * page. A snapshot (after every connect or reconnect) reloads it too, so
 * nothing missed while offline stays missing: an adjustment found in the
 * ledger that the page had not shown gets its notice then.
 */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("scores-config").textContent);
  const root = document.querySelector("main");
  const $ = (role) => root.querySelector(`[data-role="${role}"]`);
  const rows = $("ledger-rows");
  const more = root.querySelector('[data-action="more"]');
  const when = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "short" });

  let entries = []; // newest first, as loaded
  let next = null;
  let total = null;
  let chart = null;
  let loading = null;
  let loaded = false; // the first page was shown once: later adjustments are news
  const seen = new Set(); // entry ids shown
  const noticed = new Set(); // adjustment ids given a notice

  function signed(n) {
    return (n > 0 ? "+" : n < 0 ? "−" : "±") + Math.abs(n);
  }

  function cell(text, className) {
    const td = document.createElement("td");
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  function describe(entry) {
    if (entry.kind === "adjustment") {
      return `${entry.summary}${entry.reason ? ` — ${entry.reason}` : ""}`;
    }
    const difficulty = entry.difficulty ? ` · ${entry.difficulty}` : "";
    // The rules version matters once the rules have changed: before any change it is 0, and says nothing.
    const rules = entry.rules_version ? ` (rules v${entry.rules_version})` : "";
    return `${entry.task_title || entry.task}${difficulty}${rules}`;
  }

  function row(entry) {
    const tr = document.createElement("tr");
    tr.dataset.kind = entry.kind;
    tr.dataset.id = entry.id;
    const at = when.format(new Date(entry.submitted_at));
    tr.append(cell(at), cell(describe(entry)), cell(signed(entry.points), "num"), cell(String(entry.balance), "num"));
    return tr;
  }

  function render() {
    rows.replaceChildren(...entries.map(row));
    $("ledger-empty").hidden = entries.length > 0;
    more.hidden = !next;
    drawChart();
  }

  async function getJSON(url) {
    const response = await fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" });
    if (!response.ok) throw new Error(`${response.status} ${response.statusText}`);
    return response.json();
  }

  function adjustmentNotice(a) {
    if (noticed.has(a.id)) return;
    noticed.add(a.id);
    notice(`${a.summary}: ${signed(a.delta)}${a.reason ? ` (${a.reason})` : ""}`);
  }

  async function load(url, append) {
    const page = await getJSON(url);
    // An adjustment made while the socket was down (or its push lost)
    // still gets its notice, from the ledger itself.
    if (loaded && !append) {
      page.results.filter((e) => e.kind === "adjustment" && !seen.has(e.id))
        .forEach((e) => adjustmentNotice({ id: e.id, summary: e.summary, delta: e.points, reason: e.reason }));
    }
    page.results.forEach((e) => seen.add(e.id));
    loaded = true;
    entries = append ? entries.concat(page.results) : page.results;
    next = page.next;
    total = page.total;
    $("ledger-error").hidden = true;
    render();
  }

  function uncountedText(submission) {
    if (submission.status === "held") return window.GameOutcomes.held(submission);
    if (submission.status === "rejected") return window.GameOutcomes.rejected(submission);
    return "being scored";
  }

  let uncountedAsked = 0; // answers to older requests are dropped

  /** The newest submissions that are not (yet) in the ledger: pending,
   * held for review, or rejected (but not one staff sent through again).
   * The ledger lists only what counts. With ``expected`` (a pushed
   * outcome), ask again, backing off, until the list shows it: the push
   * comes a moment before the outcome is written on the submission. */
  async function loadUncounted(expected = null, attempt = 0) {
    const asked = ++uncountedAsked;
    let page;
    try {
      page = await getJSON(`${config.scoresUrl}?limit=50`);
    } catch (error) {
      return; // the ledger's own error says the connection is down
    }
    if (asked !== uncountedAsked) return;
    const shown = expected && page.results.find((s) => s.id === expected.id);
    if (expected && (!shown || shown.status !== expected.status) && attempt < 8) {
      await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** Math.min(attempt, 4)));
      if (asked === uncountedAsked) loadUncounted(expected, attempt + 1);
      return;
    }
    const retried = new Set(page.results.map((s) => s.retry_of).filter(Boolean));
    const items = page.results.filter((s) => s.status !== "applied" && !retried.has(s.id)).map((s) => {
      const li = document.createElement("li");
      li.dataset.status = s.status;
      li.dataset.id = s.id;
      li.textContent = `${when.format(new Date(s.submitted_at))} · ${s.task} · ${uncountedText(s)}`;
      return li;
    });
    $("uncounted").replaceChildren(...items);
    $("uncounted-section").hidden = items.length === 0;
  }

  /** Reload the newest page (and the rank), one reload at a time. */
  function reload() {
    if (loading) return loading.then(reload);
    loading = Promise.all([load(config.ledgerUrl, false), rankNow(), loadUncounted()])
      .then(([, rank]) => summary(rank))
      .catch((error) => {
        const message = $("ledger-error");
        message.textContent = `Could not load your ledger (${error.message}). It retries when the connection comes back.`;
        message.hidden = false;
      })
      .finally(() => { loading = null; });
    return loading;
  }

  /** Reload until the ledger sums to ``expected``, the total a push
   * announced. The push comes as the total is committed, a moment before
   * the outcomes the ledger lists are written: retry, backing off, for a
   * while. */
  async function reloadUntil(expected, attempt = 0) {
    await reload();
    if (expected === null || expected === undefined || total === expected || attempt >= 8) return;
    await new Promise((resolve) => setTimeout(resolve, 250 * 2 ** Math.min(attempt, 4)));
    await reloadUntil(expected, attempt + 1);
  }

  async function rankNow() {
    try {
      return (await getJSON(`${config.meUrl}?window=all`)).me?.rank ?? null;
    } catch (error) {
      return null; // the board is down: the total still shows
    }
  }

  function summary(rank) {
    const place = rank ? ` · rank #${rank} all time` : "";
    $("summary").textContent = `Your total: ${total ?? 0} points${place}`;
    $("summary").dataset.total = String(total ?? 0);
  }

  // --- the chart ---------------------------------------------------------------

  function series() {
    // The ledger's own order (when played, or made), oldest first: x grows.
    const ordered = entries.slice().reverse();
    return [
      ordered.map((e) => Date.parse(e.submitted_at) / 1000),
      ordered.map((e) => e.balance),
      ordered.map((e) => e.rank ?? null),
    ];
  }

  function drawChart() {
    const box = $("chart");
    const data = series();
    const caption = $("chart-caption");
    if (!window.uPlot || data[0].length === 0) {
      box.replaceChildren();
      chart = null;
      caption.textContent = "Your total and rank over time appear here once you have points.";
      return;
    }
    const first = data[1][0];
    const last = data[1][data[1].length - 1];
    const ranks = data[2].filter((r) => r !== null);
    caption.textContent = `Your total over time: from ${first} to ${last} points` +
      (ranks.length ? `; rank from #${ranks[0]} to #${ranks[ranks.length - 1]}.` : ".");
    const width = Math.max(280, box.clientWidth || root.clientWidth - 32);
    if (chart) {
      chart.setData(data);
      return;
    }
    chart = new window.uPlot({
      width,
      height: 220,
      scales: { x: { time: true }, rank: { dir: -1, range: (u, min, max) => [1, Math.max(max ?? 1, 2)] } },
      axes: [
        {},
        { label: "Points" },
        { scale: "rank", side: 1, label: "Rank", grid: { show: false },
          incrs: [1, 2, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 100000],
          values: (u, ticks) => ticks.map((t) => `#${t}`) },
      ],
      series: [
        {},
        { label: "Total", stroke: "#0a4fa3", width: 2, paths: window.uPlot.paths.stepped({ align: 1 }) },
        { label: "Rank", scale: "rank", stroke: "#a05a00", width: 1, dash: [4, 4], spanGaps: true,
          points: { show: true } },
      ],
    }, data, box);
    window.addEventListener("resize", () => {
      if (chart) chart.setSize({ width: Math.max(280, box.clientWidth), height: 220 });
    });
  }

  // --- live ----------------------------------------------------------------------

  function notice(text) {
    const item = document.createElement("p");
    item.className = "notice";
    item.dataset.role = "notice";
    const words = document.createElement("span");
    words.textContent = text;
    const dismiss = document.createElement("button");
    dismiss.type = "button";
    dismiss.className = "link-button";
    dismiss.setAttribute("aria-label", `Dismiss: ${text}`);
    dismiss.textContent = "Dismiss";
    dismiss.addEventListener("click", () => item.remove());
    item.append(words, " ", dismiss);
    $("notices").append(item);
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      reload();
    } else if (message.type === "adjustment" && message.adjustment) {
      adjustmentNotice(message.adjustment);
      reloadUntil(message.adjustment.total);
    } else if (message.type === "submission" && message.submission?.status === "applied") {
      reloadUntil(message.submission.total);
    } else if (message.type === "submission" && message.submission) {
      // Held, or rejected: not in the ledger, but the player should see it.
      loadUncounted({ id: message.submission.id, status: message.submission.status });
    }
  }

  more.addEventListener("click", () => {
    if (next) load(next, true).catch(() => { more.hidden = false; });
  });

  reload();
  if (window.WebSocket && window.GameSocket) {
    window.GameSocket.connect({
      path: () => `${config.socketPath}?window=all`,
      onMessage,
      onState() {},
    });
  }
})();
