"""On PostgreSQL, let a chain head advance by a whole batch in one UPDATE (record_many).

0002's trigger let audit_chainhead advance by exactly one event, so a run of N events cost N
UPDATEs of the head. Now an UPDATE may also move it forward by more than one when every event it
passes over is in audit_event (a count over the unique (chain, sequence) index) and the new head
hash is the hash of the event at the new sequence. Still refused: moving it back, sideways (another
chain), forward over missing events, onto a hash no event has, and DELETE. Advancing by one is
unchanged (record() updates the head after inserting the event, but the trigger never required it).
"""

from django.db import migrations

BATCH_ADVANCE = r"""
CREATE OR REPLACE FUNCTION audit_chainhead_advance_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.chain = OLD.chain AND NEW.sequence = OLD.sequence + 1 THEN
        RETURN NEW;
    END IF;
    IF TG_OP = 'UPDATE' AND NEW.chain = OLD.chain AND NEW.sequence > OLD.sequence + 1
       AND (SELECT count(*) FROM audit_event e
            WHERE e.chain = NEW.chain AND e.sequence > OLD.sequence AND e.sequence <= NEW.sequence)
           = NEW.sequence - OLD.sequence
       AND EXISTS (SELECT 1 FROM audit_event e
                   WHERE e.chain = NEW.chain AND e.sequence = NEW.sequence AND e.hash = NEW.head_hash) THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a chain head may only advance, over events of the chain: % of chain % refused', TG_OP, OLD.chain
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""

ONE_BY_ONE = r"""
CREATE OR REPLACE FUNCTION audit_chainhead_advance_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.chain = OLD.chain AND NEW.sequence = OLD.sequence + 1 THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'a chain head may only advance by one event: % of chain % refused', TG_OP, OLD.chain
        USING ERRCODE = 'insufficient_privilege';
END $$;
"""


def allow_batch_advance(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(BATCH_ADVANCE, params=None)


def one_by_one(apps, schema_editor):
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(ONE_BY_ONE, params=None)


class Migration(migrations.Migration):
    dependencies = [("audit", "0004_rewrapped_texts")]
    operations = [migrations.RunPython(allow_batch_advance, one_by_one)]
