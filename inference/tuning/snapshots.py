"""Dataset snapshots: the examples a job trains on, fixed when the job is created.

The DataAdapter is asked once, on behalf of the person creating the job, so the job trains on
exactly the records that person could see at that moment, however long it waits in the queue
and however often it is resumed. The examples are sealed by the vault (they are domain records)
under a per-job storage key; the job row keeps the counts, the content hash, the source record
ids and the adapter's description of the query, which is what an auditor needs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from inference.datasets import DataAdapter, DatasetSplit, TrainingExample, split_examples
from inference.tuning import conf
from inference.tuning.errors import InvalidSettingsError, TuningError
from inference.tuning.examples import check_examples
from vault.storage import EncryptedFileStore

SNAPSHOT_FORMAT = 1


@dataclass(frozen=True)
class DatasetSnapshot:
    split: DatasetSplit
    query: str

    @property
    def size(self) -> int:
        return len(self.split.train) + len(self.split.eval)


class SnapshotMismatchError(TuningError):
    """The sealed snapshot does not hold the data set the job recorded (its content hash differs)."""


def snapshot_take(*, data_adapter: DataAdapter, user, filters: Mapping[str, Any]) -> DatasetSnapshot:
    """Ask the DataAdapter for the examples `user` may see; raise InvalidSettingsError naming the field.

    A data set is all or nothing: unusable examples reject it with every bad row listed, and both
    sides of the split must be non-empty (no training without data, no evaluation without a
    held-out set).
    """
    filters = dict(filters)
    try:
        examples = list(data_adapter.examples(user=user, filters=filters))
        query = data_adapter.describe_query(user=user, filters=filters)
    except (ValueError, LookupError) as exc:  # the adapter's verdict on the filters
        raise InvalidSettingsError({"filters": str(exc)}) from exc
    if not examples:
        raise InvalidSettingsError(
            {
                "data_adapter": f"The data set is empty: {data_adapter.name} yields no examples from the "
                "records the access policy lets you use with these filters."
            }
        )
    check_examples([example.as_dict() for example in examples], field="data_adapter")
    split = split_examples(examples)
    if not split.train:
        raise InvalidSettingsError(
            {"data_adapter": f"All {len(examples)} examples fall into the held-out split; add more records."}
        )
    if not split.eval:
        raise InvalidSettingsError(
            {
                "data_adapter": f"None of the {len(examples)} examples falls into the held-out split (about "
                "1 in 5 does), so the adapter could not be evaluated; add more records."
            }
        )
    return DatasetSnapshot(split=split, query=query)


def snapshot_save(*, storage_key: str, snapshot: DatasetSnapshot) -> None:
    document = {
        "format": SNAPSHOT_FORMAT,
        "content_hash": snapshot.split.content_hash,
        "query": snapshot.query,
        "examples": [
            {"source_id": example.source_id, "split": side, "example": example.as_dict()}
            for side, examples in (("train", snapshot.split.train), ("eval", snapshot.split.eval))
            for example in examples
        ],
    }
    _store().put(_name(storage_key), json.dumps(document, ensure_ascii=False).encode(), _context(storage_key))


def snapshot_load(*, storage_key: str, expected_hash: str) -> DatasetSplit:
    """The job's train/eval split, rebuilt from the sealed snapshot and checked against its hash."""
    document = json.loads(_store().get(_name(storage_key), _context(storage_key)))
    examples = [TrainingExample(source_id=row["source_id"], **row["example"]) for row in document["examples"]]
    split = split_examples(examples)
    if split.content_hash != expected_hash:
        raise SnapshotMismatchError(
            f"The dataset snapshot hashes to {split.content_hash[:12]}..., but the job recorded "
            f"{expected_hash[:12]}...; it was not trained on a changed data set. Create a new job."
        )
    return split


def snapshot_exists(storage_key: str) -> bool:
    return _store().exists(_name(storage_key))


def _store():
    return EncryptedFileStore(conf.data_root())


def _name(storage_key: str) -> str:
    return f"snapshots/{storage_key}.json"


def _context(storage_key: str) -> bytes:
    return f"tuning.dataset-snapshot:{storage_key}".encode()
