"""fastrollout: bulk rollouts of single-request worker fleets on Kubernetes."""

__version__ = "0.1.0"
