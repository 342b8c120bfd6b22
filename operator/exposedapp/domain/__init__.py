"""The ExposedApp domain, pure: the API declaration (crd), the typed spec (model), the
objects a spec implies (desired), rollout steps, the plan, status and what the kubelet
says (podhealth). No I/O, and never kopf, pykube or the kubernetes client."""
