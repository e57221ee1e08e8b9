"""Input and output shapes of the medical API (shared by the portal's JSON endpoints)."""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from medical import selectors
from medical.models import Instance, Study, StudyQuestion
from medical.services.qa import MAX_QUESTION_CHARS
from medical.services.studies import MIN_BREAK_GLASS_REASON


class ShareInput(serializers.Serializer):
    username = serializers.CharField(max_length=150, help_text="The colleague's user name.")


class ShareOutput(serializers.Serializer):
    study_id = serializers.IntegerField()
    shared_with = serializers.CharField()
    grants = serializers.ListField(child=serializers.CharField())


class AskInput(serializers.Serializer):
    question = serializers.CharField(max_length=MAX_QUESTION_CHARS)
    series_id = serializers.IntegerField(required=False, allow_null=True, help_text="Narrow to one series.")
    instance_id = serializers.IntegerField(required=False, allow_null=True, help_text="Narrow to one image.")


class BurnedInReviewInput(serializers.Serializer):
    decision = serializers.ChoiceField(choices=[Study.BurnedInReview.CLEARED, Study.BurnedInReview.WITHHELD])


class BreakGlassInput(serializers.Serializer):
    reason = serializers.CharField(
        min_length=MIN_BREAK_GLASS_REASON, max_length=500, help_text="Why the identified original is needed."
    )


class StudyFilterInput(serializers.Serializer):
    modality = serializers.CharField(required=False, allow_blank=True, max_length=16, help_text="e.g. CT")
    date_from = serializers.DateField(
        required=False,
        allow_null=True,
        help_text="Received on or after this date (the study date is de-identified).",
    )
    date_to = serializers.DateField(
        required=False, allow_null=True, help_text="Received on or before this date."
    )
    text = serializers.CharField(
        required=False, allow_blank=True, max_length=100, help_text="In descriptions."
    )
    patient = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="Pseudonym.")
    burned_in_review = serializers.ChoiceField(
        choices=Study.BurnedInReview.choices, required=False, allow_blank=True
    )
    sort = serializers.ChoiceField(
        choices=sorted(selectors.STUDY_SORTS),
        required=False,
        allow_blank=True,
        help_text="Default: received.",
    )

    def filters(self) -> selectors.StudyFilters:
        return selectors.StudyFilters(**{key: value for key, value in self.validated_data.items() if value})


class StudyListOutput(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.pseudonym")
    series_count = serializers.IntegerField()
    instance_count = serializers.IntegerField()
    body_parts = serializers.SerializerMethodField()
    series_descriptions = serializers.SerializerMethodField()
    received_from = serializers.CharField(allow_null=True, help_text="The uploader, or the sending AE title.")

    def get_body_parts(self, study: Study) -> str:
        return selectors.study_row(study)["body_parts"]

    def get_series_descriptions(self, study: Study) -> str:
        """Empty unless the site's de-identification options keep descriptors."""
        return selectors.study_row(study)["descriptions"]

    class Meta:
        model = Study
        fields = [
            "id",
            "department",
            "patient",
            "study_instance_uid",
            "study_date",
            "description",
            "modalities",
            "burned_in_review",
            "received_via",
            "series_count",
            "instance_count",
            "body_parts",
            "series_descriptions",
            "received_from",
            "created_at",
        ]


class InstanceOutput(serializers.ModelSerializer):
    preview_url = serializers.SerializerMethodField()

    class Meta:
        model = Instance
        fields = [
            "id",
            "sop_instance_uid",
            "sop_class_uid",
            "sop_class_name",
            "instance_number",
            "rows",
            "columns",
            "number_of_frames",
            "photometric_interpretation",
            "transfer_syntax_uid",
            "burned_in",
            "preview_status",
            "preview_url",
            "deid_profile",
            "deid_options",
            "received_via",
            "created_at",
        ]

    def get_preview_url(self, instance: Instance) -> str | None:
        if instance.preview_status != Instance.PreviewStatus.READY:
            return None
        return reverse("medical:instance_preview", args=[instance.pk])


class SeriesOutput(serializers.Serializer):
    id = serializers.IntegerField()
    series_instance_uid = serializers.CharField()
    modality = serializers.CharField()
    series_number = serializers.IntegerField(allow_null=True)
    description = serializers.CharField()
    body_part_examined = serializers.CharField()
    manufacturer = serializers.CharField()
    manufacturer_model_name = serializers.CharField()
    instances = InstanceOutput(many=True, source="instances.all")


class StudyDetailOutput(serializers.ModelSerializer):
    patient = serializers.CharField(source="patient.pseudonym")
    series = serializers.SerializerMethodField()

    class Meta:
        model = Study
        fields = [
            "id",
            "department",
            "patient",
            "study_instance_uid",
            "study_date",
            "study_time",
            "description",
            "modalities",
            "burned_in_review",
            "received_via",
            "created_at",
            "series",
        ]

    @extend_schema_field(SeriesOutput(many=True))
    def get_series(self, study: Study) -> list[dict]:
        return SeriesOutput(selectors.study_series(study), many=True).data

    @classmethod
    def for_study(cls, study: Study, *, request=None) -> dict:
        return cls(study, context={"request": request}).data


class FileOutcomeOutput(serializers.Serializer):
    filename = serializers.CharField()
    status = serializers.ChoiceField(choices=["stored", "duplicate", "rejected", "failed", "skipped"])
    reason = serializers.CharField(allow_blank=True)
    study_id = serializers.IntegerField(allow_null=True)
    instance_id = serializers.IntegerField(allow_null=True)
    burned_in = serializers.CharField(allow_blank=True)


class IngestReportOutput(serializers.Serializer):
    files = FileOutcomeOutput(many=True)
    counts = serializers.DictField(child=serializers.IntegerField())
    study_ids = serializers.ListField(child=serializers.IntegerField())

    @classmethod
    def for_report(cls, report) -> dict:
        return cls(
            {
                "files": [outcome.as_dict() for outcome in report.files],
                "counts": report.counts(),
                "study_ids": report.study_ids,
            }
        ).data


class AttributeOutput(serializers.Serializer):
    tag = serializers.CharField(help_text='e.g. "(0018,0050)"')
    keyword = serializers.CharField()
    name = serializers.CharField()
    value = serializers.CharField(allow_blank=True)
    path = serializers.CharField(allow_blank=True, help_text="Where inside sequences, if nested.")


class ModelUsedOutput(serializers.Serializer):
    name = serializers.CharField()
    version = serializers.CharField()
    adapter = serializers.CharField(allow_blank=True)
    generation_id = serializers.IntegerField(allow_null=True)


class AnswerOutput(serializers.ModelSerializer):
    attributes = AttributeOutput(many=True)
    model = serializers.SerializerMethodField()
    asked_by = serializers.CharField(source="asked_by.username", default="")

    class Meta:
        model = StudyQuestion
        fields = [
            "id",
            "study",
            "series",
            "instance",
            "asked_by",
            "question",
            "answer",
            "grounding",
            "grounding_score",
            "phrasing",
            "attributes",
            "removed_attributes",
            "model",
            "note",
            "latency_ms",
            "created_at",
        ]

    @extend_schema_field(ModelUsedOutput(allow_null=True))
    def get_model(self, asked: StudyQuestion) -> dict | None:
        if not asked.model_name:
            return None
        return {
            "name": asked.model_name,
            "version": asked.model_version,
            "adapter": asked.adapter_name,
            "generation_id": asked.generation_id,
        }
