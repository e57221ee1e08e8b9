from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Rebuild medical/dicom/data/attribute_embeddings.npz: the all-MiniLM-L6-v2 vectors of the attribute "
        "names and clinician wording QA retrieval compares questions with (run after editing grounding.yaml)."
    )

    def handle(self, *args, **options):
        from medical.semantic import SHIPPED_VECTORS, build_shipped_vectors, corpus_keywords

        count = build_shipped_vectors(corpus_keywords())
        self.stdout.write(f"{count} texts embedded into {SHIPPED_VECTORS}")
