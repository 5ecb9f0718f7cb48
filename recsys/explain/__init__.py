"""Why a pick: modality weights and similar history items, sentences, attribute attribution."""
