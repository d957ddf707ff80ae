"""Developer tools: synth summary, compliance and fidelity checkers, benchmarks (not shipped)."""
