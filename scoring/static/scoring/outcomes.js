/* How a submission that does not count reads to its player, the same on
 * the Play page's card and on My scores: GameOutcomes.held(submission) and
 * GameOutcomes.rejected(submission), for the API's submission JSON. */
(function () {
  "use strict";

  window.GameOutcomes = {
    held(submission) {
      const reason = submission.hold_reason ? ` (${submission.hold_reason})` : "";
      return `under review${reason}: staff check it before it counts`;
    },
    rejected(submission) {
      const error = submission.error || "no reason given";
      return /^rejected\b/i.test(error) ? error : `rejected: ${error}`; // not "rejected: Rejected in review"
    },
  };
})();
