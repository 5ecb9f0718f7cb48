"""Getting data in and out: table readers, catalog and interaction importers, uploads, photos,
videos, attributes, splits, exports."""
