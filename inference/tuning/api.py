"""REST API of the tuning app (mounted at /api/tuning/): data adapters, jobs, LoRA adapters.

Errors: 400 {"field": ["message"]} for input a person must fix (fields named as in the request),
403 when the access policy refuses (the denial is trailed), 404 for an unknown id, 409 when the
job or adapter is in a state that does not allow the action.
"""

from __future__ import annotations

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import ValidationError
from rest_framework.response import Response
from rest_framework.views import APIView

from audit.actors import actor_from_request
from inference.models import LoraAdapter
from inference.tuning import selectors, services
from inference.tuning.serializers import (
    AdapterOutput,
    DataAdapterOutput,
    JobCreateInput,
    JobDetailOutput,
    JobOutput,
    StatusChangeInput,
)
from ops.broker import require_broker

DENIED = OpenApiResponse(description="The access policy does not allow this (trailed).")
CONFLICT = OpenApiResponse(description="The current state does not allow this.")


def _conflict(error: services.JobStateError) -> Response:
    return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)


class DataAdapterListApi(APIView):
    """Registered DataAdapters whose data the caller may fine-tune on."""

    @extend_schema(responses=DataAdapterOutput(many=True), operation_id="tuning_data_adapters_list")
    def get(self, request):
        return Response(DataAdapterOutput(selectors.data_adapters_for(request.user), many=True).data)


class JobListCreateApi(generics.ListAPIView):
    """Fine-tune jobs on the models and data the caller may fine-tune, newest first; POST creates one."""

    serializer_class = JobOutput

    def get_queryset(self):
        return selectors.jobs_for(self.request.user)

    @extend_schema(operation_id="tuning_jobs_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)

    @extend_schema(
        request=JobCreateInput,
        responses={201: JobDetailOutput, 400: OpenApiResponse(description="Fields to fix."), 403: DENIED},
        operation_id="tuning_jobs_create",
    )
    def post(self, request):
        data = JobCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        arguments, actor = data.service_arguments(), actor_from_request(request)
        try:
            # 503 + Retry-After, before anything is written, while the queue is down; after the
            # service's access check (403 trailed), so a caller who may not fine-tune is refused
            require_broker(
                authorize=lambda: services.job_create_authorize(
                    user=request.user,
                    base_model=arguments["base_model"],
                    data_adapter=arguments["data_adapter"],
                    actor=actor,
                )
            )
            job = services.job_create(user=request.user, actor=actor, **arguments)
        except services.JobInputError as exc:
            raise ValidationError({field: [message] for field, message in exc.errors.items()}) from exc
        return Response(JobDetailOutput(job).data, status=status.HTTP_201_CREATED)


class JobDetailApi(APIView):
    @extend_schema(responses={200: JobDetailOutput, 403: DENIED}, operation_id="tuning_jobs_retrieve")
    def get(self, request, pk: int):
        job = selectors.job_for(request.user, pk, actor=actor_from_request(request))
        return Response(JobDetailOutput(job).data)


class JobCancelApi(APIView):
    """Cancel a job: a queued one at once, a running one within a few seconds (it keeps its checkpoint)."""

    @extend_schema(
        request=None,
        responses={200: JobDetailOutput, 403: DENIED, 409: CONFLICT},
        operation_id="tuning_jobs_cancel",
    )
    def post(self, request, pk: int):
        actor = actor_from_request(request)
        job = selectors.job_for(request.user, pk, actor=actor)
        try:
            job = services.job_cancel(user=request.user, job=job, actor=actor)
        except services.JobStateError as exc:
            return _conflict(exc)
        return Response(JobDetailOutput(job).data)


class JobRetryApi(APIView):
    """Queue a failed or cancelled job again; it resumes from its newest checkpoint."""

    @extend_schema(
        request=None,
        responses={200: JobDetailOutput, 403: DENIED, 409: CONFLICT},
        operation_id="tuning_jobs_retry",
    )
    def post(self, request, pk: int):
        actor = actor_from_request(request)
        job = selectors.job_for(request.user, pk, actor=actor)
        # job_for made the service's check (fine_tune on the job's model and data, 403 trailed)
        require_broker(authorize=lambda: None)
        try:
            job = services.job_retry(user=request.user, job=job, actor=actor)
        except services.JobStateError as exc:
            return _conflict(exc)
        return Response(JobDetailOutput(job).data)


class AdapterListApi(generics.ListAPIView):
    """LoRA adapters of the models the caller may fine-tune or promote."""

    serializer_class = AdapterOutput

    def get_queryset(self):
        return selectors.adapters_for(self.request.user)

    @extend_schema(operation_id="tuning_adapters_list")
    def get(self, request, *args, **kwargs):
        return super().get(request, *args, **kwargs)


class _AdapterStatusApi(APIView):
    new_status: str

    def post(self, request, pk: int):
        data = StatusChangeInput(data=request.data)
        data.is_valid(raise_exception=True)
        adapter = selectors.adapter_get(pk)
        try:
            adapter = services.adapter_status_change(
                user=request.user,
                adapter=adapter,
                status=self.new_status,
                reason=data.validated_data["reason"],
            )
        except services.JobStateError as exc:
            return _conflict(exc)
        return Response(AdapterOutput(adapter).data)


class AdapterPromoteApi(_AdapterStatusApi):
    """Serve the adapter: clients choose it with model "<base>:<adapter>". Needs `promote` on the base model."""

    new_status = LoraAdapter.Status.PROMOTED

    @extend_schema(
        request=StatusChangeInput,
        responses={200: AdapterOutput, 403: DENIED, 409: CONFLICT},
        operation_id="tuning_adapters_promote",
    )
    def post(self, request, pk: int):
        return super().post(request, pk)


class AdapterDemoteApi(_AdapterStatusApi):
    """Stop serving the adapter (roll back); it can be promoted again. Needs `promote` on the base model."""

    new_status = LoraAdapter.Status.DEMOTED

    @extend_schema(
        request=StatusChangeInput,
        responses={200: AdapterOutput, 403: DENIED, 409: CONFLICT},
        operation_id="tuning_adapters_demote",
    )
    def post(self, request, pk: int):
        return super().post(request, pk)
