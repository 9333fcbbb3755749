"""The staff pipeline page: consumer health, throughput, lag, and retries;
and the review queue of held submissions."""

import logging
import re

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.contrib.auth.decorators import permission_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from scoring import selectors, services, store
from scoring.domain import Review

logger = logging.getLogger(__name__)

# Who may change an outcome (approve, reject, retry); any staff member may look.
REVIEW_PERMISSION = "scoring.review_submissions"

# What a submission id from the form may look like: the API's are UUIDs;
# anything longer or stranger is refused before it reaches DynamoDB.
_SUBMISSION_KEY = re.compile(r"[A-Za-z0-9_-]{1,100}")


@staff_member_required
def pipeline(request):
    try:
        context = selectors.pipeline_overview()
    except store.StoreUnavailable as exc:
        context = {"error": f"DynamoDB is unavailable: {exc}", "workers": [], "rejected": [], "dead_letters": [],
                   "retried": set(), "final": set()}
    return render(request, "scoring/pipeline.html", context)


@staff_member_required
@permission_required(REVIEW_PERMISSION, raise_exception=True)
@require_POST
def pipeline_retry(request, submission_id: str):
    try:
        requeued = services.submission_retry(submission_id=submission_id, by=request.user.get_username())
    except store.StoreUnavailable:
        messages.error(request, "DynamoDB is unavailable; nothing was retried.")
        return redirect("pipeline")
    if requeued:
        logger.info("Staff %s requeued submission %s", request.user, submission_id)
        messages.success(request, f"Submission {submission_id} is back in the pipeline.")
    else:
        messages.warning(request, f"Submission {submission_id} is not rejected, was rejected in review, "
                                  "or was already retried; nothing to retry.")
    return redirect("pipeline")


@staff_member_required
def review_queue(request):
    try:
        context = {"held": selectors.review_queue()}
    except store.StoreUnavailable as exc:
        context = {"error": f"DynamoDB is unavailable: {exc}", "held": []}
    return render(request, "scoring/review.html", context)


@staff_member_required
@permission_required(REVIEW_PERMISSION, raise_exception=True)
@require_POST
def review_decide(request):
    """Approve or reject the ticked held submissions, with one note. Each
    decision goes through the stream exactly once: a second click, or a
    second staff member, finds it already taken and changes nothing."""
    ids = request.POST.getlist("submission")
    if any(not _SUBMISSION_KEY.fullmatch(i) for i in ids):
        messages.error(request, "That is not a submission id; nothing was decided.")
        return redirect("review-queue")
    try:
        decision = Review(request.POST.get("decision", ""))
    except ValueError:
        messages.error(request, "Choose approve or reject.")
        return redirect("review-queue")
    if not ids:
        messages.warning(request, "Tick at least one submission.")
        return redirect("review-queue")
    note = request.POST.get("note", "").strip()[:500]
    decided, skipped = [], []
    try:
        for submission_id in ids:
            taken = services.submission_review(submission_id=submission_id, review=decision,
                                               reviewer=request.user.get_username(), note=note)
            (decided if taken else skipped).append(submission_id)
    except store.StoreUnavailable:
        messages.error(request, f"DynamoDB is unavailable; {len(decided)} decided, the rest not.")
        return redirect("review-queue")
    verb = "Approved" if decision is Review.APPROVE else "Rejected"
    if decided:
        logger.info("Staff %s: %s %s (note: %r)", request.user, verb.lower(), ", ".join(decided), note)
        messages.success(request, f"{verb} {len(decided)} submission(s); they apply within seconds.")
    if skipped:
        messages.warning(request, f"{len(skipped)} submission(s) were no longer held or already decided; "
                                  "nothing changed for them.")
    return redirect("review-queue")
