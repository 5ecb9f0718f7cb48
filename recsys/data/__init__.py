"""Getting data in and out: readers, catalog and interaction importers, uploads, photos, videos, splits, exports."""
