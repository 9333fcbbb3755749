/* The play page: a challenge per task card, issued by the server
 * (POST /api/tasks/<slug>/challenges/), answered here and checked there.
 * The page never holds an answer: it sends them all at the end, and the
 * server's 422 says which were wrong, after which a fresh challenge starts.
 * The outcome arrives over the websocket, or by polling when no message
 * comes within a few seconds. */
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("play-config").textContent);
  const player = JSON.parse(document.getElementById("player-data").textContent);
  const template = document.getElementById("challenge-template");
  const myScore = document.querySelector('[data-role="my-score"]');
  const rankNotices = window.GameNotices.create(document.querySelector('[data-role="rank-notices"]'));

  const POLL_AFTER_MS = 3000;
  const POLL_EVERY_MS = 1000;
  const POLL_MAX = 120;
  const FINAL = ["applied", "rejected"];
  // Held for review: staff decide, maybe much later; the socket says when.
  const WAITING = ["held"];

  // ---- per-card state -------------------------------------------------

  const states = new Map(); // task slug -> state
  const cardsBySubmission = new Map(); // submission id -> card
  const early = new Map(); // submission id -> socket message that beat the POST response

  function stateFor(card) {
    const slug = card.dataset.task;
    if (!states.has(slug)) {
      states.set(slug, {
        key: null, body: null, sending: false, shownId: null, watching: false, timer: null, polls: 0, starting: false,
      });
    }
    return states.get(slug);
  }

  const part = (card, selector) => card.querySelector(selector);

  function say(element, text, tone) {
    element.textContent = text;
    if (tone) element.dataset.tone = tone;
  }

  // ---- the challenge --------------------------------------------------

  function challengesUrl(card) {
    return config.challengesUrl.replace("__slug__", encodeURIComponent(card.dataset.task));
  }

  // ``notice``: what to say about the attempt this one replaces, if any.
  async function startChallenge(card, notice = "") {
    const state = stateFor(card);
    if (state.starting) return;
    state.starting = true;
    showError(card, notice);
    if (!notice) part(card, '[data-role="attempt"]').hidden = true;
    let response;
    try {
      response = await fetch(challengesUrl(card), {
        method: "POST",
        credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      });
    } catch (error) {
      response = null;
    }
    state.starting = false;
    if (!response || response.status !== 201) {
      showError(card, response ? await errorMessage(response) : "Could not reach the server. Try again.");
      const playButton = part(card, '[data-action="play"]');
      playButton.hidden = false; // after a refused run it was hidden: the card must offer a way on
      playButton.focus();
      return;
    }
    play(card, await response.json(), performance.now());
  }

  function play(card, challenge, receivedAt) {
    const questions = challenge.questions;
    const answers = [];
    const form = template.content.firstElementChild.cloneNode(true);
    const input = form.elements.answer;
    const question = part(form, '[data-role="question"]');
    const progress = part(form, '[data-role="progress"]');
    const feedback = part(form, '[data-role="feedback"]');
    const next = part(form, '[data-role="next"]');
    const playButton = part(card, '[data-action="play"]');
    let index = 0;

    input.id = "answer-" + card.dataset.task;
    part(form, "label").htmlFor = input.id;

    function show() {
      question.textContent = questions[index].text;
      progress.textContent = `Question ${index + 1} of ${questions.length}`;
      next.textContent = index + 1 === questions.length ? "Send answers" : "Next";
      input.value = "";
    }

    function close() {
      form.remove();
      playButton.hidden = false;
    }

    // One attempt at a time: until the answers are sent and answered, the
    // card offers no new challenge.
    function closeForSending() {
      const status = part(card, '[data-role="submission-status"]');
      // Not empty before it takes focus: an empty status is not displayed,
      // and focus would fall back to the page's start.
      showStatus(card, { status: "sending" });
      status.tabIndex = -1; // keyboard focus stays on the card, where the outcome will show
      status.focus();
      part(card, '[data-role="attempt"]').hidden = true; // the last attempt's marks are done with
      form.remove();
    }

    form.addEventListener("submit", (event) => {
      event.preventDefault();
      const raw = input.value.trim();
      if (!/^-?\d+$/.test(raw)) {
        say(feedback, "Type a whole number first.", "bad");
        input.focus();
        return;
      }
      answers.push(Number(raw));
      if (index + 1 < questions.length) {
        index += 1;
        show();
        say(feedback, `Question ${index + 1} of ${questions.length}: what is ${questions[index].text}?`, "ok");
        input.focus();
        return;
      }
      closeForSending();
      const body = { task: card.dataset.task, challenge: challenge.challenge, answers };
      sendWhenDue(card, body, questions, receivedAt, challenge.min_seconds);
    });
    part(form, '[data-action="cancel"]').addEventListener("click", () => {
      close();
      playButton.focus();
    });
    form.addEventListener("keydown", (event) => {
      if (event.key === "Escape") {
        close();
        playButton.focus();
      }
    });

    part(card, '[data-action="retry"]').hidden = true;
    part(card, '[data-role="challenge-area"]').replaceChildren(form);
    playButton.hidden = true;
    show();
    input.focus();
  }

  // The server refuses answers sent sooner than min_seconds after the
  // challenge was issued. Counted from when this page received it (after
  // the issue), a page that waits that long is never refused for speed; the
  // margin covers web servers whose clocks differ a little.
  const DUE_MARGIN_MS = 250;

  function sendWhenDue(card, body, questions, receivedAt, minSeconds) {
    const dueAt = receivedAt + minSeconds * 1000;
    const state = stateFor(card);
    state.key = newKey();
    state.body = body;
    state.questions = questions;
    const element = part(card, '[data-role="submission-status"]');
    // Counts down once a second; nothing for the player to do meanwhile.
    function tick() {
      const wait = dueAt + DUE_MARGIN_MS - performance.now();
      if (wait <= 0) {
        submit(card);
        return;
      }
      element.dataset.status = "waiting";
      element.textContent = `Answers ready. A challenge takes at least ${minSeconds} s: `
        + `sending them in ${Math.ceil(wait / 1000)} s…`;
      setTimeout(tick, wait % 1000 || 1000); // when the shown second changes, or when due
    }
    tick();
  }

  function showAttempt(card, questions, answers, wrong) {
    const list = part(card, '[data-role="attempt"]');
    list.replaceChildren(...questions.map((q, i) => {
      const item = document.createElement("li");
      const right = !wrong.includes(i);
      item.dataset.result = right ? "right" : "wrong";
      item.textContent = `${q.text} = ${answers[i] ?? "?"} ${right ? "\u2713 right" : "\u2717 wrong"}`;
      return item;
    }));
    list.hidden = false;
  }

  // ---- submitting -----------------------------------------------------

  function csrfToken() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    if (match) return decodeURIComponent(match[1]);
    // With CSRF_COOKIE_HTTPONLY the cookie is hidden; the logout form has the token too.
    const field = document.querySelector('input[name="csrfmiddlewaretoken"]');
    return field ? field.value : "";
  }

  function newKey() {
    if (window.crypto.randomUUID) return window.crypto.randomUUID();
    // randomUUID exists only in secure contexts (HTTPS, localhost); build a v4 UUID by hand.
    const bytes = window.crypto.getRandomValues(new Uint8Array(16));
    bytes[6] = (bytes[6] & 0x0f) | 0x40;
    bytes[8] = (bytes[8] & 0x3f) | 0x80;
    const hex = Array.from(bytes, (byte) => byte.toString(16).padStart(2, "0")).join("");
    return [hex.slice(0, 8), hex.slice(8, 12), hex.slice(12, 16), hex.slice(16, 20), hex.slice(20)].join("-");
  }

  async function jsonOf(response) {
    try {
      return await response.json();
    } catch (error) {
      return null; // not JSON, e.g. a proxy's error page
    }
  }

  async function errorMessage(response) {
    return messageOf(await jsonOf(response), response.status);
  }

  function messageOf(body, status) {
    if (body && typeof body.detail === "string") return body.detail;
    if (body && typeof body === "object") {
      const messages = Object.values(body).flat().filter((value) => typeof value === "string");
      if (messages.length) return messages.join(" ");
    }
    return `The server answered ${status}.`;
  }

  function showError(card, text) {
    part(card, '[data-role="submission-error"]').textContent = text;
  }

  function offerRetry(card, waitSeconds) {
    const button = part(card, '[data-action="retry"]');
    button.hidden = false;
    button.disabled = waitSeconds > 0;
    if (waitSeconds > 0) setTimeout(() => { button.disabled = false; }, waitSeconds * 1000);
    else button.focus();
  }

  async function submit(card) {
    const state = stateFor(card);
    if (state.sending) return;
    // A retry after a network error reuses the key, so the server can
    // recognise a request it already recorded instead of counting it twice.
    state.key = state.key || newKey();
    state.sending = true;
    showError(card, "");
    showStatus(card, { status: "sending" }); // not a countdown's last second, while the request is out
    part(card, '[data-action="retry"]').hidden = true;
    let response;
    try {
      response = await fetch(config.scoresUrl, {
        method: "POST",
        credentials: "same-origin",
        headers: {
          "Content-Type": "application/json",
          Accept: "application/json",
          "X-CSRFToken": csrfToken(),
          "Idempotency-Key": state.key,
        },
        body: JSON.stringify(state.body),
      });
    } catch (error) {
      state.sending = false;
      showStatus(card, { status: "" });
      showError(card, "Could not reach the server. Your result is kept: send it again.");
      offerRetry(card, 0);
      return;
    }
    state.sending = false;
    if (response.ok) { // 202 when new, 200 when the same challenge was already recorded
      state.key = null;
      part(card, '[data-action="play"]').hidden = false;
      track(card, await response.json());
      return;
    }
    const refusal = (await jsonOf(response)) || {};
    const message = messageOf(refusal, response.status);
    showStatus(card, { status: "" });
    if (response.status === 422 || response.status === 410) {
      // Wrong answers (which ones, from the server), too fast, or expired:
      // this challenge cannot count. A fresh one starts at once.
      if (Array.isArray(refusal.wrong)) showAttempt(card, state.questions, state.body.answers, refusal.wrong);
      state.key = null;
      state.body = null;
      startChallenge(card, `${message} Here is a new challenge.`);
      return;
    }
    showError(card, message);
    if (response.status === 429 || response.status >= 500) {
      // The same answers again, when allowed: a resend cannot count twice.
      const wait = parseInt(response.headers.get("Retry-After"), 10);
      offerRetry(card, Number.isFinite(wait) ? Math.min(wait, 300) : 0);
    } else {
      state.key = null; // the same request would fail the same way
      part(card, '[data-action="play"]').hidden = false;
    }
  }

  // ---- following a submission -----------------------------------------

  function statusText(submission) {
    if (submission.status === "applied") {
      let text = submission.points != null ? `applied: +${submission.points} points` : "applied";
      if (submission.total != null) text += `, total ${submission.total}`;
      if (submission.rank != null) text += `, rank #${submission.rank}`;
      return text;
    }
    if (submission.status === "rejected") return window.GameOutcomes.rejected(submission);
    if (submission.status === "held") return window.GameOutcomes.held(submission);
    if (submission.status === "sending") return "Sending your answers…";
    if (!submission.status) return "";
    return "pending";
  }

  function showStatus(card, submission) {
    const element = part(card, '[data-role="submission-status"]');
    element.dataset.status = submission.status;
    element.textContent = statusText(submission);
  }

  function stopWatching(state) {
    clearTimeout(state.timer);
    state.watching = false;
  }

  function track(card, submission) {
    const state = stateFor(card);
    stopWatching(state);
    state.shownId = submission.id;
    cardsBySubmission.set(submission.id, card);
    part(card, '[data-role="play-label"]').textContent = "Play again";
    if (early.has(submission.id)) {
      submission = early.get(submission.id);
      early.delete(submission.id);
    }
    showStatus(card, submission);
    if (FINAL.includes(submission.status) || WAITING.includes(submission.status)) return;
    state.watching = true;
    state.polls = 0;
    state.timer = setTimeout(() => poll(card, submission.id), POLL_AFTER_MS);
  }

  function settle(card, submission) {
    const state = stateFor(card);
    if (state.shownId !== submission.id) return; // the card has moved on to a newer submission
    stopWatching(state);
    showStatus(card, submission);
  }

  async function poll(card, id) {
    const state = stateFor(card);
    const current = () => state.watching && state.shownId === id;
    if (!current()) return;
    state.polls += 1;
    try {
      const response = await fetch(`${config.scoresUrl}${encodeURIComponent(id)}/`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      });
      if (!current()) return; // the socket answered while we waited
      if (response.ok) {
        const submission = await response.json();
        if (FINAL.includes(submission.status) || WAITING.includes(submission.status)) {
          settle(card, submission);
          return;
        }
      } else if ([401, 403, 404].includes(response.status)) {
        stopWatching(state);
        showError(card, await errorMessage(response));
        return;
      }
    } catch (error) {
      // Offline for a moment: keep asking.
    }
    if (!current()) return;
    if (state.polls >= POLL_MAX) {
      stopWatching(state);
      showError(card, "Still pending. Reload the page later to see the result.");
      return;
    }
    state.timer = setTimeout(() => poll(card, id), POLL_EVERY_MS);
  }

  // ---- the socket -----------------------------------------------------

  let lastSeq = -1;

  let myEntry = null; // the total and rank last shown

  function showMyScore(entry) {
    if (!myScore) return;
    myEntry = entry || null;
    if (!entry) {
      myScore.textContent = "No points yet: play a task to get on the board.";
    } else {
      myScore.textContent = `Your total: ${entry.total} points` + (entry.rank != null ? `, rank #${entry.rank}` : "");
    }
  }

  // After a (re)connect, outcomes pushed while the socket was down are not
  // sent again: ask once for each card still waiting on one.
  function resyncWaiting() {
    for (const [id, card] of cardsBySubmission) {
      const state = stateFor(card);
      const shown = part(card, '[data-role="submission-status"]').dataset.status;
      if (state.shownId !== id || state.watching || !WAITING.includes(shown)) continue;
      fetch(`${config.scoresUrl}${encodeURIComponent(id)}/`, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
      }).then((response) => (response.ok ? response.json() : null)).then((submission) => {
        if (submission && submission.status !== shown) settle(card, submission);
      }).catch(() => {});
    }
  }

  function onMessage(message) {
    if (message.type === "snapshot") {
      lastSeq = message.seq;
      showMyScore(message.me);
      resyncWaiting();
    } else if (message.type === "delta") {
      if (message.seq <= lastSeq) return;
      lastSeq = message.seq;
      const mine = (message.changes || []).find((change) => String(change.player_id) === player.id);
      if (mine) showMyScore(mine);
    } else if (message.type === "rank.change" && message.window === "all") {
      rankNotices.show(window.GameNotices.rankChangeText(message, ""));
      // Passed by someone: a new rank without a change of the player's own.
      if (myEntry) showMyScore({ ...myEntry, rank: message.rank });
    } else if (message.type === "submission" && message.submission) {
      const submission = message.submission;
      if (submission.total != null) showMyScore(submission);
      const card = cardsBySubmission.get(submission.id);
      if (card) {
        settle(card, submission);
      } else {
        // The result can arrive before the POST's response does.
        early.set(submission.id, submission);
        if (early.size > 20) early.delete(early.keys().next().value);
      }
    }
  }

  document.addEventListener("click", (event) => {
    const button = event.target.closest("button[data-action]");
    const card = button && button.closest("[data-task]");
    if (!card) return;
    if (button.dataset.action === "play") startChallenge(card);
    else if (button.dataset.action === "retry") submit(card);
  });

  if (window.WebSocket && window.GameSocket) {
    window.GameSocket.connect({
      path: () => config.socketPath + "?window=all",
      onMessage,
      onState: () => {},
    });
  }
})();
