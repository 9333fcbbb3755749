/* Rank-change notices: short, dismissible, in a polite live region, so a
 * screen reader announces each one as it is added.
 *
 * GameNotices.create(container) returns {show(text)}; container should be
 * role="status" aria-live="polite". A notice has a close button and goes by
 * itself after AUTO_DISMISS_MS, but not while the pointer or keyboard focus
 * is on it (WCAG 2.2.1: time to read). Text only: player names are the
 * players' own, so nothing here is parsed as HTML.
 *
 * GameNotices.rankChangeText(message, period) words a `rank.change`
 * message: "You passed Bob — now #2", "Cy passed you — now #3",
 * "You entered the top 10 — now #9".
 */
(function () {
  "use strict";

  const AUTO_DISMISS_MS = 12000;
  const MAX_SHOWN = 4;

  function create(container) {
    function show(text) {
      const item = document.createElement("p");
      item.className = "notice";
      item.dataset.role = "rank-notice";
      const words = document.createElement("span");
      words.textContent = text;
      const close = document.createElement("button");
      close.type = "button";
      close.className = "notice-close";
      close.setAttribute("aria-label", "Dismiss");
      close.textContent = "×";
      item.append(words, close);

      let timer = null;
      let held = 0; // pointer and focus both hold it
      const remove = () => {
        clearTimeout(timer);
        if (item.contains(document.activeElement)) {
          // Never drop keyboard focus on the floor.
          const next = item.nextElementSibling || item.previousElementSibling;
          if (next) next.querySelector("button").focus();
        }
        item.remove();
      };
      const arm = () => {
        clearTimeout(timer);
        if (held === 0) timer = setTimeout(remove, AUTO_DISMISS_MS);
      };
      const hold = () => { held += 1; clearTimeout(timer); };
      const release = () => { held = Math.max(0, held - 1); arm(); };
      item.addEventListener("pointerenter", hold);
      item.addEventListener("pointerleave", release);
      item.addEventListener("focusin", hold);
      item.addEventListener("focusout", release);
      close.addEventListener("click", remove);

      container.prepend(item);
      while (container.children.length > MAX_SHOWN) container.lastElementChild.remove();
      arm();
      return item;
    }

    return { show };
  }

  function names(players) {
    const list = players.map((p) => p.player || `player ${p.player_id}`);
    if (list.length <= 2) return list.join(" and ");
    if (list.length === 3) return `${list[0]}, ${list[1]} and ${list[2]}`;
    return `${list[0]}, ${list[1]} and ${list.length - 2} others`;
  }

  function rankChangeText(message, period) {
    const passed = message.passed || [];
    const passedBy = message.passed_by || [];
    const moves = [];
    if (passed.length) moves.push(`You passed ${names(passed)}`);
    if (passedBy.length) moves.push(`${names(passedBy)} passed you`);
    let boundary = "";
    if (message.entered_top) boundary = `You entered the top ${message.entered_top}`;
    else if (message.left_top) boundary = `You dropped out of the top ${message.left_top}`;
    if (!moves.length) {
      const up = message.previous_rank === null || message.previous_rank === undefined ||
        message.rank < message.previous_rank;
      moves.push(boundary || (up ? "You moved up" : "You moved down"));
      boundary = "";
    }
    const text = `${moves.join("; ")} — now #${message.rank}${period ? ` ${period}` : ""}`;
    return boundary ? `${text}. ${boundary}.` : text;
  }

  window.GameNotices = { create, rankChangeText };
})();
