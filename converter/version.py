"""The installed distribution's version (what bundles and metadata record)."""
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("fomm-convert")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0+source"
