"""Model references, loading, the batched generation engine and the Inspect provider."""
