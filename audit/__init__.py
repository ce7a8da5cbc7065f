"""netpol-audit: audit Kubernetes NetworkPolicy coverage by effect, not by shape."""

__version__ = "0.1.0"
