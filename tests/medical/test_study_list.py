"""The study list: columns a clinician can tell studies apart by, filters by received date and modality, sort."""

from __future__ import annotations

import datetime as dt

import pytest
from django.utils import timezone

from medical.models import Study


@pytest.fixture
def three_studies(ingest):
    ct = ingest("dicomdirtests/77654033/CT2/17106").study_id
    ingest("dicomdirtests/77654033/CT2/17136")  # the same CT study: 1 series, 2 images
    mr = ingest("MR_small.dcm").study_id
    cr = ingest("dicomdirtests/77654033/CR2/6247").study_id
    old = timezone.now() - dt.timedelta(days=40)
    Study.objects.filter(pk=cr).update(created_at=old)
    return {"ct": ct, "mr": mr, "cr": cr, "old": old.date()}


@pytest.mark.django_db
def test_the_api_lists_what_tells_studies_apart_and_filters_by_received_date_and_modality(
    client, clinician, three_studies
):
    client.force_login(clinician)

    def ids(**params):
        response = client.get("/api/medical/studies/", params)
        assert response.status_code == 200, response.content
        return [row["id"] for row in response.json()["results"]]

    rows = {row["id"]: row for row in client.get("/api/medical/studies/").json()["results"]}
    ct = rows[three_studies["ct"]]
    assert (ct["modalities"], ct["body_parts"], ct["series_count"], ct["instance_count"]) == (
        "CT",
        "HEAD",
        1,
        2,
    )
    assert (
        ct["received_from"] == "tests" and ct["series_descriptions"] == ""
    )  # descriptors removed by default
    assert rows[three_studies["cr"]]["body_parts"] == "CSPINE"
    assert ids(modality="mr") == [three_studies["mr"]]
    today = timezone.now().date()
    assert set(ids(date_from=today.isoformat())) == {three_studies["ct"], three_studies["mr"]}
    assert ids(date_to=(today - dt.timedelta(days=1)).isoformat()) == [three_studies["cr"]]
    assert ids(date_from=three_studies["old"].isoformat(), date_to=three_studies["old"].isoformat()) == [
        three_studies["cr"]
    ]
    assert ids(sort="images")[0] == three_studies["ct"]
    assert ids(sort="oldest")[0] == three_studies["cr"]
    assert ids(sort="modality") == [three_studies["cr"], three_studies["ct"], three_studies["mr"]]
    assert client.get("/api/medical/studies/", {"sort": "nonsense"}).status_code == 400


@pytest.mark.django_db
def test_the_portal_list_shows_the_columns_and_applies_filters_and_sort(client, clinician, three_studies):
    client.force_login(clinician)
    page = client.get("/medical/", {"modality": "CT"}).content.decode()
    assert f'data-study="{three_studies["ct"]}"' in page and f'data-study="{three_studies["mr"]}"' not in page
    assert "HEAD" in page and "1 / 2" in page and "descriptions removed" in page and "tests" in page
    old_only = client.get(
        "/medical/", {"date_to": (timezone.now().date() - dt.timedelta(days=1)).isoformat()}
    )
    assert f'data-study="{three_studies["cr"]}"' in old_only.content.decode()
    assert f'data-study="{three_studies["ct"]}"' not in old_only.content.decode()
    # a refused value is shown with its message, the panel stays open, and the other filters still apply
    refused = client.get("/medical/", {"date_from": "last tuesday", "modality": "ct"})
    assert refused.status_code == 200
    body = refused.content.decode()
    assert "Enter a valid date" in body and 'data-keep-open="true"' in body
    assert f'data-study="{three_studies["ct"]}"' in body and f'data-study="{three_studies["mr"]}"' not in body
    assert "Modality: CT" in body  # the summary says what is applied
    ordered = client.get("/medical/", {"sort": "oldest"}).content.decode()
    assert ordered.index(f'data-study="{three_studies["cr"]}"') < ordered.index(
        f'data-study="{three_studies["mr"]}"'
    )
