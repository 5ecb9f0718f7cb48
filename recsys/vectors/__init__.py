"""Item vectors: modalities, embedding a catalog (in process and on Ray), imported features,
loading."""
