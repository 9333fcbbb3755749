/* The freshness line: "updated 4 s ago · pipeline lag 120 ms", ticking each
 * second from the last batch's `as_of`; "delayed: no word from the scoring
 * pipeline for 45 s" once no heartbeat or delta has come for longer than
 * the server's PIPELINE_DELAYED_AFTER_SECONDS; back to normal with the next
 * one.
 *
 * GameFreshness.attach({element, announcer, delayedAfterSeconds}) returns
 * {heard(message), connection(state)}: hand it every socket message and
 * GameSocket state. `announcer` is a polite live region told only of the
 * changes into and out of "delayed": a line that ticks every second would
 * talk over everything else.
 *
 * Server times are put on this browser's clock with the smallest
 * (received - sent) seen: a snapshot's `now`, a heartbeat's `at` and a
 * delta's `as_of` are the server's "now" as it sent them, so that is the clocks' offset plus the
 * fastest delivery, and "N s ago" stays right on a machine whose clock is off.
 */
(function () {
  "use strict";

  const TICK_MS = 1000;

  function ago(ms) {
    const s = Math.max(0, Math.round(ms / 1000));
    if (s < 120) return `${s} s`;
    if (s < 7200) return `${Math.round(s / 60)} min`;
    return `${Math.round(s / 3600)} h`;
  }

  function attach({ element, announcer, delayedAfterSeconds }) {
    const limitMs = delayedAfterSeconds * 1000;
    let asOf = null; // the last batch, on this browser's clock (ms)
    let lagMs = null;
    let lastWord = null; // the last heartbeat or delta, on this browser's clock (ms)
    let offset = null; // this browser's clock minus the server's (ms)
    let connected = false;
    let connectedAt = Date.now();
    let delayed = false;

    const local = (iso) => {
      const server = Date.parse(iso);
      return Number.isNaN(server) ? null : server + (offset ?? 0);
    };

    function sample(iso) {
      const server = Date.parse(iso);
      if (Number.isNaN(server)) return;
      const estimate = Date.now() - server;
      offset = offset === null ? estimate : Math.min(offset, estimate);
    }

    function takePipeline(pipeline) {
      if (!pipeline) return;
      if (pipeline.as_of) asOf = local(pipeline.as_of);
      if (pipeline.lag_ms !== null && pipeline.lag_ms !== undefined) lagMs = pipeline.lag_ms;
    }

    function heard(message) {
      if (message.type === "snapshot") {
        if (message.now) sample(message.now); // the server's clock, before reading its times
        takePipeline(message.pipeline);
        lastWord = message.heartbeat_at ? local(message.heartbeat_at) : null;
      } else if (message.type === "delta" || message.type === "heartbeat") {
        const sent = message.type === "heartbeat" ? message.at : message.pipeline && message.pipeline.as_of;
        if (sent) sample(sent);
        takePipeline(message.pipeline);
        lastWord = Date.now();
      } else {
        return;
      }
      render();
    }

    function connection(state) {
      const wasConnected = connected;
      connected = state === "live";
      if (connected && !wasConnected) connectedAt = Date.now();
      render();
    }

    function announce(nowDelayed) {
      if (nowDelayed === delayed) return;
      delayed = nowDelayed;
      announcer.textContent = nowDelayed
        ? "Scores are delayed: no word from the scoring pipeline."
        : "Scores are live again.";
    }

    function render() {
      const now = Date.now();
      const updated = asOf === null ? null : `updated ${ago(now - asOf)} ago`;
      if (!connected) {
        element.dataset.state = "offline";
        element.textContent = updated ? `${updated} · not connected` : "not connected";
        return; // the connection status says why; the pipeline may be fine
      }
      const quiet = now - (lastWord ?? connectedAt);
      if (quiet > limitMs) {
        element.dataset.state = "delayed";
        element.textContent = `delayed: no word from the scoring pipeline for ${ago(quiet)}` +
          (updated ? ` · ${updated}` : "");
        announce(true);
        return;
      }
      announce(false);
      if (updated === null) {
        element.dataset.state = "waiting";
        element.textContent = "pipeline running · no scores processed yet";
        return;
      }
      element.dataset.state = "fresh";
      element.textContent = updated + (lagMs === null ? "" : ` · pipeline lag ${lagMs} ms`);
    }

    render();
    setInterval(render, TICK_MS);
    return { heard, connection };
  }

  window.GameFreshness = { attach };
})();
