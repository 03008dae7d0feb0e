"""beyondbank: the platform a bank runs its partner ecosystem on."""

__version__ = "0.1.0"
