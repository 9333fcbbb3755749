/* A leaderboard websocket that reconnects by itself.
 *
 * GameSocket.connect({path, onMessage, onState}) opens ws(s)://<host><path()>
 * and returns {reconnect, close}. onState(state, seconds) receives
 * "connecting", "live" (after a snapshot) or "reconnecting" (with the delay).
 * Backoff: 1 s doubling to 30 s with ±20 % jitter, so that a restarted server
 * is not hit by every browser at once; it resets only after a snapshot,
 * because a server that accepts and then drops us is not healthy.
 */
(function () {
  "use strict";

  const BASE_DELAY = 1000;
  const MAX_DELAY = 30000;

  function socketUrl(path) {
    const scheme = window.location.protocol === "https:" ? "wss:" : "ws:";
    return scheme + "//" + window.location.host + path;
  }

  function connect({ path, onMessage, onState }) {
    let socket = null;
    let attempt = 0;
    let timer = null;
    let stopped = false;

    function open() {
      clearTimeout(timer);
      onState("connecting");
      const current = new WebSocket(socketUrl(path()));
      socket = current;
      current.addEventListener("message", (event) => {
        if (current !== socket) return; // a message from a socket we replaced
        let message;
        try {
          message = JSON.parse(event.data);
        } catch (error) {
          return;
        }
        if (message.type === "snapshot") {
          attempt = 0;
          onState("live");
        }
        onMessage(message);
      });
      // "error" is always followed by "close", so close alone drives retries.
      current.addEventListener("close", () => {
        if (current === socket && !stopped) retryLater();
      });
    }

    function retryLater() {
      const delay = Math.min(MAX_DELAY, BASE_DELAY * 2 ** attempt) * (0.8 + Math.random() * 0.4);
      attempt += 1;
      onState("reconnecting", Math.max(1, Math.round(delay / 1000)));
      timer = setTimeout(open, delay);
    }

    function drop() {
      const old = socket;
      socket = null;
      if (old) old.close();
    }

    open();
    return {
      /** Connect again now, e.g. with a new path() after a tab switch. */
      reconnect() {
        stopped = false;
        drop();
        open();
      },
      close() {
        stopped = true;
        clearTimeout(timer);
        drop();
      },
    };
  }

  window.GameSocket = { connect };
})();
