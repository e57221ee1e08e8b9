"""Demo models for a suite with no model of its own: see builder.build_demo_models."""

from inference.demo.builder import DRAFT_NAME, TARGET_NAME, build_demo_models

__all__ = ["DRAFT_NAME", "TARGET_NAME", "build_demo_models"]
