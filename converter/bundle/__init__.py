"""The versioned release bundle: what is in it (manifest, schema, artifacts), how it is
written (write) and how it is opened (open). Imports neither torch nor tensorflow."""
from .manifest import (BundleError, bundle_version, check_files, file_table, read_manifest,
                       toolchain_versions)
from .write import staging, write_archive

__all__ = ["BundleError", "bundle_version", "check_files", "file_table", "read_manifest",
           "toolchain_versions", "staging", "write_archive"]
