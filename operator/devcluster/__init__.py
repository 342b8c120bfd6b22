"""A real Kubernetes control plane on 127.0.0.1, built from Go modules, for development.

Never imported by the operator (import-linter enforces it): it exists for the demo, the
end-to-end tests and the benchmark.
"""
