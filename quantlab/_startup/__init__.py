"""Start-up machinery: process environment (numba cache), background preloading, the
vectorbt warm-up child, progress lines and the aliases of old module paths."""
