"""The build in stage order: segment → embed (model_builder) → cluster → label → index → snapshot; pipeline runs them."""
