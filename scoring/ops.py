"""The staff pipeline page: consumer health, throughput, lag, and retries."""

import logging

from django.contrib import messages
from django.contrib.admin.views.decorators import staff_member_required
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from scoring import selectors, services, store

logger = logging.getLogger(__name__)


@staff_member_required
def pipeline(request):
    try:
        context = selectors.pipeline_overview()
    except store.StoreUnavailable as exc:
        context = {"error": f"DynamoDB is unavailable: {exc}", "workers": [], "rejected": [], "dead_letters": []}
    return render(request, "scoring/pipeline.html", context)


@staff_member_required
@require_POST
def pipeline_retry(request, submission_id: str):
    try:
        requeued = services.submission_retry(submission_id=submission_id)
    except store.StoreUnavailable:
        messages.error(request, "DynamoDB is unavailable; nothing was retried.")
        return redirect("pipeline")
    if requeued:
        logger.info("Staff %s requeued submission %s", request.user, submission_id)
        messages.success(request, f"Submission {submission_id} is back in the pipeline.")
    else:
        messages.warning(request, f"Submission {submission_id} is not rejected or was already retried; "
                                  "nothing to retry.")
    return redirect("pipeline")
