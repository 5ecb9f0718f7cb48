"""The built-in demo catalog: generated product copy, drawn photos, simulated shoppers."""
